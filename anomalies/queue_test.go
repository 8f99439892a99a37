package anomalies_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/anomalies/anomaliestest"
	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

type fakeNotifier struct {
	mu   sync.Mutex
	got  []anomalies.Notice
	fail error
}

func (n *fakeNotifier) Notify(_ context.Context, x anomalies.Notice) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail != nil {
		return n.fail
	}
	n.got = append(n.got, x)
	return nil
}

func newQueue(t *testing.T, f *anomaliestest.Fixture, o anomalies.Options) *anomalies.Queue {
	t.Helper()
	o.Store, o.Blobs, o.Clock = f.Store, f.Blobs, f.Clock
	q, err := anomalies.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func anomalyOf(t *testing.T, f *anomaliestest.Fixture, id string) store.Anomaly {
	t.Helper()
	a, err := f.Store.Anomaly(f.Ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAutoAssignBalanced(t *testing.T) {
	f := anomaliestest.New(t)
	q := newQueue(t, f, anomalies.Options{
		Rules: []anomalies.Rule{
			{Kind: anomalies.KindDeliveryFailed, Destination: "CPAM-751", Team: "paris"},
			{Kind: anomalies.KindDeliveryFailed, Team: "tech"},
			{Tenant: "acme", Team: "acme-desk"},
		},
		Roster: anomalies.StaticRoster{"tech": {"bob", "alice"}, "paris": {"carol"}},
	})
	f.Anomaly("A0", anomalies.KindDeliveryFailed, "lot:X0", "beta", "CPAM-130", 4*time.Hour)
	if err := q.Assign(f.Ctx, "A0", "alice", "lead"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"A1", "A2", "A3"} {
		f.Clock.Advance(time.Minute)
		f.Anomaly(id, anomalies.KindDeliveryFailed, "lot:"+id, "beta", "CPAM-130", 4*time.Hour)
	}
	f.Anomaly("P1", anomalies.KindDeliveryFailed, "lot:P1", "beta", "CPAM-751", 4*time.Hour)
	f.Anomaly("N1", anomalies.KindOrphanReturn, "return:R1", "", "", 4*time.Hour)     // no rule
	f.Anomaly("D1", anomalies.KindOrphanReturn, "return:R2", "acme", "", 4*time.Hour) // rule, nobody on duty
	n, err := q.AutoAssignOpen(f.Ctx, 0, "auto")
	if err != nil || n != 4 {
		t.Fatalf("assigned %d: %v", n, err)
	}
	want := map[string]string{"A1": "bob", "A2": "alice", "A3": "bob", "P1": "carol", "N1": "", "D1": ""}
	for id, who := range want {
		if a := anomalyOf(t, f, id); a.Assignee != who {
			t.Errorf("%s assigned to %q, want %q", id, a.Assignee, who)
		}
	}
	if _, err := q.AutoAssign(f.Ctx, "D1", "auto"); !errors.Is(err, anomalies.ErrNoAgent) {
		t.Fatalf("D1: %v", err)
	}
	if _, err := q.AutoAssign(f.Ctx, "N1", "auto"); !errors.Is(err, anomalies.ErrNoRule) {
		t.Fatalf("N1: %v", err)
	}
	// reassignment and history
	if err := q.Assign(f.Ctx, "A1", "alice", "lead"); err != nil {
		t.Fatal(err)
	}
	d, err := q.Get(f.Ctx, "A1")
	if err != nil || d.Assignee != "alice" || d.State != lifecycle.AnomalyAssigned {
		t.Fatalf("%+v %v", d, err)
	}
	if r := d.History[len(d.History)-1].Reason; r != "reassigned from bob to alice" {
		t.Fatalf("history %q", r)
	}
}

func TestCommentResolveHandBack(t *testing.T) {
	f := anomaliestest.New(t)
	notes := &fakeNotifier{}
	q := newQueue(t, f, anomalies.Options{Notifier: notes})
	f.Anomaly("A1", anomalies.KindInvoiceRejected, "invoice:L1-0", "acme", "CPAM-751", time.Hour)
	f.Anomaly("A2", anomalies.KindRefused, "file:F1", "acme", "", time.Hour)
	if err := q.Comment(f.Ctx, "A1", "alice", "patient 1 84 12 75 123 456 78 called"); err != nil {
		t.Fatal(err)
	}
	if err := q.Comment(f.Ctx, "A1", "alice", "  "); !errors.Is(err, anomalies.ErrBadRequest) {
		t.Fatalf("empty comment: %v", err)
	}
	if err := q.Resolve(f.Ctx, "A1", "alice", "whatever", ""); !errors.Is(err, anomalies.ErrBadRequest) {
		t.Fatalf("unknown code: %v", err)
	}
	if err := q.Resolve(f.Ctx, "A1", "alice", "fixed", "corrected"); err != nil {
		t.Fatal(err)
	}
	if err := q.Resolve(f.Ctx, "A1", "alice", "fixed", ""); !errors.Is(err, anomalies.ErrNotAllowed) {
		t.Fatalf("resolved twice: %v", err)
	}
	d, err := q.Get(f.Ctx, "A1")
	if err != nil || len(d.Comments) != 1 || d.Lot != "L1" {
		t.Fatalf("%+v %v", d, err)
	}
	if c := d.Comments[0].Reason; strings.Contains(c, "123 456") || !strings.Contains(c, "[NIR masqué]") {
		t.Fatalf("NIR kept in comment: %q", c)
	}
	if last := d.History[len(d.History)-1]; last.To != lifecycle.AnomalyResolved || last.Reason != "fixed: corrected" {
		t.Fatalf("%+v", last)
	}

	notes.fail = errors.New("outbox full")
	if err := q.HandBack(f.Ctx, "A2", "bob", "vendor-data", "fix the header"); !errors.Is(err, anomalies.ErrNotify) {
		t.Fatalf("hand back with a failing notifier: %v", err)
	}
	if a := anomalyOf(t, f, "A2"); a.State != lifecycle.AnomalyHandedBack {
		t.Fatalf("state %s", a.State)
	}
	notes.fail = nil
	if err := q.NotifyAgain(f.Ctx, "A2", "bob"); err != nil {
		t.Fatal(err)
	}
	if len(notes.got) != 1 || notes.got[0].Tenant != "acme" || notes.got[0].Action != "handed-back" || !strings.Contains(notes.got[0].Reason, "fix the header") {
		t.Fatalf("%+v", notes.got)
	}
}

func TestResendIdempotent(t *testing.T) {
	f := anomaliestest.New(t)
	q := newQueue(t, f, anomalies.Options{})
	f.NewLot(anomaliestest.LotSpec{ID: "L1", Tenant: "acme", Destination: "D"}, lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotSent)
	f.NewLot(anomaliestest.LotSpec{ID: "L2", Tenant: "acme", Destination: "D"}, lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotSent, lifecycle.LotARLPositive)
	f.NewLot(anomaliestest.LotSpec{ID: "L3", Tenant: "acme", Destination: "D"}, lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotDeliveryFailed)
	f.Anomaly("A1", anomalies.KindARLMissing, "lot:L1", "acme", "D", time.Hour)
	f.Anomaly("A2", anomalies.KindARLMissing, "lot:L2", "acme", "D", time.Hour)
	f.Anomaly("A3", anomalies.KindDeliveryFailed, "lot:L3", "acme", "D", time.Hour)
	f.Anomaly("A4", anomalies.KindOrphanReturn, "return:R1", "", "", time.Hour)
	for range 2 {
		if err := q.Resend(f.Ctx, "A1", "act1", "alice"); err != nil {
			t.Fatal(err)
		}
	}
	if jobs := f.Jobs(anomalies.JobDeliver); len(jobs) != 1 || jobs[0].Key != "resend-act1" {
		t.Fatalf("%+v", jobs)
	}
	if s := lotState(t, f, "L1"); s != lifecycle.LotARLOverdue {
		t.Fatalf("L1 %s", s)
	}
	if err := q.Resend(f.Ctx, "A2", "act2", "alice"); !errors.Is(err, anomalies.ErrNotAllowed) {
		t.Fatalf("acknowledged lot resent: %v", err)
	}
	if err := q.Resend(f.Ctx, "A3", "act3", "alice"); err != nil {
		t.Fatal(err)
	}
	if s := lotState(t, f, "L3"); s != lifecycle.LotRouted {
		t.Fatalf("L3 %s", s)
	}
	if jobs := f.Jobs(anomalies.JobSign); len(jobs) != 1 || jobs[0].Subject != "L3" {
		t.Fatalf("%+v", jobs)
	}
	if err := q.Resend(f.Ctx, "A4", "act4", "alice"); !errors.Is(err, anomalies.ErrNoLot) {
		t.Fatalf("orphan: %v", err)
	}
	if err := q.Resend(f.Ctx, "A1", "bad id", "alice"); !errors.Is(err, anomalies.ErrBadRequest) {
		t.Fatalf("bad action id: %v", err)
	}
}

func TestRebuild(t *testing.T) {
	f := anomaliestest.New(t)
	notes := &fakeNotifier{}
	q := newQueue(t, f, anomalies.Options{Notifier: notes})
	f.NewLot(anomaliestest.LotSpec{ID: "L0", Tenant: "acme", Number: 41})
	f.NewLot(anomaliestest.LotSpec{ID: "L1", Tenant: "acme", Destination: "D", Invoices: 4, Number: 7},
		lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotSent, lifecycle.LotARLNegative)
	invs, _ := f.Store.Invoices(f.Ctx, "L1")
	bad := invs[1]
	bad.Codes = []string{"R12"}
	f.Commit(&store.Change{Invoices: []store.Invoice{bad}})
	f.Anomaly("A1", anomalies.KindARLNegative, "lot:L1", "acme", "D", time.Hour)

	res, err := q.Rebuild(f.Ctx, "A1", nil, "rb1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if res.Number != 42 || res.New != "L1-rrb1" || len(res.Dropped) != 1 || res.Dropped[0] != bad.Number {
		t.Fatalf("%+v", res)
	}
	nl, err := f.Store.Lot(f.Ctx, res.New)
	if err != nil || nl.State != lifecycle.LotCreated || nl.Replaces != "L1" || nl.Number != 42 || nl.Invoices != 3 {
		t.Fatalf("%+v %v", nl, err)
	}
	rc, err := f.Blobs.Open(f.Ctx, nl.Blob)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	rep, err := b2.Validate(bytes.NewReader(data), b2.Options{Summaries: true})
	if err != nil || !rep.Valid || rep.Lots[0].Number != 42 || len(rep.Lots[0].Invoices) != 3 {
		t.Fatalf("rebuilt file: %v %+v", err, rep)
	}
	var sum int64
	for _, inv := range rep.Lots[0].Invoices {
		sum += inv.Billed
		if inv.Number == bad.Number {
			t.Fatal("dropped invoice still in the file")
		}
	}
	if sum != nl.Amount {
		t.Fatalf("amount %d != %d", nl.Amount, sum)
	}
	if s := lotState(t, f, "L1"); s != lifecycle.LotRebuilt {
		t.Fatalf("old lot %s", s)
	}
	oldInvs, _ := f.Store.Invoices(f.Ctx, "L1")
	if oldInvs[1].State != lifecycle.InvoiceDropped || oldInvs[0].State != lifecycle.InvoicePending {
		t.Fatalf("%+v", oldInvs)
	}
	if a := anomalyOf(t, f, "A1"); a.State != lifecycle.AnomalyResolved {
		t.Fatalf("anomaly %s", a.State)
	}
	if jobs := f.Jobs(anomalies.JobRoute); len(jobs) != 1 || jobs[0].Subject != res.New {
		t.Fatalf("%+v", jobs)
	}
	if len(notes.got) != 1 || notes.got[0].Action != "rebuilt" || notes.got[0].NewLot != res.New || notes.got[0].Invoices[0] != bad.Number {
		t.Fatalf("%+v", notes.got)
	}
	if _, err := q.Rebuild(f.Ctx, "A1", nil, "rb1", "alice"); !errors.Is(err, anomalies.ErrNotAllowed) {
		t.Fatalf("rebuilt twice: %v", err)
	}
}

func TestBulkResendIdempotent(t *testing.T) {
	f := anomaliestest.New(t)
	q := newQueue(t, f, anomalies.Options{})
	for i := range 5 {
		id := string(rune('a' + i))
		f.NewLot(anomaliestest.LotSpec{ID: "L" + id, Tenant: "acme", Destination: "D"}, lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotSent)
		f.Anomaly("A"+id, anomalies.KindARLMissing, "lot:L"+id, "acme", "D", time.Duration(i+1)*time.Hour)
	}
	f.Anomaly("X", anomalies.KindARLMissing, "lot:Lx", "other", "D", time.Hour)
	f.Clock.Advance(2 * time.Hour)
	flt := anomalies.Filter{Kind: anomalies.KindARLMissing, Tenant: "acme", State: anomalies.StateActive, OlderThan: time.Hour}
	if n, err := q.Count(f.Ctx, flt); err != nil || n != 5 {
		t.Fatalf("count %d %v", n, err)
	}
	pv, err := q.Preview(f.Ctx, flt, 3)
	if err != nil || len(pv) != 3 || pv[0].ID != "Aa" || !pv[0].Overdue || pv[2].Overdue {
		t.Fatalf("preview %+v %v", pv, err)
	}
	req := anomalies.BulkRequest{ID: "bulk1", Filter: flt, Action: anomalies.BulkResend, Limit: 3, Actor: "alice"}
	r1, err := q.Bulk(f.Ctx, req)
	if err != nil || r1.Done != 3 || r1.Skipped != 0 {
		t.Fatalf("%+v %v", r1, err)
	}
	r2, err := q.Bulk(f.Ctx, req) // a double click
	if err != nil || r2.Done != 0 || r2.Skipped != 3 {
		t.Fatalf("%+v %v", r2, err)
	}
	jobs := f.Jobs(anomalies.JobDeliver)
	if len(jobs) != 3 {
		t.Fatalf("%d resend jobs", len(jobs))
	}
	for _, j := range jobs {
		if j.Key != "resend-bulk1" {
			t.Fatalf("key %q", j.Key)
		}
	}
	evs, _ := f.Store.Events(f.Ctx, "bulk:bulk1")
	if len(evs) != 6 {
		t.Fatalf("%d audit events", len(evs))
	}
	// bulk resolve of the rest, then nothing matches any more
	r3, err := q.Bulk(f.Ctx, anomalies.BulkRequest{ID: "bulk2", Filter: flt, Action: anomalies.BulkResolve, Code: "resent", Limit: 10, Actor: "alice"})
	if err != nil || r3.Done != 5 {
		t.Fatalf("%+v %v", r3, err)
	}
	if n, _ := q.Count(f.Ctx, flt); n != 0 {
		t.Fatalf("%d left", n)
	}
	if _, err := q.Bulk(f.Ctx, anomalies.BulkRequest{ID: "b3", Filter: flt, Action: anomalies.BulkResend, Limit: 0}); !errors.Is(err, anomalies.ErrBadRequest) {
		t.Fatalf("no limit: %v", err)
	}
}

func TestMaskNIR(t *testing.T) {
	for in, want := range map[string]string{
		"nir 184127512345678 ok":    "nir [NIR masqué] ok",
		"nir 2 84 12 2A 123 456 ok": "nir [NIR masqué] ok",
		"invoice 000123456 lot 042": "invoice 000123456 lot 042",
	} {
		if got := anomalies.MaskNIR(in); got != want {
			t.Errorf("%q -> %q", in, got)
		}
	}
}
