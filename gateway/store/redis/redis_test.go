package redis

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/gateway/store/storetest"
	"github.com/octgw/oct/internal/testenv"
)

// prefixes makes every test store's key prefix unique on a shared server.
var prefixes atomic.Int64

func openTest(t testing.TB, addr string, o Options) *Store {
	t.Helper()
	o.Addr = addr
	if o.Prefix == "" {
		o.Prefix = fmt.Sprintf("t%d-%d", time.Now().UnixNano(), prefixes.Add(1))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestConformance runs the store conformance suite against a real
// redis-server, one key prefix per case.
func TestConformance(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		return openTest(t, srv.Addr, Options{Now: now})
	})
}
