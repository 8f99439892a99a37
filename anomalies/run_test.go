package anomalies_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/anomalies/anomaliestest"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// Run ticks at start and on each wake, and returns when ctx is done.
func TestChaserRun(t *testing.T) {
	f := anomaliestest.New(t)
	c := anomalies.NewChaser(f.Store, anomalies.ChaseConfig{}, f.Clock, nil)
	lot := f.NewLot(anomaliestest.LotSpec{ID: "L1", Tenant: "acme", Destination: "D"}, lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotSent)
	f.Commit(&store.Change{Expectations: []store.Expectation{c.Expect(lot, anomalies.ExpectARL, "E1", f.Now())}})
	f.Clock.Advance(48 * time.Hour)
	ctx, cancel := context.WithCancel(f.Ctx)
	wake := make(chan struct{}) // unbuffered: a send returns once Run waits again, so the tick before it is over
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, time.Hour, wake) }()
	wake <- struct{}{}
	if s := lotState(t, f, "L1"); s != lifecycle.LotARLOverdue {
		t.Fatalf("lot %s after the first tick", s)
	}
	wake <- struct{}{}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if jobs := f.Jobs(anomalies.JobDeliver); len(jobs) != 1 {
		t.Fatalf("%d jobs", len(jobs))
	}
}

// Two executions of the same bulk request at once (two nodes, two tabs)
// send each lot once.
func TestBulkConcurrent(t *testing.T) {
	f := anomaliestest.New(t)
	q := newQueue(t, f, anomalies.Options{})
	for i := range 6 {
		id := string(rune('a' + i))
		f.NewLot(anomaliestest.LotSpec{ID: "L" + id, Tenant: "acme", Destination: "D"}, lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotSent)
		f.Anomaly("A"+id, anomalies.KindARLMissing, "lot:L"+id, "acme", "D", time.Hour)
	}
	req := anomalies.BulkRequest{ID: "b1", Filter: anomalies.Filter{State: anomalies.StateActive}, Action: anomalies.BulkResend, Limit: 6, Actor: "alice"}
	var wg sync.WaitGroup
	res := make([]anomalies.BulkResult, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = q.Bulk(f.Ctx, req)
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil || res[i].Failed != 0 {
			t.Fatalf("run %d: %+v %v", i, res[i], errs[i])
		}
	}
	jobs := f.Jobs(anomalies.JobDeliver)
	seen := map[string]int{}
	for _, j := range jobs {
		seen[j.Subject]++
	}
	if len(jobs) != 6 || len(seen) != 6 {
		t.Fatalf("%d jobs over %d lots", len(jobs), len(seen))
	}
	for i := range 6 {
		evs, _ := f.Store.Events(f.Ctx, "lot:L"+string(rune('a'+i)))
		n := 0
		for _, e := range evs {
			if e.To == lifecycle.LotARLOverdue {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("lot moved %d times", n)
		}
	}
}
