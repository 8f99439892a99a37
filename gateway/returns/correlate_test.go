package returns

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

func TestPositiveARL(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"000000101", "000000102"}})
	ackFile := arlFile(t, arl.ARL{FileID: "F00001", LotNumber: 1, Positive: true})
	out := e.process(message(t, "arl1", ackFile))
	if out.Duplicate || out.Unparsable || len(out.Returns) != 1 || out.Relayed != 1 {
		t.Fatalf("outcome %+v", out)
	}
	if s := e.lotState("L1"); s != lifecycle.LotARLPositive {
		t.Fatalf("lot state %s", s)
	}
	feed := e.feed(tenantA)
	if len(feed) != 1 || feed[0].Kind != KindARL || feed[0].Lot != "L1" || feed[0].Orphan {
		t.Fatalf("feed %+v", feed)
	}
	var sum ARLSummary
	if err := json.Unmarshal(feed[0].Summary, &sum); err != nil || sum.Outcome != OutcomeApplied || !sum.Positive ||
		sum.LotNumber != 1 || sum.MessageSHA256 != out.SHA256 {
		t.Fatalf("summary %s (%v)", feed[0].Summary, err)
	}
	// The relayed file is the ARL byte for byte, and its blob is kept.
	files := e.relayed(tenantA)
	if len(files) != 1 {
		t.Fatalf("relayed %v", files)
	}
	for _, b := range files {
		if !bytes.Equal(b, ackFile) {
			t.Fatal("relayed file differs from the ARL")
		}
	}
	if ok, _ := e.blobs.Has(e.ctx, out.SHA256); !ok {
		t.Fatal("raw message not kept")
	}
	if ok, _ := e.blobs.Has(e.ctx, feed[0].Blob); !ok {
		t.Fatal("ARL file not kept")
	}
	if e.relayed(tenantB) != nil {
		t.Fatal("other tenant got the ARL")
	}
	exps, _ := e.st.Expectations(e.ctx, "L1")
	rsp := 0
	for _, x := range exps {
		if (x.Kind == "arl") != (x.SatisfiedBy == feed[0].ID) {
			t.Errorf("expectation %+v", x)
		}
		if x.Kind == "rsp" && x.SatisfiedBy == "" && x.DueAt.Sub(exps[0].DueAt) > 27*24*time.Hour {
			rsp++ // due 720h after the ARL (the ARL expectation was due 48h after the send)
		}
	}
	if rsp != 1 {
		t.Errorf("a positive ARL must open one RSP expectation: %+v", exps)
	}
	if e.wakes.Load() != 1 {
		t.Errorf("OnReturn called %d times", e.wakes.Load())
	}
	if n := len(e.anomalies("")); n != 0 {
		t.Errorf("%d anomalies", n)
	}
}

func TestNegativeARL(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"1"}})
	e.walk("L1", lifecycle.LotSent, lifecycle.LotARLOverdue) // late ARL: still awaited
	out := e.process(message(t, "arl-neg", arlFile(t, arl.ARL{LotNumber: 1, Positive: false, Reasons: []arl.Reason{
		{Code: "nir-key", Label: "CLE DU NIR INVALIDE", Record: 4}, {Code: "billing-delay", Label: "DELAI DEPASSE"}}})))
	if len(out.Returns) != 1 || out.Returns[0].Lot != "L1" {
		t.Fatalf("outcome %+v", out)
	}
	if s := e.lotState("L1"); s != lifecycle.LotARLNegative {
		t.Fatalf("lot state %s", s)
	}
	as := e.anomalies(AnomalyARLNegative)
	if len(as) != 1 || as[0].Subject != "lot:L1" || as[0].Tenant != tenantA || !strings.Contains(as[0].Reason, "nir-key,billing-delay") {
		t.Fatalf("anomalies %+v", as)
	}
	evs, _ := e.st.Events(e.ctx, "lot:L1")
	last := evs[len(evs)-1]
	if last.To != lifecycle.LotARLNegative || !strings.Contains(last.Reason, "nir-key") || last.Actor != "returns" {
		t.Fatalf("last event %+v", last)
	}
}

func TestOrphanARL(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"1"}})
	out := e.process(message(t, "arl-orphan", arlFile(t, arl.ARL{LotNumber: 9, Positive: true})))
	if len(out.Returns) != 1 || !out.Returns[0].Orphan || out.Returns[0].Tenant != "" || out.Relayed != 0 {
		t.Fatalf("outcome %+v", out)
	}
	r, err := e.st.Return(e.ctx, out.Returns[0].ID)
	if err != nil || !r.Orphan || r.Kind != KindARL {
		t.Fatalf("return %+v %v", r, err)
	}
	as := e.anomalies(AnomalyOrphan)
	if len(as) != 1 || as[0].Subject != "return:"+r.ID {
		t.Fatalf("anomalies %+v", as)
	}
	if s := e.lotState("L1"); s != lifecycle.LotSent {
		t.Fatalf("lot moved to %s", s)
	}
	if len(e.feed(tenantA)) != 0 {
		t.Fatal("orphan in a tenant feed")
	}
}

func TestARLFileIDTellsLotsApart(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"1"}, fileID: "F00001"})
	e.addLot(lotSpec{id: "L2", tenant: tenantB, invoices: []string{"1"}, fileID: "F00002"})
	// Without a file id the two lots cannot be told apart: orphan.
	out := e.process(message(t, "arl-nofile", arlFile(t, arl.ARL{LotNumber: 1, Positive: true})))
	if len(out.Returns) != 1 || !out.Returns[0].Orphan {
		t.Fatalf("ambiguous ARL: %+v", out)
	}
	out = e.process(message(t, "arl-f2", arlFile(t, arl.ARL{FileID: "F00002", LotNumber: 1, Positive: true})))
	if len(out.Returns) != 1 || out.Returns[0].Lot != "L2" || out.Returns[0].Tenant != tenantB {
		t.Fatalf("outcome %+v", out)
	}
	if e.lotState("L1") != lifecycle.LotSent || e.lotState("L2") != lifecycle.LotARLPositive {
		t.Fatal("wrong lot moved")
	}
}

func TestRSPPaysRejectsAndSettles(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"000000101", "000000102", "000000103"}})
	e.process(message(t, "arl", arlFile(t, arl.ARL{LotNumber: 1, Positive: true})))

	// First RSP: 101 paid (with a warning), 102 rejected, 103 deferred.
	out := e.process(message(t, "rsp1", rspFile(t, "000000"+emitterA,
		rspInvoice{number: "000000101", lot: 1, state: 'P', warning: "W0000002"},
		rspInvoice{number: "000000102", lot: 1, state: 'R', code: "S002"},
		rspInvoice{number: "000000103", lot: 1, state: 'D'})))
	if len(out.Returns) != 1 || out.Returns[0].Lot != "L1" || out.Returns[0].Orphan {
		t.Fatalf("outcome %+v", out)
	}
	if i := e.invoice("L1", "L1-0"); i.State != lifecycle.InvoicePaid || len(i.Codes) != 1 || i.Codes[0] != "W0000002" {
		t.Fatalf("invoice 101 %+v", i)
	}
	if i := e.invoice("L1", "L1-1"); i.State != lifecycle.InvoiceRejected || len(i.Codes) != 1 || i.Codes[0] != "S002" {
		t.Fatalf("invoice 102 %+v", i)
	}
	if i := e.invoice("L1", "L1-2"); i.State != lifecycle.InvoiceDeferred {
		t.Fatalf("invoice 103 %+v", i)
	}
	if s := e.lotState("L1"); s != lifecycle.LotARLPositive {
		t.Fatalf("lot %s before every invoice is settled", s)
	}
	as := e.anomalies(AnomalyInvoiceRejected)
	if len(as) != 1 || as[0].Subject != "invoice:L1-1" || !strings.Contains(as[0].Reason, "S002") {
		t.Fatalf("anomalies %+v", as)
	}
	var sum RSPSummary
	r, _ := e.st.Return(e.ctx, out.Returns[0].ID)
	if err := json.Unmarshal(r.Summary, &sum); err != nil || len(sum.Invoices) != 3 {
		t.Fatalf("summary %s", r.Summary)
	}
	if strings.Contains(string(r.Summary), "nir") || strings.Contains(string(r.Summary), "birth") {
		t.Fatalf("summary carries personal fields: %s", r.Summary)
	}

	// Second RSP pays the deferred one: the lot settles.
	e.process(message(t, "rsp2", rspFile(t, "000000"+emitterA, rspInvoice{number: "000000103", lot: 1, state: 'P'})))
	if i := e.invoice("L1", "L1-2"); i.State != lifecycle.InvoicePaid {
		t.Fatalf("invoice 103 %+v", i)
	}
	if s := e.lotState("L1"); s != lifecycle.LotSettled {
		t.Fatalf("lot %s, want settled", s)
	}
	if n := len(e.feed(tenantA)); n != 3 {
		t.Fatalf("feed has %d returns, want 3", n)
	}
	if n := len(e.relayed(tenantA)); n != 3 {
		t.Fatalf("relayed %d files, want 3", n)
	}
}

func TestRSPBeforeARLThenARLSettles(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"7"}})
	// The mandataire is unknown: lots are found by lot number and date.
	e.process(message(t, "rsp", rspFile(t, "", rspInvoice{number: "000000007", lot: 1, state: 'P'})))
	if s := e.lotState("L1"); s != lifecycle.LotSent {
		t.Fatalf("lot %s", s)
	}
	e.process(message(t, "arl", arlFile(t, arl.ARL{LotNumber: 1, Positive: true})))
	if s := e.lotState("L1"); s != lifecycle.LotSettled {
		t.Fatalf("lot %s, want settled in the same change as the ARL", s)
	}
}

func TestRSPOrphanInvoice(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"000000101"}})
	out := e.process(message(t, "rsp", rspFile(t, "000000"+emitterA,
		rspInvoice{number: "000000101", lot: 1, state: 'P'},
		rspInvoice{number: "000000999", lot: 1, state: 'P'},
		rspInvoice{number: "000000101", lot: 5, state: 'P'})))
	if len(out.Returns) != 2 || out.Returns[0].Orphan || !out.Returns[1].Orphan {
		t.Fatalf("outcome %+v", out)
	}
	as := e.anomalies(AnomalyOrphan)
	if len(as) != 1 || !strings.Contains(as[0].Reason, "2 RSP invoice(s)") {
		t.Fatalf("anomalies %+v", as)
	}
	if out.Relayed != 1 {
		t.Fatalf("relayed %d", out.Relayed)
	}
}

func TestRSPForTwoTenantsIsNotRelayed(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"1"}})
	e.addLot(lotSpec{id: "L2", tenant: tenantB, emitter: "750000002", number: 2, invoices: []string{"2"}})
	out := e.process(message(t, "rsp", rspFile(t, "", rspInvoice{number: "000000001", lot: 1, state: 'P'},
		rspInvoice{number: "000000002", lot: 2, state: 'P'})))
	if out.Relayed != 0 || len(e.anomalies(AnomalyMultiTenant)) != 1 {
		t.Fatalf("outcome %+v", out)
	}
	if e.invoice("L2", "L2-0").State != lifecycle.InvoicePaid {
		t.Fatal("invoices are still applied")
	}
}

func TestIdempotentReapply(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"000000101"}})
	msgs := [][]byte{
		message(t, "arl", arlFile(t, arl.ARL{LotNumber: 1, Positive: true})),
		message(t, "rsp", rspFile(t, "", rspInvoice{number: "000000101", lot: 1, state: 'R', code: "S001"})),
		[]byte("garbage, not a MIME message with an EDI part\r\n"),
	}
	for _, m := range msgs {
		e.process(m)
	}
	before, err := e.st.EventsAfter(e.ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	rel := &recordingRelay{}
	e.proc.o.Relay = rel
	for _, m := range msgs {
		out := e.process(m)
		if !out.Duplicate || len(out.Returns) != 0 {
			t.Fatalf("second apply: %+v", out)
		}
	}
	after, _ := e.st.EventsAfter(e.ctx, 0, 10000)
	if len(after) != len(before) {
		t.Fatalf("re-apply wrote %d events", len(after)-len(before))
	}
	if n := len(e.feed(tenantA)); n != 2 {
		t.Fatalf("feed %d", n)
	}
	if len(rel.calls) != 2 { // ARL and RSP relayed again (harmless overwrite), garbage never
		t.Fatalf("relay calls %v", rel.calls)
	}
	if e.wakes.Load() != 3 {
		t.Fatalf("OnReturn %d", e.wakes.Load())
	}
}

func TestUnparsableMessages(t *testing.T) {
	e := newEnv(t)
	bad := arlFile(t, arl.ARL{LotNumber: 1, Positive: true})
	bad[130] = 'X' // break the 100 record
	for name, raw := range map[string][]byte{
		"garbage":  []byte("\x00\x01 not mail at all"),
		"no-edi":   []byte("Subject: hello\r\nContent-Type: text/plain\r\n\r\nhello\r\n"),
		"unknown":  message(t, "unknown", []byte("000 this is no known norm")),
		"findings": message(t, "findings", bad),
	} {
		out := e.process(raw)
		if !out.Unparsable || len(out.Returns) != 1 || out.Returns[0].Kind != KindUnknown || !out.Returns[0].Orphan {
			t.Errorf("%s: %+v", name, out)
		}
		if !strings.Contains(out.Reason, "unparsable") {
			t.Errorf("%s: reason %q", name, out.Reason)
		}
	}
	if n := len(e.anomalies(AnomalyUnparsable)); n != 4 {
		t.Fatalf("%d unparsable anomalies", n)
	}
}

// conflictJournal lets another writer move the lot just before the
// processor's first commit.
type conflictJournal struct {
	Journal
	before func()
	n      atomic.Int32
}

func (c *conflictJournal) Commit(ctx context.Context, ch *store.Change) error {
	if c.n.Add(1) == 1 {
		c.before()
	}
	return c.Journal.Commit(ctx, ch)
}

func TestConflictIsRetried(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"1"}})
	cj := &conflictJournal{Journal: e.st, before: func() { e.walk("L1", lifecycle.LotSent, lifecycle.LotARLOverdue) }}
	e.proc.o.Journal = cj
	out := e.process(message(t, "arl", arlFile(t, arl.ARL{LotNumber: 1, Positive: true})))
	if cj.n.Load() != 2 || len(out.Returns) != 1 || out.Returns[0].Lot != "L1" {
		t.Fatalf("commits %d, outcome %+v", cj.n.Load(), out)
	}
	evs, _ := e.st.Events(e.ctx, "lot:L1")
	if last := evs[len(evs)-1]; last.From != lifecycle.LotARLOverdue || last.To != lifecycle.LotARLPositive {
		t.Fatalf("last event %+v", last)
	}
}

func TestConflictRetriesAreBounded(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"1"}})
	e.proc.o.Journal = alwaysConflict{e.st}
	_, err := e.proc.Process(e.ctx, message(t, "arl", arlFile(t, arl.ARL{LotNumber: 1, Positive: true})))
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("err %v", err)
	}
}

type alwaysConflict struct{ Journal }

func (alwaysConflict) Commit(context.Context, *store.Change) error { return store.ErrConflict }

func TestRelayFailureIsRetriedAsDuplicate(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"1"}})
	raw := message(t, "arl", arlFile(t, arl.ARL{LotNumber: 1, Positive: true}))
	e.proc.o.Relay = RelayFunc(func(context.Context, string, string, []byte) error { return errors.New("disk full") })
	if _, err := e.proc.Process(e.ctx, raw); !errors.Is(err, ErrRelay) {
		t.Fatalf("err %v", err)
	}
	e.proc.o.Relay = FoldersRelay(e.folders)
	out := e.process(raw)
	if !out.Duplicate || out.Relayed != 1 || len(e.relayed(tenantA)) != 1 {
		t.Fatalf("outcome %+v", out)
	}
}

// TestARLBeforeTheSendIsCommitted: an ARL can overtake the commit of the
// send it answers (the lot is still signed). It is not an orphan: nothing
// is written, ErrNotYet asks for a later retry, which applies it.
func TestARLBeforeTheSendIsCommitted(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"000000101"}, upTo: lifecycle.LotSigned})
	raw := message(t, "arl1", arlFile(t, arl.ARL{FileID: "F00001", LotNumber: 1, Positive: true}))
	if _, err := e.proc.Process(e.ctx, raw); !errors.Is(err, ErrNotYet) {
		t.Fatalf("err = %v, want ErrNotYet", err)
	}
	if len(e.feed(tenantA)) != 0 || len(e.anomalies("")) != 0 {
		t.Fatal("something was written for a return that must be retried")
	}
	e.walk("L1", lifecycle.LotSigned, lifecycle.LotSent)
	if out := e.process(raw); len(out.Returns) != 1 || e.lotState("L1") != lifecycle.LotARLPositive {
		t.Fatalf("retry: %+v, lot %s", out, e.lotState("L1"))
	}
}
