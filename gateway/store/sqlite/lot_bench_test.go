package sqlite

import (
	"context"
	"fmt"
	"testing"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// BenchmarkCommitLot50 commits what a split writes per lot: the lot, its
// 50 invoices (creation events and day counters) and a transition.
//
//	go test -run '^$' -bench CommitLot50 ./gateway/store/sqlite/
func BenchmarkCommitLot50(b *testing.B) {
	s := openTest(b, Options{})
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("L%07d", i)
		c := &store.Change{Lots: []store.Lot{{ID: id, File: "F", Tenant: "acme", State: lifecycle.LotCreated}},
			Transitions: []store.Transition{{Kind: lifecycle.Lot, ID: id, From: lifecycle.LotCreated, To: lifecycle.LotRouted}}}
		for j := 0; j < 50; j++ {
			c.Invoices = append(c.Invoices, store.Invoice{ID: fmt.Sprintf("%s-%d", id, j), Lot: id, Tenant: "acme",
				Number: fmt.Sprintf("%09d", j), NIRHash: "h", State: lifecycle.InvoicePending})
		}
		if err := s.Commit(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lots/s")
}
