package gateway

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/gateway/store/blobdir"
	"github.com/octgw/oct/gateway/store/sqlite"
	"github.com/octgw/oct/internal/testenv"
)

type fakeRouter struct{}

func (fakeRouter) Route(context.Context, RouteInput) (Route, error) {
	return Route{Destination: "amo:01422", Version: "1", Reason: "test"}, nil
}

type fakeSigner struct{}

func (fakeSigner) SignFile(_ context.Context, _, _ string, data []byte) ([]byte, error) {
	return append([]byte("CMS:"), data[:16]...), nil
}

// fakeSender fails with the queued errors first, then succeeds.
type fakeSender struct {
	mu    sync.Mutex
	errs  []error
	sends map[string]int
}

func (f *fakeSender) Send(_ context.Context, d Delivery) (Receipt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sends == nil {
		f.sends = map[string]int{}
	}
	if len(d.Signature) == 0 || !bytes.HasPrefix(d.Signature, []byte("CMS:")) || len(d.Body) == 0 {
		return Receipt{}, errors.New("unsigned delivery")
	}
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return Receipt{}, err
	}
	f.sends[d.Lot.ID]++
	return Receipt{MessageID: "<m-" + d.Lot.ID + ">"}, nil
}

func newTestGateway(t *testing.T, sender Sender, router ...Router) *Gateway {
	t.Helper()
	var r Router = fakeRouter{}
	if len(router) > 0 {
		r = router[0]
	}
	g := openTestGateway(t, Options{Router: r,
		Workers:  WorkerOptions{Concurrency: 2, PollEvery: 10 * time.Millisecond, MaxAttempts: 3},
		Outbound: OutboundOptions{Signer: fakeSigner{}, Sender: sender}})
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = g.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return g
}

// openTestGateway is a gateway with o on a fresh SQLite store and blob
// directory, tenant "acme" added; its workers do not run.
func openTestGateway(t *testing.T, o Options) *Gateway {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: t.TempDir() + "/oct.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	blobs, err := blobdir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o.Store, o.Blobs, o.NIRKey = st, blobs, bytes.Repeat([]byte{7}, 32)
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := AddTenant(ctx, st, "acme", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	return g
}

func pushAndWait(t *testing.T, g *Gateway, seed int64, want func(lifecycle.State) bool) []store.Lot {
	t.Helper()
	var buf bytes.Buffer
	if err := b2.Generate(&buf, b2.GenOptions{Seed: seed, Lots: 2, Invoices: 3}); err != nil {
		t.Fatal(err)
	}
	ack, err := g.Intake(context.Background(), "acme", Source{Channel: "api"}, &buf)
	if err != nil || ack.Status != StatusAccepted {
		t.Fatalf("intake: %v %+v", err, ack)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var lots []store.Lot
	err = testenv.Poll(ctx, 10*time.Millisecond, func() (bool, error) {
		lots, err = g.Store().Lots(ctx, store.LotQuery{File: ack.ID})
		if err != nil || len(lots) != 2 {
			return false, err
		}
		return want(lots[0].State) && want(lots[1].State), nil
	})
	if err != nil {
		t.Fatalf("lots did not get there: %v %+v", err, lots)
	}
	return lots
}

func TestSignAndDeliverOnce(t *testing.T) {
	s := &fakeSender{errs: []error{ErrTemporary}} // the first send fails temporarily, then succeeds
	g := newTestGateway(t, s)
	lots := pushAndWait(t, g, 1, func(st lifecycle.State) bool { return st == lifecycle.LotSent })
	ctx := context.Background()
	for _, l := range lots {
		if l.Signed == "" {
			t.Errorf("%s sent without a signature blob", l.ID)
		}
		as, _ := g.Store().Attempts(ctx, l.ID)
		ok := 0
		for _, a := range as {
			if a.Outcome == "ok" {
				ok++
			}
		}
		if ok != 1 || s.sends[l.ID] != 1 {
			t.Errorf("%s: %d ok attempts, %d sends (%+v)", l.ID, ok, s.sends[l.ID], as)
		}
		ex, _ := g.Store().Expectations(ctx, l.ID)
		if len(ex) != 1 || ex[0].Kind != "arl" || !ex[0].DueAt.After(time.Now().Add(47*time.Hour)) {
			t.Errorf("%s: expectations %+v", l.ID, ex)
		}
	}
}

func TestPermanentDeliveryFailureOpensAnAnomaly(t *testing.T) {
	s := &fakeSender{errs: []error{errors.New("554 mailbox refused"), errors.New("554 mailbox refused")}}
	g := newTestGateway(t, s)
	lots := pushAndWait(t, g, 2, func(st lifecycle.State) bool { return st == lifecycle.LotDeliveryFailed })
	as, err := g.Store().Anomalies(context.Background(), store.AnomalyQuery{Kind: "delivery-failed"})
	if err != nil || len(as) != 2 {
		t.Fatalf("anomalies %v %+v", err, as)
	}
	if s.sends[lots[0].ID] != 0 {
		t.Fatal("a failed lot counted as sent")
	}
}

func TestDeliverNeverResendsAnUnfinishedAttempt(t *testing.T) {
	s := &fakeSender{}
	g := newTestGateway(t, s)
	lots := pushAndWait(t, g, 3, func(st lifecycle.State) bool { return st == lifecycle.LotSent })
	// A crash between the send and its outcome leaves an open attempt: the
	// re-run must not send again.
	ctx := context.Background()
	l := lots[0]
	st := g.Store()
	// Rewind: a second lot in signed state with an open attempt.
	lot2 := l
	lot2.ID, lot2.State = l.ID+"-x", lifecycle.LotCreated
	now := time.Now()
	c := &store.Change{Lots: []store.Lot{lot2}, Transitions: []store.Transition{
		{Kind: lifecycle.Lot, ID: lot2.ID, From: lifecycle.LotCreated, To: lifecycle.LotRouted},
		{Kind: lifecycle.Lot, ID: lot2.ID, From: lifecycle.LotRouted, To: lifecycle.LotSigned},
	}, Attempts: []store.Attempt{{ID: lot2.ID + "-a1", Lot: lot2.ID, Started: now}}}
	if err := st.Commit(ctx, c); err != nil {
		t.Fatal(err)
	}
	ch, err := g.deliver(ctx, store.Lease{Job: store.Job{Kind: JobDeliver, Subject: lot2.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if s.sends[lot2.ID] != 0 || len(ch.Transitions) != 1 || ch.Transitions[0].To != lifecycle.LotSent || ch.Attempts[0].Outcome != "unknown" {
		t.Fatalf("re-run after a crash: sends %d, change %+v", s.sends[lot2.ID], ch)
	}
}

type fanoutRouter struct{}

func (fanoutRouter) Route(context.Context, RouteInput) (Route, error) {
	return Route{Destination: "amo:01422,static:archive", Version: "1", Reason: "rule fan-out"}, nil
}

// TestFanOutIsNeverSilent: a decision with several destinations sends to
// the first and opens an anomaly naming the others.
func TestFanOutIsNeverSilent(t *testing.T) {
	g := newTestGateway(t, &fakeSender{}, fanoutRouter{})
	pushAndWait(t, g, 5, func(st lifecycle.State) bool { return st == lifecycle.LotSent })
	as, err := g.Store().Anomalies(context.Background(), store.AnomalyQuery{Kind: "fan-out-unsupported"})
	if err != nil || len(as) != 2 || as[0].Destination != "static:archive" {
		t.Fatalf("%v %+v", err, as)
	}
}
