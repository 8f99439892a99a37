package demo

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestDemoRunsEveryFileToATerminalState is the README's first command in
// small: files pushed over the API, signed, sent to the simulated caisses
// over SMTP + S/MIME, acknowledged and paid, nothing lost or sent twice.
func TestDemoRunsEveryFileToATerminalState(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := Run(ctx, Options{Files: 24, Vendors: 2, Invoices: 8, FaultRate: 0.2, Seed: 3, Timeout: 60 * time.Second,
		NegativeARLRate: 0.1, RejectRate: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"files", "terminal", "lost", "double_sent", "arl_positive", "arl_negative", "rsp", "anomalies", "elapsed_s"} {
		if _, ok := m[k]; !ok {
			t.Errorf("summary has no %q: %s", k, b)
		}
	}
	if s.TimedOut || s.Files != 24 || s.Terminal != s.Files || s.Lost != 0 || s.DoubleSent != 0 {
		t.Fatalf("summary %s", b)
	}
	if s.Rejected == 0 || s.ARLPositive == 0 || s.RSP == 0 || s.Settled == 0 || s.Anomalies == 0 {
		t.Fatalf("the demo did not exercise the whole flow: %s", b)
	}
	// The flows beside B2, through the simulated SSA, AMC and caisses.
	f := s.Flows
	if f == nil || f.NotTerminal != 0 || f.Certificates != 3 || f.PEC != 3 || f.SCOR != 3 ||
		f.CertAccepted+f.CertRefused+f.CertArbiter != f.Certificates-f.CertRejected ||
		f.PECAgreement+f.PECPartial+f.PECRefusal+f.PECUnroutable != f.PEC ||
		f.SCORAcknowledged != f.SCOR-f.SCORRejected || f.StatusReturns < 3*(f.Certificates-f.CertRejected) || f.PECAnswerReturns == 0 {
		t.Fatalf("flows %+v", f)
	}
}

// TestDemoChasesLostARLs is issue #8's "must show" in small: 30 % of the
// caisses' answers are lost on the way, the chase (demo time) resends the
// lots whose ARL is late and escalates those still silent; at the end fewer
// than 1 % of the sent lots have no return, no lot was resent after its
// positive ARL, and every rejected invoice is in the queue or handed back.
// The figures come from the store (attempts, returns, events, invoices,
// anomalies), so a resend after a positive ARL or a forgotten reject would
// show.
func TestDemoChasesLostARLs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	// About 60 lots, so "fewer than 1 %" means none without any return.
	// Each answer is lost with probability 0.3 independently, so a lot
	// stays silent through the send and 5 resends with probability 0.3^6 =
	// 0.07 %: 0.04 lots expected here, about one seed in 20 has one (seed 5
	// does: lot 1 of file F00033 draws six losses in a row). With 1 resend
	// it would be 9 %, see TestDemoOneResendMissesTheTarget.
	s, err := Run(ctx, Options{Files: 40, Vendors: 2, Invoices: 4, FaultRate: 0, Seed: 7, Timeout: 120 * time.Second,
		NegativeARLRate: 0.05, RejectRate: 0.1, LostARLRate: 0.3, MaxResends: 5, ARLDeadline: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	t.Logf("summary %s", b)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"lots_sent", "lots_without_return", "without_return_pct", "resent", "resent_after_positive_arl",
		"escalated", "rejected_invoices", "rejected_invoices_unhandled", "targets_met"} {
		if _, ok := m[k]; !ok {
			t.Errorf("summary has no %q", k)
		}
	}
	r := s.Returns
	if !s.TargetsMet || s.TimedOut || s.Lost != 0 || s.DoubleSent != 0 {
		t.Fatalf("targets missed: %v", s.Failures)
	}
	if r.LotsSent < 40 || r.WithoutReturnPct >= 1 || r.ResentAfterPositiveARL != 0 || r.RejectedUnhandled != 0 {
		t.Fatalf("figures: %+v", r)
	}
	// The run must have exercised what it claims: answers lost, lots
	// resent and answered, rejects both in the queue and handed back.
	if r.LostARLs == 0 || r.LotsResent == 0 || r.Resent < r.LotsResent || r.RejectedInvoices == 0 ||
		r.RejectedInQueue == 0 || r.RejectedHandedBack == 0 {
		t.Fatalf("the run did not exercise the chase: %+v", r)
	}
}

// TestDemoOneResendMissesTheTarget: with the product's default policy (one
// resend) and 30 % of the answers lost, about 9 % of the lots lose both
// answers; the demo escalates them and reports the missed target instead
// of hiding it.
func TestDemoOneResendMissesTheTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	s, err := Run(ctx, Options{Files: 40, Vendors: 2, Invoices: 4, FaultRate: 0, Seed: 5, Timeout: 120 * time.Second,
		NegativeARLRate: 0.01, RejectRate: 0.01, LostARLRate: 0.3, ARLDeadline: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := s.Returns
	t.Logf("figures %+v", r)
	if s.TimedOut || r.MaxResends != 1 || r.ResentAfterPositiveARL != 0 {
		t.Fatalf("figures: %+v", r)
	}
	if r.LotsWithoutReturn == 0 || r.Escalated < r.LotsWithoutReturn || r.ExpectedWithoutReturnPct < 8.9 {
		t.Fatalf("expected escalated lots without any return: %+v", r)
	}
	if r.WithoutReturnPct < 1 || s.TargetsMet || len(s.Failures) == 0 {
		t.Fatalf("the missed target is not reported: %+v", s)
	}
}
