package demo

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/gateway/store/sqlite"
)

// TestReturnFiguresSeeWhatWentWrong builds a journal where everything the
// demo's targets forbid happened once, and checks that returnFigures
// counts each from the store: a resend started after the lot's positive
// ARL, a rejected invoice without anomaly, a sent lot without any return,
// a lot the caisse received more often than it was sent.
func TestReturnFiguresSeeWhatWentWrong(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	now := t0
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "oct.db"), Now: func() time.Time { return now },
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	commit := func(c *store.Change) {
		t.Helper()
		if err := st.Commit(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	lot := func(id string, n int) store.Lot {
		return store.Lot{ID: id, File: "F1", Tenant: "v1", Emitter: "100000001", Number: n, Date: "2026-11-01", State: lifecycle.LotCreated}
	}
	toSent := func(id string) []store.Transition {
		var out []store.Transition
		for _, s := range [][2]lifecycle.State{{lifecycle.LotCreated, lifecycle.LotRouted}, {lifecycle.LotRouted, lifecycle.LotSigned},
			{lifecycle.LotSigned, lifecycle.LotSent}} {
			out = append(out, store.Transition{Kind: lifecycle.Lot, ID: id, From: s[0], To: s[1], Actor: "test"})
		}
		return out
	}
	commit(&store.Change{
		Lots: []store.Lot{lot("L1", 1), lot("L2", 2)},
		Invoices: []store.Invoice{
			{ID: "L1-0", Lot: "L1", Tenant: "v1", Number: "1", State: lifecycle.InvoicePending},
			{ID: "L1-1", Lot: "L1", Tenant: "v1", Number: "2", State: lifecycle.InvoicePending},
			{ID: "L1-2", Lot: "L1", Tenant: "v1", Number: "3", State: lifecycle.InvoicePending},
		},
		Attempts: []store.Attempt{
			{ID: "L1-a1", Lot: "L1", Started: t0, Ended: t0, Outcome: "ok"},
			{ID: "L2-a1", Lot: "L2", Started: t0, Ended: t0, Outcome: "ok"},
		},
		Transitions: append(toSent("L1"), toSent("L2")...),
	})
	now = t0.Add(time.Minute) // the positive ARL of L1, and its RSP rejecting two invoices
	commit(&store.Change{
		Returns: []store.Return{{ID: "R1", Tenant: "v1", Kind: "arl", Lot: "L1"}},
		Anomalies: []store.Anomaly{{ID: "A1", Kind: anomalies.KindInvoiceRejected, Subject: "invoice:L1-1", Tenant: "v1",
			State: lifecycle.AnomalyOpen, Created: now}},
		Transitions: []store.Transition{
			{Kind: lifecycle.Lot, ID: "L1", From: lifecycle.LotSent, To: lifecycle.LotARLPositive, Actor: "test"},
			{Kind: lifecycle.Invoice, ID: "L1-1", From: lifecycle.InvoicePending, To: lifecycle.InvoiceRejected, Actor: "test"},
			{Kind: lifecycle.Invoice, ID: "L1-2", From: lifecycle.InvoicePending, To: lifecycle.InvoiceRejected, Actor: "test"},
		},
	})
	// A resend of L1 after its positive ARL: what the chase must never do.
	commit(&store.Change{Attempts: []store.Attempt{{ID: "L1-a2", Lot: "L1", Resend: true, Started: t0.Add(2 * time.Minute),
		Ended: t0.Add(2 * time.Minute), Outcome: "ok"}}})

	received := map[lotKey]int{{"100000001", 1, "2026-11-01"}: 2, {"100000001", 2, "2026-11-01"}: 2}
	f, err := returnFigures(ctx, st, []string{"v1"}, received)
	if err != nil {
		t.Fatal(err)
	}
	want := Returns{LotsSent: 2, LotsWithoutReturn: 1, WithoutReturnPct: 50, Resent: 1, LotsResent: 1, ResentAfterPositiveARL: 1,
		RejectedInvoices: 2, RejectedInQueue: 1, RejectedUnhandled: 1, doubleSent: 1}
	if f != want {
		t.Fatalf("figures\n got %+v\nwant %+v", f, want)
	}
	var s Summary
	s.Files, s.Terminal, s.Returns, s.DoubleSent = 1, 1, f, f.doubleSent
	s.check(Options{LostARLRate: 0.3})
	if s.TargetsMet || len(s.Failures) != 4 {
		t.Fatalf("targets: met %v, failures %q", s.TargetsMet, s.Failures)
	}
}
