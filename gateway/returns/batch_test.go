package returns

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// batchLots creates the lots of the batch tests: L1 (number 1, invoice
// 101), L2 (number 2, invoice 201), both sent. The RSP deadline differs
// from the lots' own rsp expectation (30 days), so that an expectation
// moved by an ARL shows.
func batchLots(e *env) {
	e.proc.o.RSPDeadline = 500 * time.Hour
	e.addLot(lotSpec{id: "L1", number: 1, invoices: []string{"000000101"}})
	e.addLot(lotSpec{id: "L2", number: 2, invoices: []string{"000000201"}})
}

// mixedBatch: an ARL then the RSP of the same lot, an unparsable message,
// an orphan ARL, a negative ARL, and duplicates of a good and of an
// unparsable message, all in one batch.
func mixedBatch(t *testing.T) [][]byte {
	ack1 := message(t, "arl1", arlFile(t, arl.ARL{LotNumber: 1, Positive: true}))
	garbage := []byte("Subject: not a return\r\n\r\nhello\r\n")
	return [][]byte{
		ack1,
		garbage,
		message(t, "orphan", arlFile(t, arl.ARL{LotNumber: 42, Positive: true})),
		message(t, "rsp1", rspFile(t, "", rspInvoice{number: "000000101", lot: 1, state: 'P'})),
		ack1, // duplicate of a message of the same batch
		message(t, "nack2", arlFile(t, arl.ARL{LotNumber: 2, Positive: false,
			Reasons: []arl.Reason{{Code: "A01", Label: "FICHIER ILLISIBLE"}}})),
		garbage, // duplicate of an unparsable one
	}
}

// snapshot is what a run left in the journal and the tenants' folders,
// independent of the order of commits.
type snapshot struct {
	Lots        map[string]lifecycle.State
	Invoices    map[string]string // id → state and codes
	Expectation map[string]string // id → satisfied by, due
	Returns     []string          // id, tenant, lot, orphan, kind
	Anomalies   []string          // id, kind, subject, tenant, state
	Events      []string          // subject, type, from, to, reason (sorted)
	Relayed     []string
}

func (e *env) snapshot() snapshot {
	e.t.Helper()
	s := snapshot{Lots: map[string]lifecycle.State{}, Invoices: map[string]string{}, Expectation: map[string]string{}}
	for _, lot := range []string{"L1", "L2", "L3"} {
		l, err := e.st.Lot(e.ctx, lot)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		s.Lots[lot] = l.State
		is, _ := e.st.Invoices(e.ctx, lot)
		for _, i := range is {
			s.Invoices[i.ID] = fmt.Sprint(i.State, i.Codes)
		}
		xs, _ := e.st.Expectations(e.ctx, lot)
		for _, x := range xs {
			s.Expectation[x.ID] = x.SatisfiedBy + " " + x.DueAt.UTC().String()
		}
	}
	for _, tn := range []string{tenantA, tenantB, ""} {
		for _, r := range e.feed(tn) {
			s.Returns = append(s.Returns, fmt.Sprint(r.ID, r.Tenant, r.Lot, r.Orphan, r.Kind))
		}
	}
	for _, a := range e.anomalies("") {
		s.Anomalies = append(s.Anomalies, fmt.Sprint(a.ID, a.Kind, a.Subject, a.Tenant, a.State))
	}
	evs, err := e.st.EventsAfter(e.ctx, 0, 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, ev := range evs {
		s.Events = append(s.Events, strings.Join([]string{ev.Subject, ev.Type, string(ev.From), string(ev.To), ev.Reason}, "|"))
	}
	for _, tn := range []string{tenantA, tenantB} {
		for name := range e.relayed(tn) {
			s.Relayed = append(s.Relayed, tn+"/"+name)
		}
	}
	for _, l := range [][]string{s.Returns, s.Anomalies, s.Events, s.Relayed} {
		slices.Sort(l)
	}
	return s
}

// TestBatchMatchesOneByOne: a mixed batch (good, unparsable, orphan,
// ARL then RSP of one lot, duplicates inside the batch) applied with
// ProcessBatch leaves exactly what Process one message at a time leaves,
// with one commit; applying it again changes nothing.
func TestBatchMatchesOneByOne(t *testing.T) {
	msgs := mixedBatch(t)

	one := newEnv(t)
	batchLots(one)
	var want []Outcome
	for _, m := range msgs {
		want = append(want, one.process(m))
	}

	e := newEnv(t)
	batchLots(e)
	commits := &countingJournal{Journal: e.st}
	e.proc.o.Journal = commits
	outs, n, err := e.proc.ProcessBatch(e.ctx, msgs)
	if err != nil || n != len(msgs) {
		t.Fatalf("ProcessBatch: %d of %d done: %v", n, len(msgs), err)
	}
	if commits.n.Load() != 1 {
		t.Errorf("%d commits for one batch", commits.n.Load())
	}
	if !reflect.DeepEqual(outs, want) {
		for i := range outs {
			if !reflect.DeepEqual(outs[i], want[i]) {
				t.Errorf("message %d:\n batch      %+v\n one by one %+v", i, outs[i], want[i])
			}
		}
	}
	if got, exp := e.snapshot(), one.snapshot(); !reflect.DeepEqual(got, exp) {
		t.Errorf("journal after the batch differs from one by one:\n batch      %+v\n one by one %+v", got, exp)
	}

	// What the batch did, checked directly too.
	if !outs[1].Unparsable || !outs[6].Unparsable || !outs[6].Duplicate || outs[1].Duplicate {
		t.Errorf("unparsable outcomes %+v / %+v", outs[1], outs[6])
	}
	if !outs[4].Duplicate || len(outs[4].Returns) != 0 || outs[4].Relayed != 1 {
		t.Errorf("duplicate in the batch: %+v", outs[4])
	}
	if len(outs[2].Returns) != 1 || !outs[2].Returns[0].Orphan {
		t.Errorf("orphan: %+v", outs[2])
	}
	if s := e.lotState("L1"); s != lifecycle.LotSettled {
		t.Errorf("L1 %s after its ARL and RSP in one batch", s)
	}
	if s := e.lotState("L2"); s != lifecycle.LotARLNegative {
		t.Errorf("L2 %s", s)
	}
	if inv := e.invoice("L1", "L1-0"); inv.State != lifecycle.InvoicePaid {
		t.Errorf("invoice %s", inv.State)
	}
	for kind, n := range map[string]int{AnomalyUnparsable: 1, AnomalyOrphan: 1, AnomalyARLNegative: 1} {
		if got := len(e.anomalies(kind)); got != n {
			t.Errorf("%d %s anomalies, want %d", got, kind, n)
		}
	}
	if e.wakes.Load() != 1 {
		t.Errorf("OnReturn called %d times for one batch", e.wakes.Load())
	}

	// The same batch again: all duplicates, nothing written.
	before := e.snapshot()
	outs, n, err = e.proc.ProcessBatch(e.ctx, msgs)
	if err != nil || n != len(msgs) {
		t.Fatalf("again: %d done: %v", n, err)
	}
	for i, o := range outs {
		if !o.Duplicate || len(o.Returns) != 0 {
			t.Errorf("again, message %d: %+v", i, o)
		}
	}
	if commits.n.Load() != 1 {
		t.Errorf("a batch of duplicates committed (%d commits)", commits.n.Load())
	}
	if after := e.snapshot(); !reflect.DeepEqual(after, before) {
		t.Errorf("re-applying the batch changed the journal")
	}
}

// countingJournal counts commits.
type countingJournal struct {
	Journal
	n atomic.Int32
}

func (c *countingJournal) Commit(ctx context.Context, ch *store.Change) error {
	c.n.Add(1)
	return c.Journal.Commit(ctx, ch)
}

// TestBatchStopsAtNotYet: an ARL that must be retried (its lot's send is
// not committed) stops the batch there: the messages before it are
// applied, it and the ones after it are not written at all, and the rest
// of the batch handed again later applies.
func TestBatchStopsAtNotYet(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", number: 1, invoices: []string{"1"}})
	e.addLot(lotSpec{id: "L2", number: 2, invoices: []string{"2"}, upTo: lifecycle.LotSigned})
	e.addLot(lotSpec{id: "L3", number: 3, invoices: []string{"3"}})
	msgs := [][]byte{
		message(t, "a1", arlFile(t, arl.ARL{LotNumber: 1, Positive: true})),
		message(t, "a2", arlFile(t, arl.ARL{LotNumber: 2, Positive: true})),
		message(t, "a3", arlFile(t, arl.ARL{LotNumber: 3, Positive: true})),
	}
	outs, n, err := e.proc.ProcessBatch(e.ctx, msgs)
	if n != 1 || !errors.Is(err, ErrNotYet) {
		t.Fatalf("%d done, err %v", n, err)
	}
	if len(outs[0].Returns) != 1 || outs[0].Relayed != 1 {
		t.Fatalf("first message %+v", outs[0])
	}
	if e.lotState("L1") != lifecycle.LotARLPositive || e.lotState("L3") != lifecycle.LotSent {
		t.Fatalf("L1 %s, L3 %s", e.lotState("L1"), e.lotState("L3"))
	}
	if feed := e.feed(tenantA); len(feed) != 1 {
		t.Fatalf("feed %d rows: the messages from the failed one on were written", len(feed))
	}
	for _, m := range msgs[1:] {
		s := sha256.Sum256(m)
		if _, found, err := e.proc.applied(e.ctx, hex.EncodeToString(s[:])); found || err != nil {
			t.Fatalf("marker of a message not done: %v %v", found, err)
		}
	}
	e.walk("L2", lifecycle.LotSigned, lifecycle.LotSent)
	outs, n, err = e.proc.ProcessBatch(e.ctx, msgs[1:])
	if n != 2 || err != nil || outs[0].Duplicate || outs[1].Duplicate {
		t.Fatalf("rest: %d done, %v, %+v", n, err, outs)
	}
	if e.lotState("L2") != lifecycle.LotARLPositive || e.lotState("L3") != lifecycle.LotARLPositive {
		t.Fatal("rest not applied")
	}
}

// failingJournal refuses (not a conflict) every commit that carries the
// marker of one message.
type failingJournal struct {
	Journal
	bad     string
	commits atomic.Int32
}

func (f *failingJournal) Commit(ctx context.Context, ch *store.Change) error {
	f.commits.Add(1)
	for _, ev := range ch.Events {
		if ev.Subject == messageSubject(f.bad) {
			return errors.New("disk full")
		}
	}
	return f.Journal.Commit(ctx, ch)
}

// TestBatchCommitFailureFallsBackOneByOne: when the batch's commit fails
// (not a conflict), the messages are applied one by one, so the ones
// before the failing message are done and it reports the error.
func TestBatchCommitFailureFallsBackOneByOne(t *testing.T) {
	e := newEnv(t)
	batchLots(e)
	msgs := [][]byte{
		message(t, "a1", arlFile(t, arl.ARL{LotNumber: 1, Positive: true})),
		message(t, "a2", arlFile(t, arl.ARL{LotNumber: 2, Positive: true})),
		message(t, "orphan", arlFile(t, arl.ARL{LotNumber: 42, Positive: true})),
	}
	s := sha256.Sum256(msgs[1])
	fj := &failingJournal{Journal: e.st, bad: hex.EncodeToString(s[:])}
	e.proc.o.Journal = fj
	_, n, err := e.proc.ProcessBatch(e.ctx, msgs)
	if n != 1 || err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("%d done, err %v", n, err)
	}
	if fj.commits.Load() != 3 { // the batch, then a1 alone, then a2 alone
		t.Fatalf("%d commits", fj.commits.Load())
	}
	if e.lotState("L1") != lifecycle.LotARLPositive || e.lotState("L2") != lifecycle.LotSent {
		t.Fatalf("L1 %s, L2 %s", e.lotState("L1"), e.lotState("L2"))
	}
	if n := len(e.anomalies(AnomalyOrphan)); n != 0 {
		t.Fatalf("the message after the failing one was applied (%d orphan anomalies)", n)
	}
}

// TestBatchTooLarge: a message over MaxMessageBytes stops the batch with
// ErrTooLarge at its index; nothing of it is written.
func TestBatchTooLarge(t *testing.T) {
	e := newEnv(t)
	batchLots(e)
	small := message(t, "a1", arlFile(t, arl.ARL{LotNumber: 1, Positive: true}))
	big := message(t, "a2", arlFile(t, arl.ARL{LotNumber: 2, Positive: true}), arlFile(t, arl.ARL{LotNumber: 2, Positive: true}))
	e.proc.o.MaxMessageBytes = int64(len(big) - 1)
	outs, n, err := e.proc.ProcessBatch(e.ctx, [][]byte{small, big, small})
	if n != 1 || !errors.Is(err, ErrTooLarge) || outs[1].SHA256 == "" {
		t.Fatalf("%d done, err %v, %+v", n, err, outs)
	}
	if e.lotState("L1") != lifecycle.LotARLPositive || e.lotState("L2") != lifecycle.LotSent {
		t.Fatal("wrong lots applied")
	}
}

// TestBatchConflictIsRetried: another writer moves a lot of the batch
// just before its commit: the whole batch is planned again from the
// journal and committed once.
func TestBatchConflictIsRetried(t *testing.T) {
	e := newEnv(t)
	batchLots(e)
	cj := &conflictJournal{Journal: e.st, before: func() { e.walk("L1", lifecycle.LotSent, lifecycle.LotARLOverdue) }}
	e.proc.o.Journal = cj
	msgs := [][]byte{
		message(t, "a1", arlFile(t, arl.ARL{LotNumber: 1, Positive: true})),
		message(t, "a2", arlFile(t, arl.ARL{LotNumber: 2, Positive: true})),
	}
	outs, n, err := e.proc.ProcessBatch(e.ctx, msgs)
	if n != 2 || err != nil || cj.n.Load() != 2 {
		t.Fatalf("%d done, %v, %d commits", n, err, cj.n.Load())
	}
	if len(outs[0].Returns) != 1 || len(outs[1].Returns) != 1 {
		t.Fatalf("outcomes %+v", outs)
	}
	evs, _ := e.st.Events(e.ctx, "lot:L1")
	if last := evs[len(evs)-1]; last.From != lifecycle.LotARLOverdue || last.To != lifecycle.LotARLPositive {
		t.Fatalf("last event %+v", last)
	}
	if e.lotState("L2") != lifecycle.LotARLPositive {
		t.Fatal("L2 not applied")
	}
}

// TestBatchRelayFailure: the batch is committed, the relay of a message
// fails: it and the ones after it are reported not done; handed again,
// they are duplicates and relayed.
func TestBatchRelayFailure(t *testing.T) {
	e := newEnv(t)
	batchLots(e)
	msgs := [][]byte{
		message(t, "a1", arlFile(t, arl.ARL{LotNumber: 1, Positive: true})),
		message(t, "a2", arlFile(t, arl.ARL{LotNumber: 2, Positive: true})),
	}
	calls := 0
	e.proc.o.Relay = RelayFunc(func(ctx context.Context, tenant, name string, data []byte) error {
		calls++
		if calls == 1 {
			return errors.New("folder unavailable")
		}
		return FoldersRelay(e.folders).Relay(ctx, tenant, name, data)
	})
	_, n, err := e.proc.ProcessBatch(e.ctx, msgs)
	if n != 0 || !errors.Is(err, ErrRelay) {
		t.Fatalf("%d done, %v", n, err)
	}
	if e.lotState("L1") != lifecycle.LotARLPositive || e.lotState("L2") != lifecycle.LotARLPositive {
		t.Fatal("the batch was not committed before the relay")
	}
	outs, n, err := e.proc.ProcessBatch(e.ctx, msgs)
	if n != 2 || err != nil || !outs[0].Duplicate || !outs[1].Duplicate || len(e.relayed(tenantA)) != 2 {
		t.Fatalf("again: %d, %v, %+v, relayed %d", n, err, outs, len(e.relayed(tenantA)))
	}
}
