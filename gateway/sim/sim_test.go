package sim_test

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/formats/noemie"
	"github.com/octgw/oct/gateway/deliver"
	dsmtp "github.com/octgw/oct/gateway/deliver/smtp"
	insmtp "github.com/octgw/oct/gateway/intake/smtp"
	"github.com/octgw/oct/gateway/sim"
	"github.com/octgw/oct/referentials"

	"github.com/emersion/go-message"
)

const box = "01422@422.01.rss.fr"

type sink struct {
	mu  sync.Mutex
	got []sim.Return
}

func (k *sink) Deliver(_ context.Context, r sim.Return) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.got = append(k.got, r)
	return nil
}

func (k *sink) all() []sim.Return {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]sim.Return(nil), k.got...)
}

type env struct {
	sim   *sim.Sim
	sink  *sink
	clock *sim.FakeClock
	snd   *dsmtp.Sender
	addr  string // SMTP address
}

// openSim starts a simulator on cfg, closed (and checked) when the test
// ends.
func openSim(t *testing.T, cfg sim.Config) *sim.Sim {
	t.Helper()
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func newEnv(t *testing.T, cfg sim.Config) *env {
	t.Helper()
	e := &env{sink: &sink{}, clock: sim.NewFakeClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))}
	cfg.Mailboxes, cfg.KeyBits, cfg.Clock, cfg.Sink = []string{box}, 1024, e.clock, e.sink
	cfg.ARLDelay, cfg.RSPDelay = time.Hour, 24*time.Hour
	s := openSim(t, cfg)
	e.sim = s
	addr, err := s.StartSMTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = addr
	e.snd, err = dsmtp.New(dsmtp.Config{Relay: addr, From: "oct@oct.test", RootCAs: s.RootCAs(), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) send(t *testing.T, body []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := e.snd.Send(ctx, deliver.Message{Lot: "L", Emitter: "750000001", Invoices: 3,
		Dest: deliver.Destination{ID: "cpam", Transport: referentials.SMTP, Address: box, Cipher: referentials.AES128},
		Cert: e.sim.Cert(box), Body: body})
	if err != nil {
		t.Fatal(err)
	}
}

func gen(t *testing.T, opt b2.GenOptions) []byte {
	var buf bytes.Buffer
	if err := b2.Generate(&buf, opt); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decodeARL(t *testing.T, b []byte) *arl.File {
	f, err := arl.DefaultRegistry().Decode(bytes.NewReader(b), arl.Options{})
	if err != nil || !f.Valid {
		t.Fatalf("ARL invalid: %v %+v", err, f.Errors)
	}
	return f
}

// TestARLAndRSP: a valid lot gets a positive ARL after ARLDelay, then an
// RSP after RSPDelay whose amounts match the lot: requested = the lot's AMO
// totals, paid = requested for paid invoices, 0 for rejected ones.
func TestARLAndRSP(t *testing.T) {
	e := newEnv(t, sim.Config{RejectRate: 0.3, Seed: 7})
	body := gen(t, b2.GenOptions{Seed: 11, Invoices: 20})
	e.send(t, body)
	if n := len(e.sink.all()); n != 0 {
		t.Fatalf("%d returns before the delay", n)
	}
	e.clock.Advance(59 * time.Minute)
	if n := len(e.sink.all()); n != 0 {
		t.Fatalf("%d returns before the delay", n)
	}
	e.clock.Advance(time.Minute)
	got := e.sink.all()
	if len(got) != 1 || got[0].Kind != sim.KindARL || got[0].From != box {
		t.Fatalf("returns %+v", got)
	}
	f := decodeARL(t, got[0].Body)
	rep, _ := b2.Validate(bytes.NewReader(body), b2.Options{Summaries: true})
	lot := rep.Lots[0]
	if len(f.ARLs) != 1 || !f.ARLs[0].Positive || f.ARLs[0].LotNumber != lot.Number || f.ARLs[0].LotDate != lot.Date ||
		strings.TrimLeft(f.ARLs[0].Emitter, "0") != strings.TrimLeft(rep.Header.Sender, "0") || f.ARLs[0].FileID != rep.Header.FileID {
		t.Fatalf("ARL %+v (lot %d %v)", f.ARLs, lot.Number, lot.Date)
	}
	e.clock.Advance(24 * time.Hour)
	got = e.sink.all()
	if len(got) != 2 || got[1].Kind != sim.KindRSP {
		t.Fatalf("returns %d", len(got))
	}
	nf, err := noemie.Read(bytes.NewReader(got[1].Body), noemie.Options{})
	if err != nil || !nf.Valid {
		t.Fatalf("RSP invalid: %v %+v", err, nf.Errors)
	}
	if len(nf.Invoices) != len(lot.Invoices) {
		t.Fatalf("RSP has %d invoices, lot %d", len(nf.Invoices), len(lot.Invoices))
	}
	byNum := map[string]b2.Invoice{}
	for _, inv := range lot.Invoices {
		byNum[inv.Number] = inv
	}
	rejected, paid := 0, int64(0)
	for _, inv := range nf.Invoices {
		src, ok := byNum[inv.Number]
		if !ok || inv.LotNumber != lot.Number || inv.LotDate != lot.Date || inv.NIR+inv.NIRKey != src.NIR {
			t.Fatalf("invoice %s does not match the lot", inv.Number)
		}
		if inv.AMO.Requested != src.AMO {
			t.Fatalf("invoice %s requested %d, lot says %d", inv.Number, inv.AMO.Requested, src.AMO)
		}
		switch inv.AMO.State {
		case 'P':
			if inv.AMO.Paid != src.AMO {
				t.Fatalf("paid %d of %d", inv.AMO.Paid, src.AMO)
			}
			paid += inv.AMO.Paid
		case 'R':
			if inv.AMO.Paid != 0 || len(inv.Rejects) == 0 {
				t.Fatalf("rejected invoice %+v", inv)
			}
			rejected++
		}
	}
	if rejected == 0 || rejected == len(nf.Invoices) {
		t.Fatalf("rejected %d of %d at rate 0.3", rejected, len(nf.Invoices))
	}
	rcv := e.sim.Received()
	if rcv[0].Lots[0].Paid != paid || len(rcv[0].Lots[0].Rejected) != rejected {
		t.Fatalf("outcome %+v, RSP paid %d rejected %d", rcv[0].Lots[0], paid, rejected)
	}
	// Deterministic: the same seed and lot give the same decisions.
	e2 := newEnv(t, sim.Config{RejectRate: 0.3, Seed: 7})
	e2.send(t, body)
	if a, b := e2.sim.Received()[0].Lots[0].Rejected, rcv[0].Lots[0].Rejected; strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatalf("not deterministic: %v vs %v", a, b)
	}
	if e.clock.Pending() != 0 {
		t.Fatalf("%d timers left", e.clock.Pending())
	}
}

// TestNegativeARL: an invalid lot gets a negative ARL with the validator's
// reasons and no RSP; NegativeARLRate 1 refuses a valid lot too.
func TestNegativeARL(t *testing.T) {
	e := newEnv(t, sim.Config{})
	e.send(t, gen(t, b2.GenOptions{Seed: 12, Fault: b2.ErrInvoiceTotal}))
	e.clock.Advance(time.Hour)
	got := e.sink.all()
	if len(got) != 1 {
		t.Fatalf("returns %d", len(got))
	}
	f := decodeARL(t, got[0].Body)
	if f.ARLs[0].Positive || len(f.ARLs[0].Reasons) == 0 || f.ARLs[0].Reasons[0].Code != string(b2.ErrInvoiceTotal) {
		t.Fatalf("ARL %+v", f.ARLs[0])
	}
	e.clock.Advance(48 * time.Hour)
	if len(e.sink.all()) != 1 {
		t.Fatal("RSP for a refused lot")
	}

	e2 := newEnv(t, sim.Config{NegativeARLRate: 1})
	e2.send(t, gen(t, b2.GenOptions{Seed: 13}))
	e2.clock.Advance(time.Hour)
	if f := decodeARL(t, e2.sink.all()[0].Body); f.ARLs[0].Positive || f.ARLs[0].Reasons[0].Code != "SIM-REFUS" {
		t.Fatalf("ARL %+v", f.ARLs[0])
	}
}

// TestReturnMessage: the MIME message a caisse would send is readable by
// the gateway's IRIS decoder and gives the return file back.
func TestReturnMessage(t *testing.T) {
	e := newEnv(t, sim.Config{})
	e.send(t, gen(t, b2.GenOptions{Seed: 14, Test: true}))
	e.clock.Advance(time.Hour)
	r := e.sink.all()[0]
	raw, err := r.Message(e.clock.Now(), "ret1@sim.test")
	if err != nil {
		t.Fatal(err)
	}
	parts, err := insmtp.Extract(bytes.NewReader(raw), insmtp.ExtractOptions{})
	if err != nil || len(parts) != 1 || !bytes.Equal(parts[0].Data, r.Body) || parts[0].Description != "IRISTEST/ARL/Z" {
		t.Fatalf("extract: %v %d", err, len(parts))
	}
	ent, _ := message.Read(bufio.NewReader(bytes.NewReader(raw)))
	if ent.Header.Get("In-Reply-To") != r.InReplyTo || ent.Header.Get("From") != "<"+box+">" {
		t.Fatalf("header %v", ent.Header.Map())
	}
}

// TestCloseStopsPending: Close with returns still scheduled stops them and
// returns; nothing is delivered afterwards.
func TestCloseStopsPending(t *testing.T) {
	e := newEnv(t, sim.Config{})
	e.send(t, gen(t, b2.GenOptions{Seed: 15}))
	if e.clock.Pending() != 1 {
		t.Fatalf("pending %d", e.clock.Pending())
	}
	if err := e.sim.Close(); err != nil {
		t.Fatal(err)
	}
	if e.clock.Pending() != 0 {
		t.Fatalf("pending %d after Close", e.clock.Pending())
	}
	e.clock.Advance(48 * time.Hour)
	if len(e.sink.all()) != 0 {
		t.Fatal("return after Close")
	}
	if _, err := e.sim.StartSMTP("127.0.0.1:0"); err == nil {
		t.Fatal("start after close")
	}
}
