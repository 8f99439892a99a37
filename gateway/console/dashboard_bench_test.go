package console_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/octgw/oct/anomalies/anomaliestest"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// BenchmarkDashboard measures the dashboard page of a support agent and of
// a vendor and an insurer over a SQLite store holding 50 000 lots of one
// tenant, all created.
func BenchmarkDashboard(b *testing.B) {
	f := anomaliestest.New(b)
	seedLots(b, f.Ctx, f.Store, 50000, 2000)
	e := newEnvWith(b, f)
	for _, who := range []string{"alice", "carol", "olga"} {
		b.Run(who, func(b *testing.B) {
			e.loginAs(who)
			for b.Loop() {
				if code, _, _ := e.do("GET", "/console/dashboard", nil); code != http.StatusOK {
					b.Fatal(code)
				}
			}
		})
	}
}

// seedLots stores n created lots of tenant acme, in one file, batch lots a
// commit.
func seedLots(b *testing.B, ctx context.Context, st store.Store, n, batch int) {
	b.Helper()
	if _, _, err := st.CreateFile(ctx, store.File{ID: "FBIG", Tenant: "acme", Channel: "api", SHA256: "00", State: lifecycle.FileReceived}, nil); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i += batch {
		c := &store.Change{Actor: "bench"}
		for j := i; j < i+batch; j++ {
			c.Lots = append(c.Lots, store.Lot{ID: fmt.Sprintf("B%06d", j), File: "FBIG", Tenant: "acme", Index: j, Emitter: "750000001",
				Number: j%999 + 1, Date: "2026-03-02", Destination: "CPAM-751", State: lifecycle.LotCreated})
		}
		if err := st.Commit(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
}
