package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// TestBatchIsolation hands the writer one batch of three requests, the
// middle one failing after it wrote rows: it fails alone, the others commit
// in the same transaction, and the chain stays continuous.
func TestBatchIsolation(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	req := func(c *store.Change) *request {
		return &request{ctx: ctx, reply: make(chan error, 1), fn: func(w *wtx) error { return w.apply(c) }}
	}
	good1 := req(&store.Change{Lots: []store.Lot{{ID: "L1", State: lifecycle.LotCreated}}})
	bad := req(&store.Change{
		Lots:        []store.Lot{{ID: "L2", State: lifecycle.LotCreated}},
		Transitions: []store.Transition{{Kind: lifecycle.Lot, ID: "L2", From: lifecycle.LotCreated, To: lifecycle.LotSettled}},
	})
	panics := &request{ctx: ctx, reply: make(chan error, 1), fn: func(w *wtx) error {
		if err := w.putLot(store.Lot{ID: "L4", State: lifecycle.LotCreated}, ""); err != nil {
			return err
		}
		panic("boom")
	}}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	skipped := &request{ctx: cancelled, reply: make(chan error, 1), fn: func(w *wtx) error {
		return w.apply(&store.Change{Lots: []store.Lot{{ID: "L5", State: lifecycle.LotCreated}}})
	}}
	good2 := req(&store.Change{Lots: []store.Lot{{ID: "L3", State: lifecycle.LotCreated}}})

	before := s.Stats()
	done := make(chan struct{})
	go func() { // the writer goroutine is idle; run the batch beside it
		defer close(done)
		s.runBatch([]*request{good1, bad, panics, skipped, good2})
	}()
	<-done
	if err := <-good1.reply; err != nil {
		t.Errorf("good1: %v", err)
	}
	if err := <-bad.reply; !errors.Is(err, lifecycle.ErrIllegal) {
		t.Errorf("bad: %v, want illegal", err)
	}
	if err := <-panics.reply; err == nil {
		t.Errorf("panicking request: no error")
	}
	if err := <-skipped.reply; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: %v", err)
	}
	if err := <-good2.reply; err != nil {
		t.Errorf("good2: %v", err)
	}
	for id, want := range map[string]bool{"L1": true, "L2": false, "L3": true, "L4": false, "L5": false} {
		_, err := s.Lot(ctx, id)
		if got := err == nil; got != want {
			t.Errorf("lot %s present = %v, want %v (%v)", id, got, want, err)
		}
	}
	if st := s.Stats(); st.Batches-before.Batches != 1 || st.Requests-before.Requests != 5 {
		t.Errorf("stats %+v -> %+v, want one batch of 5", before, st)
	}
	if checked, broken, err := store.VerifyChain(ctx, s, nil); err != nil || broken != 0 || checked != 2 {
		t.Errorf("chain: %d, %d, %v; want 2 events", checked, broken, err)
	}
}

// TestCancelWhileQueued cancels a Commit while the writer is busy with
// another request: the caller returns at once with the context error and
// its change is never applied.
func TestCancelWhileQueued(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	started, release := make(chan struct{}), make(chan struct{})
	blocker := make(chan error, 1)
	go func() {
		blocker <- s.do(ctx, func(w *wtx) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	cctx, cancel := context.WithCancel(ctx)
	result := make(chan error, 1)
	go func() {
		result <- s.Commit(cctx, &store.Change{Lots: []store.Lot{{ID: "L1", State: lifecycle.LotCreated}}})
	}()
	cancel()
	select {
	case err := <-result:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Commit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled Commit did not return while the writer was busy")
	}
	close(release)
	if err := <-blocker; err != nil {
		t.Fatal(err)
	}
	// Let the writer run one more request so that anything queued is done.
	if err := s.Commit(ctx, &store.Change{Lots: []store.Lot{{ID: "L2", State: lifecycle.LotCreated}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lot(ctx, "L1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cancelled change applied: %v", err)
	}
}
