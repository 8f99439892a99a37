package returns

import (
	"testing"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/formats/scor"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// TestBatchSCORAndB2ARLs: the ARL of a SCOR lot and the ARL of the B2 lot
// it goes with (same émetteur, lot number and date) in one batch: each
// moves its own lot, as one by one (TestSCORARLGoesToItsOwnLot).
func TestBatchSCORAndB2ARLs(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"000000101"}, fileID: "F00001"})
	e.addLot(lotSpec{id: "S1"})
	sl, err := e.st.Lot(e.ctx, "S1")
	if err != nil {
		t.Fatal(err)
	}
	sl.Flow, sl.Ref = store.FlowSCOR, "L1"
	if err := e.st.Commit(e.ctx, &store.Change{Lots: []store.Lot{sl}}); err != nil {
		t.Fatal(err)
	}
	outs, n, err := e.proc.ProcessBatch(e.ctx, [][]byte{
		message(t, "arl-scor", arlFile(t, arl.ARL{FileID: scor.FileID("S1"), LotNumber: 1, Positive: true})),
		message(t, "arl-b2", arlFile(t, arl.ARL{FileID: "F00001", LotNumber: 1, Positive: true})),
	})
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
