package sim_test

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/octgw/oct/formats/b2"
	dsmtp "github.com/octgw/oct/gateway/deliver/smtp"
	"github.com/octgw/oct/gateway/sim"
)

// timedSink records each return with the (fake) time it arrived.
type timedSink struct {
	clock *sim.FakeClock
	mu    sync.Mutex
	got   []timedReturn
}

type timedReturn struct {
	r  sim.Return
	at time.Time
}

func (k *timedSink) Deliver(_ context.Context, r sim.Return) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.got = append(k.got, timedReturn{r: r, at: k.clock.Now()})
	return nil
}

func (k *timedSink) all() []timedReturn {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]timedReturn(nil), k.got...)
}

// newTimedEnv is newEnv with a sink that records arrival times and the
// delays and rates of cfg (newEnv forces 1h/24h).
func newTimedEnv(t *testing.T, cfg sim.Config) (*env, *timedSink) {
	t.Helper()
	e := &env{clock: sim.NewFakeClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))}
	ts := &timedSink{clock: e.clock}
	cfg.Mailboxes, cfg.KeyBits, cfg.Clock, cfg.Sink = []string{box}, 1024, e.clock, ts
	s := openSim(t, cfg)
	e.sim = s
	addr, err := s.StartSMTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.snd, err = dsmtp.New(dsmtp.Config{Relay: addr, From: "oct@oct.test", RootCAs: s.RootCAs(), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	return e, ts
}

// TestLostARL: at LostARLRate 1 nothing ever comes back (no ARL, no RSP),
// the outcomes say Lost and Stats counts the lots; at 0.5 over a
// multi-lot file, the ARL holds exactly the lots not lost and only those
// get an RSP; the decision is the same for the same seed.
func TestLostARL(t *testing.T) {
	e, ts := newTimedEnv(t, sim.Config{LostARLRate: 1, Seed: 3, ARLDelay: time.Hour, RSPDelay: time.Hour})
	e.send(t, gen(t, b2.GenOptions{Seed: 21, Lots: 3}))
	if e.clock.Pending() != 0 {
		t.Fatalf("%d returns scheduled for lost lots", e.clock.Pending())
	}
	e.clock.Advance(30 * 24 * time.Hour)
	if n := len(ts.all()); n != 0 {
		t.Fatalf("%d returns for lost lots", n)
	}
	rcv := e.sim.Received()
	if len(rcv) != 1 || len(rcv[0].Lots) != 3 {
		t.Fatalf("received %+v", rcv)
	}
	for _, o := range rcv[0].Lots {
		if !o.Lost || o.RSPDelay != 0 {
			t.Fatalf("outcome %+v", o)
		}
	}
	if st := e.sim.Stats(); st.LostLots != 3 || st.Returns != 0 {
		t.Fatalf("stats %+v", st)
	}

	body := gen(t, b2.GenOptions{Seed: 22, Lots: 8})
	var first []bool
	for run := 0; run < 2; run++ {
		e, ts := newTimedEnv(t, sim.Config{LostARLRate: 0.5, Seed: 4, ARLDelay: time.Hour, RSPDelay: time.Hour})
		e.send(t, body)
		e.clock.Advance(3 * time.Hour)
		outs := e.sim.Received()[0].Lots
		var lost []bool
		answered := map[int]bool{}
		for _, o := range outs {
			lost = append(lost, o.Lost)
			if !o.Lost {
				answered[o.Number] = true
			}
		}
		if len(answered) == 0 || len(answered) == len(outs) {
			t.Fatalf("rate 0.5 lost %d of %d lots: pick another seed", len(outs)-len(answered), len(outs))
		}
		got := ts.all()
		if len(got) != 1+len(answered) {
			t.Fatalf("%d returns for %d answered lots", len(got), len(answered))
		}
		f := decodeARL(t, got[0].r.Body)
		if len(f.ARLs) != len(answered) {
			t.Fatalf("ARL has %d records, %d lots answered", len(f.ARLs), len(answered))
		}
		for _, a := range f.ARLs {
			if !answered[a.LotNumber] {
				t.Fatalf("ARL for lost lot %d", a.LotNumber)
			}
		}
		for _, g := range got[1:] {
			if g.r.Kind != sim.KindRSP || len(g.r.Lots) != 1 || !answered[g.r.Lots[0]] {
				t.Fatalf("RSP %s %v", g.r.Kind, g.r.Lots)
			}
		}
		if run == 0 {
			first = lost
		} else if !slices.Equal(first, lost) {
			t.Fatalf("not deterministic: %v vs %v", first, lost)
		}
	}
}

// TestDuplicateReturns: at DuplicateReturnRate 1 the ARL and the RSP each
// arrive twice, at the same time, with identical bytes.
func TestDuplicateReturns(t *testing.T) {
	e, ts := newTimedEnv(t, sim.Config{DuplicateReturnRate: 1, Seed: 5, ARLDelay: time.Hour, RSPDelay: 2 * time.Hour})
	e.send(t, gen(t, b2.GenOptions{Seed: 23}))
	e.clock.Advance(time.Hour)
	got := ts.all()
	if len(got) != 2 || got[0].r.Kind != sim.KindARL || got[1].r.Kind != sim.KindARL {
		t.Fatalf("%d returns after the ARL delay", len(got))
	}
	e.clock.Advance(2 * time.Hour)
	got = ts.all()
	if len(got) != 4 || got[2].r.Kind != sim.KindRSP || got[3].r.Kind != sim.KindRSP {
		t.Fatalf("%d returns after the RSP delay", len(got))
	}
	for _, i := range []int{0, 2} {
		a, b := got[i], got[i+1]
		if !bytes.Equal(a.r.Body, b.r.Body) || a.r.Subject != b.r.Subject || !a.at.Equal(b.at) || a.r.InReplyTo != b.r.InReplyTo {
			t.Fatalf("duplicate %d differs", i)
		}
	}
	if st := e.sim.Stats(); st.Duplicates != 2 || st.Returns != 4 {
		t.Fatalf("stats %+v", st)
	}
	// Rate 0: never twice.
	e2, ts2 := newTimedEnv(t, sim.Config{Seed: 5, ARLDelay: time.Hour, RSPDelay: 2 * time.Hour})
	e2.send(t, gen(t, b2.GenOptions{Seed: 23}))
	e2.clock.Advance(3 * time.Hour)
	if n := len(ts2.all()); n != 2 {
		t.Fatalf("%d returns at rate 0", n)
	}
}

// TestDelayJitter: each ARL arrives within [ARLDelay, ARLDelay+jitter)
// after reception and each RSP within [RSPDelay, RSPDelay+jitter) after
// its ARL, at the delays the outcomes report; the jitter varies between
// files and lots, and is the same for the same seed.
func TestDelayJitter(t *testing.T) {
	const (
		arlDelay, arlJitter = time.Hour, 30 * time.Minute
		rspDelay, rspJitter = 24 * time.Hour, 6 * time.Hour
	)
	cfg := sim.Config{Seed: 9, ARLDelay: arlDelay, ARLDelayJitter: arlJitter, RSPDelay: rspDelay, RSPDelayJitter: rspJitter}
	var delays [2][]time.Duration
	for run := 0; run < 2; run++ {
		e, ts := newTimedEnv(t, cfg)
		t0 := e.clock.Now()
		for i := 0; i < 4; i++ {
			e.send(t, gen(t, b2.GenOptions{Seed: int64(30 + i), Lots: 2}))
		}
		// Advance runs each return at its exact due time, in order.
		e.clock.Advance(arlDelay + arlJitter + rspDelay + rspJitter)
		got := ts.all()
		if len(got) != 4+8 {
			t.Fatalf("%d returns", len(got))
		}
		arlAt := map[string]time.Time{} // by file id
		rcv := e.sim.Received()
		outcome := map[string]sim.LotOutcome{}
		for _, r := range rcv {
			for _, o := range r.Lots {
				outcome[r.Header.FileID+"/"+strconv.Itoa(o.Number)] = o
			}
		}
		for _, g := range got {
			if g.r.Kind == sim.KindARL {
				d := g.at.Sub(t0)
				if d < arlDelay || d >= arlDelay+arlJitter {
					t.Fatalf("ARL after %v", d)
				}
				if o := outcome[g.r.FileID+"/"+strconv.Itoa(g.r.Lots[0])]; o.ARLDelay != d {
					t.Fatalf("ARL after %v, outcome says %v", d, o.ARLDelay)
				}
				arlAt[g.r.FileID] = g.at
				delays[run] = append(delays[run], d)
			}
		}
		for _, g := range got {
			if g.r.Kind == sim.KindRSP {
				d := g.at.Sub(arlAt[g.r.FileID])
				if d < rspDelay || d >= rspDelay+rspJitter {
					t.Fatalf("RSP after %v", d)
				}
				if o := outcome[g.r.FileID+"/"+strconv.Itoa(g.r.Lots[0])]; o.RSPDelay != d {
					t.Fatalf("RSP after %v, outcome says %v", d, o.RSPDelay)
				}
				delays[run] = append(delays[run], d)
			}
		}
		distinct := map[time.Duration]bool{}
		for _, d := range delays[run] {
			distinct[d] = true
		}
		if len(distinct) < 4 {
			t.Fatalf("jitter gave only %d distinct delays: %v", len(distinct), delays[run])
		}
	}
	if !slices.Equal(delays[0], delays[1]) {
		t.Fatalf("not deterministic: %v vs %v", delays[0], delays[1])
	}
}
