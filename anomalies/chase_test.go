package anomalies_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/anomalies/anomaliestest"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

func tick(t *testing.T, c *anomalies.Chaser, f *anomaliestest.Fixture) int {
	t.Helper()
	n, err := c.Tick(f.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func lotState(t *testing.T, f *anomaliestest.Fixture, id string) lifecycle.State {
	t.Helper()
	l, err := f.Store.Lot(f.Ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return l.State
}

func TestChaseResendThenAnomaly(t *testing.T) {
	f := anomaliestest.New(t)
	c := anomalies.NewChaser(f.Store, anomalies.ChaseConfig{}, f.Clock, nil)
	lot := f.NewLot(anomaliestest.LotSpec{ID: "L1", Tenant: "acme", Destination: "CPAM-751"}, lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotSent)
	f.Commit(&store.Change{Expectations: []store.Expectation{c.Expect(lot, anomalies.ExpectARL, "L1-a1-arl", f.Now())}})

	f.Clock.Advance(47 * time.Hour)
	if n := tick(t, c, f); n != 0 {
		t.Fatalf("acted %d times before the deadline", n)
	}
	f.Clock.Advance(time.Hour)
	if n := tick(t, c, f); n != 1 {
		t.Fatalf("acted %d times at the deadline", n)
	}
	if s := lotState(t, f, "L1"); s != lifecycle.LotARLOverdue {
		t.Fatalf("lot %s", s)
	}
	if n := tick(t, c, f); n != 0 {
		t.Fatalf("timer acted twice: %d", n)
	}
	jobs := f.Jobs(anomalies.JobDeliver)
	if len(jobs) != 1 || jobs[0].Subject != "L1" || jobs[0].Key != "resend-1" {
		t.Fatalf("resend job: %+v", jobs)
	}
	es, _ := f.Store.Expectations(f.Ctx, "L1")
	if len(es) != 1 || !es[0].Fired {
		t.Fatalf("expectation not fired: %+v", es)
	}

	// The pipeline resends; its ARL is late again.
	f.Clock.Advance(time.Hour)
	lot = f.Walk("L1", lifecycle.LotResent)
	f.Commit(&store.Change{Expectations: []store.Expectation{c.Expect(lot, anomalies.ExpectARL, "L1-a2-arl", f.Now())}})
	f.Clock.Advance(48 * time.Hour)
	if n := tick(t, c, f); n != 1 {
		t.Fatalf("acted %d", n)
	}
	if s := lotState(t, f, "L1"); s != lifecycle.LotARLOverdue {
		t.Fatalf("lot %s", s)
	}
	as, err := f.Store.Anomalies(f.Ctx, store.AnomalyQuery{Kind: anomalies.KindARLMissing})
	if err != nil || len(as) != 1 {
		t.Fatalf("anomalies %v %+v", err, as)
	}
	a := as[0]
	if a.Subject != "lot:L1" || a.Tenant != "acme" || a.Destination != "CPAM-751" || a.Reason != "resent but no acknowledgement 48 h later" ||
		!a.SLA.Equal(f.Now().Add(8*time.Hour)) {
		t.Fatalf("anomaly %+v", a)
	}
	if jobs := f.Jobs(anomalies.JobDeliver); len(jobs) != 0 {
		t.Fatalf("resent more than max_resends: %+v", jobs)
	}
}

func TestChaseNeverResendsAcknowledgedLot(t *testing.T) {
	f := anomaliestest.New(t)
	c := anomalies.NewChaser(f.Store, anomalies.ChaseConfig{}, f.Clock, nil)
	lot := f.NewLot(anomaliestest.LotSpec{ID: "L1", Tenant: "acme", Destination: "CPAM-751"}, lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotSent)
	f.Commit(&store.Change{Expectations: []store.Expectation{c.Expect(lot, anomalies.ExpectARL, "E1", f.Now())}})
	f.Walk("L1", lifecycle.LotARLPositive) // the ARL came but was not matched to the expectation
	f.Clock.Advance(49 * time.Hour)
	if n := tick(t, c, f); n != 1 {
		t.Fatalf("acted %d", n)
	}
	if s := lotState(t, f, "L1"); s != lifecycle.LotARLPositive {
		t.Fatalf("lot %s", s)
	}
	if jobs := f.Jobs(anomalies.JobDeliver); len(jobs) != 0 {
		t.Fatalf("acknowledged lot resent: %+v", jobs)
	}
	if n := tick(t, c, f); n != 0 {
		t.Fatalf("fired twice")
	}
}

func TestChasePerDestinationPolicy(t *testing.T) {
	f := anomaliestest.New(t)
	cfg := anomalies.ChaseConfig{Destinations: map[string]anomalies.Policy{
		"SLOW": {ARL: 72 * time.Hour}, "NORESEND": {MaxResends: -1},
	}}
	c := anomalies.NewChaser(f.Store, cfg, f.Clock, nil)
	for _, d := range []string{"SLOW", "NORESEND"} {
		f.NewLot(anomaliestest.LotSpec{ID: d, Tenant: "acme", Destination: d}, lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotSent)
		// created with the gateway's fixed 48 h, not through Expect
		f.Commit(&store.Change{Expectations: []store.Expectation{{ID: d + "-arl", Lot: d, Kind: "arl", DueAt: f.Now().Add(48 * time.Hour)}}})
	}
	f.Clock.Advance(48 * time.Hour)
	tick(t, c, f)
	if s := lotState(t, f, "SLOW"); s != lifecycle.LotSent {
		t.Fatalf("SLOW chased at 48 h: %s", s)
	}
	if s := lotState(t, f, "NORESEND"); s != lifecycle.LotARLOverdue {
		t.Fatalf("NORESEND %s", s)
	}
	as, _ := f.Store.Anomalies(f.Ctx, store.AnomalyQuery{Subject: "lot:NORESEND"})
	if len(as) != 1 || !strings.Contains(as[0].Reason, "resend disabled") {
		t.Fatalf("NORESEND anomaly %+v", as)
	}
	es, _ := f.Store.Expectations(f.Ctx, "SLOW")
	if len(es) != 1 || es[0].Fired || !es[0].DueAt.Equal(anomaliestest.T0.Add(72*time.Hour)) {
		t.Fatalf("SLOW expectation not deferred: %+v", es)
	}
	f.Clock.Advance(24 * time.Hour)
	tick(t, c, f)
	if s := lotState(t, f, "SLOW"); s != lifecycle.LotARLOverdue {
		t.Fatalf("SLOW at 72 h: %s", s)
	}
	if jobs := f.Jobs(anomalies.JobDeliver); len(jobs) != 1 || jobs[0].Subject != "SLOW" {
		t.Fatalf("jobs %+v", jobs)
	}
}

// Two nodes chase the same expectations at once: each timer acts once.
func TestChaseTwoNodes(t *testing.T) {
	f := anomaliestest.New(t)
	nodes := []*anomalies.Chaser{
		anomalies.NewChaser(f.Store, anomalies.ChaseConfig{Actor: "node1"}, f.Clock, nil),
		anomalies.NewChaser(f.Store, anomalies.ChaseConfig{Actor: "node2"}, f.Clock, nil),
	}
	for i := range 10 {
		id := "L" + string(rune('a'+i))
		lot := f.NewLot(anomaliestest.LotSpec{ID: id, Tenant: "acme", Destination: "CPAM-751", Seed: int64(i)}, lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotSent)
		f.Commit(&store.Change{Expectations: []store.Expectation{nodes[0].Expect(lot, anomalies.ExpectARL, id+"-arl", f.Now())}})
	}
	f.Clock.Advance(48 * time.Hour)
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, c := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Tick(f.Ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if jobs := f.Jobs(anomalies.JobDeliver); len(jobs) != 10 {
		t.Fatalf("%d resend jobs for 10 lots", len(jobs))
	}
	for i := range 10 {
		evs, _ := f.Store.Events(f.Ctx, "lot:L"+string(rune('a'+i)))
		n := 0
		for _, e := range evs {
			if e.To == lifecycle.LotARLOverdue {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("lot moved to arl_overdue %d times", n)
		}
	}
}

func TestChaseRSPMissing(t *testing.T) {
	f := anomaliestest.New(t)
	c := anomalies.NewChaser(f.Store, anomalies.ChaseConfig{}, f.Clock, nil)
	lot := f.NewLot(anomaliestest.LotSpec{ID: "L1", Tenant: "acme", Destination: "CPAM-751"}, lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotSent, lifecycle.LotARLPositive)
	f.Commit(&store.Change{Expectations: []store.Expectation{c.Expect(lot, anomalies.ExpectRSP, "L1-rsp", f.Now())}})
	f.Clock.Advance(29 * 24 * time.Hour)
	if n := tick(t, c, f); n != 0 {
		t.Fatal("RSP chased early")
	}
	f.Clock.Advance(24 * time.Hour)
	if n := tick(t, c, f); n != 1 {
		t.Fatal("RSP not chased")
	}
	as, _ := f.Store.Anomalies(f.Ctx, store.AnomalyQuery{Kind: anomalies.KindRSPMissing})
	if len(as) != 1 || as[0].Reason != "acknowledged but no payment return (RSP) 30 days later" {
		t.Fatalf("%+v", as)
	}
}

func TestChaseMarksNegativeToRebuild(t *testing.T) {
	f := anomaliestest.New(t)
	c := anomalies.NewChaser(f.Store, anomalies.ChaseConfig{}, f.Clock, nil)
	f.NewLot(anomaliestest.LotSpec{ID: "L1", Tenant: "acme", Destination: "CPAM-751"}, lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotSent)
	f.Commit(&store.Change{Transitions: []store.Transition{{Kind: lifecycle.Lot, ID: "L1", From: lifecycle.LotSent, To: lifecycle.LotARLNegative, Actor: "returns", Reason: "negative ARL: R12"}}})
	if n := tick(t, c, f); n != 1 {
		t.Fatalf("acted %d", n)
	}
	evs, _ := f.Store.Events(f.Ctx, "lot:L1")
	last := evs[len(evs)-1]
	if last.To != lifecycle.LotToRebuild || last.Reason != "to rebuild: negative ARL: R12" {
		t.Fatalf("%+v", last)
	}
	if err := anomalies.MarkToRebuild(f.Ctx, f.Store, "L1", "", "x"); err == nil {
		t.Fatal("marked twice")
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{48 * time.Hour: "48 h", 720 * time.Hour: "30 days", 90 * time.Minute: "90 min", 1500 * time.Millisecond: "1.5s"} {
		if got := anomalies.Human(d); got != want {
			t.Errorf("%v: %q", d, got)
		}
	}
}
