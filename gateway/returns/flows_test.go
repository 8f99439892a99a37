package returns

import (
	"testing"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/formats/scor"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// scorPair adds a B2 lot L1 (file id F00001) and the SCOR lot S1 that goes
// with it: same émetteur, lot number and date, both sent.
func scorPair(e *env) {
	e.t.Helper()
	e.addLot(lotSpec{id: "L1", invoices: []string{"000000101"}, fileID: "F00001"})
	e.addLot(lotSpec{id: "S1"})
	sl, err := e.st.Lot(e.ctx, "S1")
	if err != nil {
		e.t.Fatal(err)
	}
	sl.Flow, sl.Ref = store.FlowSCOR, "L1"
	if err := e.st.Commit(e.ctx, &store.Change{Lots: []store.Lot{sl}}); err != nil {
		e.t.Fatal(err)
	}
}

func scorARL(t *testing.T) []byte {
	return message(t, "arl-scor", arlFile(t, arl.ARL{FileID: scor.FileID("S1"), LotNumber: 1, Positive: true}))
}

func b2ARL(t *testing.T) []byte {
	return message(t, "arl-b2", arlFile(t, arl.ARL{FileID: "F00001", LotNumber: 1, Positive: true}))
}

// TestSCORARLGoesToItsOwnLot: a SCOR lot shares the (émetteur, lot, date)
// of its B2 lot; its ARL carries the SCOR file id and moves the SCOR lot
// alone, which then settles (no payments follow a SCOR ARL). The B2 lot's
// own ARL still finds the B2 lot.
func TestSCORARLGoesToItsOwnLot(t *testing.T) {
	e := newEnv(t)
	scorPair(e)
	out := e.process(scorARL(t))
	if len(out.Returns) != 1 || out.Returns[0].Lot != "S1" || out.Returns[0].Orphan {
		t.Fatalf("SCOR ARL: %+v", out)
	}
	if e.lotState("S1") != lifecycle.LotSettled || e.lotState("L1") != lifecycle.LotSent {
		t.Fatalf("states: S1 %s, L1 %s", e.lotState("S1"), e.lotState("L1"))
	}
	out = e.process(b2ARL(t))
	if len(out.Returns) != 1 || out.Returns[0].Lot != "L1" {
		t.Fatalf("B2 ARL: %+v", out)
	}
	if e.lotState("L1") != lifecycle.LotARLPositive {
		t.Fatalf("L1 %s", e.lotState("L1"))
	}
}

// TestBatchSCORAndB2ARLs: the two ARLs in one batch: each moves its own
// lot, as one by one.
func TestBatchSCORAndB2ARLs(t *testing.T) {
	e := newEnv(t)
	scorPair(e)
	outs, n, err := e.proc.ProcessBatch(e.ctx, [][]byte{scorARL(t), b2ARL(t)})
	if n != 2 || err != nil {
		t.Fatalf("%d done: %v", n, err)
	}
	if len(outs[0].Returns) != 1 || outs[0].Returns[0].Lot != "S1" || len(outs[1].Returns) != 1 || outs[1].Returns[0].Lot != "L1" {
		t.Fatalf("outcomes %+v", outs)
	}
	if e.lotState("S1") != lifecycle.LotSettled || e.lotState("L1") != lifecycle.LotARLPositive {
		t.Fatalf("states: S1 %s, L1 %s", e.lotState("S1"), e.lotState("L1"))
	}
}
