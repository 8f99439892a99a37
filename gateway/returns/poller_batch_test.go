package returns

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/gateway/lifecycle"
)

// crashAfterCommit hands batches to a BatchHandler and, the first time,
// reports nothing done although the batch was committed: what the poller
// sees when the process dies between the commit and the IMAP MOVE.
type crashAfterCommit struct {
	h       BatchHandler
	mu      sync.Mutex
	sizes   []int
	crashed bool
}

func (c *crashAfterCommit) Process(ctx context.Context, raw []byte) (Outcome, error) {
	outs, _, err := c.ProcessBatch(ctx, [][]byte{raw})
	return outs[0], err
}

func (c *crashAfterCommit) ProcessBatch(ctx context.Context, raws [][]byte) ([]Outcome, int, error) {
	outs, n, err := c.h.ProcessBatch(ctx, raws)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sizes = append(c.sizes, len(raws))
	if !c.crashed && err == nil {
		c.crashed = true
		return outs, 0, errors.New("crash between commit and move")
	}
	return outs, n, err
}

func (c *crashAfterCommit) batchSizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.sizes...)
}

// TestPollerBatchCrashAfterCommit: a round's messages (ARL then RSP of one
// lot, an unparsable message, an ARL of another lot) are handled as one
// batch; the batch is committed but the poller "crashes" before moving
// them. Nothing was moved and the cursor did not pass them, so they are
// handled again: all duplicates, only moved, no state changed twice.
func TestPollerBatchCrashAfterCommit(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", number: 1, invoices: []string{"000000101"}})
	e.addLot(lotSpec{id: "L2", number: 2, invoices: []string{"000000201"}})
	addr := memIMAP(t, rev2)
	c := imapClient(t, addr)
	msgs := [][]byte{
		message(t, "arl1", arlFile(t, arl.ARL{LotNumber: 1, Positive: true})),
		message(t, "rsp1", rspFile(t, "", rspInvoice{number: "000000101", lot: 1, state: 'P'})),
		[]byte("Subject: bounce\r\n\r\nnot a return\r\n"),
		message(t, "arl2", arlFile(t, arl.ARL{LotNumber: 2, Positive: true})),
	}
	for _, m := range msgs {
		appendMsg(t, c, "INBOX", m)
	}
	counting := newCounting(e.proc)
	h := &crashAfterCommit{h: counting}
	cur := mustCursor(t, e)
	p := newPoller(t, addr, h, cur, nil)
	stop := runPoller(t, p)
	waitFor(t, "messages moved after the crash", func() bool { s := p.Stats(); return s.Processed == 3 && s.Unparsable == 1 })
	stop()
	if sizes := h.batchSizes(); len(sizes) < 2 || sizes[0] != 4 || sizes[1] != 4 {
		t.Fatalf("batches %v: want the round's 4 messages together, twice", sizes)
	}
	if s := p.Stats(); s.Duplicates != 4 || s.Failures < 1 {
		t.Fatalf("stats %+v", s)
	}
	for i, m := range msgs {
		if n := counting.of(m); n != 2 {
			t.Errorf("message %d handled %d times", i, n)
		}
	}
	if count(t, c, "INBOX") != 0 || count(t, c, "OCT/processed") != 3 || count(t, c, "OCT/unparsable") != 1 {
		t.Fatalf("folders: inbox %d processed %d unparsable %d", count(t, c, "INBOX"),
			count(t, c, "OCT/processed"), count(t, c, "OCT/unparsable"))
	}
	if e.lotState("L1") != lifecycle.LotSettled || e.lotState("L2") != lifecycle.LotARLPositive {
		t.Fatalf("L1 %s, L2 %s", e.lotState("L1"), e.lotState("L2"))
	}
	evs, _ := e.st.Events(e.ctx, "lot:L1")
	moves := map[lifecycle.State]int{}
	for _, ev := range evs {
		if ev.Type == "transition" {
			moves[ev.To]++
		}
	}
	if moves[lifecycle.LotARLPositive] != 1 || moves[lifecycle.LotSettled] != 1 {
		t.Fatalf("L1 transitions %v", moves)
	}
	if n := len(e.anomalies(AnomalyUnparsable)); n != 1 {
		t.Fatalf("%d unparsable anomalies", n)
	}
	if _, uid, _ := cur.Load(e.ctx, "INBOX"); uid != 4 {
		t.Fatalf("cursor at %d", uid)
	}
}

// TestPollerBatchStopsAtFailure: in a batch, a message that must be
// retried (ErrNotYet) is left in INBOX with the ones after it and the
// cursor stops before it; the ones before it are moved. Once its lot is
// sent, the rest goes through in order.
func TestPollerBatchStopsAtFailure(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", number: 1, invoices: []string{"1"}})
	e.addLot(lotSpec{id: "L2", number: 2, invoices: []string{"2"}, upTo: lifecycle.LotSigned})
	e.addLot(lotSpec{id: "L3", number: 3, invoices: []string{"3"}})
	addr := memIMAP(t, rev2)
	c := imapClient(t, addr)
	for _, n := range []int{1, 2, 3} {
		appendMsg(t, c, "INBOX", message(t, "arl", arlFile(t, arl.ARL{LotNumber: n, Positive: true})))
	}
	cur := mustCursor(t, e)
	p := newPoller(t, addr, e.proc, cur, nil)
	stop := runPoller(t, p)
	waitFor(t, "first message moved, the second retried", func() bool {
		s := p.Stats()
		return s.Processed == 1 && s.Failures >= 2
	})
	if in, done := count(t, c, "INBOX"), count(t, c, "OCT/processed"); in != 2 || done != 1 {
		t.Fatalf("inbox %d, processed %d", in, done)
	}
	if _, uid, _ := cur.Load(e.ctx, "INBOX"); uid != 1 {
		t.Fatalf("cursor at %d, want 1", uid)
	}
	if e.lotState("L3") != lifecycle.LotSent {
		t.Fatal("the message after the failing one was applied")
	}
	e.walk("L2", lifecycle.LotSigned, lifecycle.LotSent)
	waitFor(t, "the rest moved", func() bool { return p.Stats().Processed == 3 })
	stop()
	if e.lotState("L2") != lifecycle.LotARLPositive || e.lotState("L3") != lifecycle.LotARLPositive {
		t.Fatalf("L2 %s, L3 %s", e.lotState("L2"), e.lotState("L3"))
	}
	if _, uid, _ := cur.Load(e.ctx, "INBOX"); uid != 3 || count(t, c, "INBOX") != 0 {
		t.Fatalf("cursor at %d, inbox %d", uid, count(t, c, "INBOX"))
	}
}

// TestPollerBatchBytes: MaxBatchBytes splits a round into chunks (here one
// message each), and a message over MaxMessageBytes is moved to the
// unparsable folder without being fetched or handled.
func TestPollerBatchBytes(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", number: 1, invoices: []string{"1"}})
	e.addLot(lotSpec{id: "L2", number: 2, invoices: []string{"2"}})
	addr := memIMAP(t, rev2)
	c := imapClient(t, addr)
	a1 := message(t, "a1", arlFile(t, arl.ARL{LotNumber: 1, Positive: true}))
	big := message(t, "big", arlFile(t, arl.ARL{LotNumber: 2, Positive: true}), arlFile(t, arl.ARL{LotNumber: 2, Positive: true}))
	a2 := message(t, "a2", arlFile(t, arl.ARL{LotNumber: 2, Positive: true}))
	for _, m := range [][]byte{a1, big, a2} {
		appendMsg(t, c, "INBOX", m)
	}
	h := newCounting(e.proc)
	p := newPoller(t, addr, h, mustCursor(t, e), func(o *PollerOptions) {
		o.MaxMessageBytes = int64(len(big) - 1)
		o.MaxBatchBytes = 1
	})
	stop := runPoller(t, p)
	waitFor(t, "all moved", func() bool { s := p.Stats(); return s.Processed == 2 && s.Unparsable == 1 })
	stop()
	h.mu.Lock()
	batches := h.batches
	h.mu.Unlock()
	if batches != 2 || h.of(big) != 0 || h.of(a1) != 1 || h.of(a2) != 1 {
		t.Fatalf("%d batches; handled a1 %d, big %d, a2 %d", batches, h.of(a1), h.of(big), h.of(a2))
	}
	if count(t, c, "OCT/unparsable") != 1 || e.lotState("L2") != lifecycle.LotARLPositive {
		t.Fatal("big message not set aside, or L2 not applied")
	}
}
