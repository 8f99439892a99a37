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
}
