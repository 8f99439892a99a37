//go:build pcsc

package signing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ebfe/scard"

	"github.com/octgw/oct/gateway/signing/internal/cardemu"
	"github.com/octgw/oct/internal/testenv"
)

// cardRig is pcscd + vpcd with emulated cards in their own namespace.
type cardRig struct {
	env     *testenv.PCSC
	ctl     []string       // control socket per card
	certs   [][2][]byte    // per card: certificate DER of key 1 (P-256) and key 2 (RSA-2048)
	pinFile string         // holds the right PIN
	badPIN  string         // holds a wrong PIN
	readers map[int]string // card index -> reader name
}

func startCards(t testing.TB, n int) *cardRig {
	t.Helper()
	testenv.Integration(t)
	testenv.NeedRoot(t)
	bin := testenv.GoBuild(t, "github.com/octgw/oct/gateway/signing/internal/cardemu/cmd/cardemu")
	dir := t.TempDir()
	r := &cardRig{pinFile: filepath.Join(dir, "pin"), badPIN: filepath.Join(dir, "badpin"), readers: map[int]string{}}
	if err := os.WriteFile(r.pinFile, []byte("1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.badPIN, []byte("9999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cards []testenv.PCSCCard
	for i := range n {
		kd := filepath.Join(dir, fmt.Sprintf("card%d", i))
		if err := os.Mkdir(kd, 0o700); err != nil {
			t.Fatal(err)
		}
		ec, rk := newP256(t), testRSA(t, i)
		ecCert, rsaCert := selfSigned(t, ec, fmt.Sprintf("card%d ec", i)), selfSigned(t, rk, fmt.Sprintf("card%d rsa", i))
		if err := cardemu.WriteKey(kd, 1, ec, ecCert.Raw); err != nil {
			t.Fatal(err)
		}
		if err := cardemu.WriteKey(kd, 2, rk, rsaCert.Raw); err != nil {
			t.Fatal(err)
		}
		r.certs = append(r.certs, [2][]byte{ecCert.Raw, rsaCert.Raw})
		ctl := filepath.Join(dir, fmt.Sprintf("c%d.ctl", i))
		r.ctl = append(r.ctl, ctl)
		cards = append(cards, testenv.PCSCCard{Args: []string{bin, "-vpcd", "127.0.0.1:{port}", "-ctl", ctl, "-keys", kd, "-pin", "1234", "-chunk", "128"}})
	}
	r.env = testenv.StartPCSC(t, cards...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range n {
		if err := testenv.Poll(ctx, 10*time.Millisecond, func() (bool, error) {
			_, err := cardemu.Control(ctx, r.ctl[i], "stats")
			return err == nil, nil
		}); err != nil {
			t.Fatalf("card %d control socket: %v", i, err)
		}
	}
	// Map readers to cards: the card in slot i is the vpcd port base+i.
	// Ask PC/SC which reader holds which certificate.
	r.mapReaders(t)
	return r
}

// mapReaders connects to every reader and reads the key 1 certificate to
// find which card it holds (readiness check through PC/SC as well).
func (r *cardRig) mapReaders(t testing.TB) {
	t.Helper()
	sc, err := scard.EstablishContext()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Release()
	readers, err := sc.ListReaders()
	if err != nil {
		t.Fatal(err)
	}
	states := make([]scard.ReaderState, len(readers))
	for i, rd := range readers {
		states[i] = scard.ReaderState{Reader: rd, CurrentState: scard.StateUnaware}
	}
	if err := sc.GetStatusChange(states, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, st := range states {
		if st.EventState&scard.StatePresent == 0 {
			continue
		}
		tr := &pcscTransport{id: "probe", reader: st.Reader}
		if err := tr.Reconnect(context.Background()); err != nil {
			t.Fatal(err)
		}
		m := &cardMember{mc: MemberConfig{ID: "probe"}, aid: cardemu.AID, keyRef: 1, tr: tr}
		if err := m.selectApplet(context.Background()); err != nil {
			tr.Close()
			t.Fatal(err)
		}
		cert, err := m.readCert(context.Background())
		tr.Close()
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range r.certs {
			if string(c[0]) == string(cert.Raw) {
				r.readers[i] = st.Reader
			}
		}
	}
	if len(r.readers) != len(r.certs) {
		t.Fatalf("found cards %v in readers %q", r.readers, readers)
	}
}

// waitReader waits, through PC/SC events, until the reader of card i
// shows the card present (or absent). pcscd polls vpcd every 400 ms: a card
// pulled out and put back before a poll is never seen as removed.
func (r *cardRig) waitReader(t testing.TB, i int, present bool) {
	t.Helper()
	sc, err := scard.EstablishContext()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Release()
	st := []scard.ReaderState{{Reader: r.readers[i], CurrentState: scard.StateUnaware}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("reader %q: card present=%v not reached (state %#x)", r.readers[i], present, st[0].EventState)
		}
		err := sc.GetStatusChange(st, left)
		if err != nil && err != scard.ErrTimeout {
			t.Fatal(err)
		}
		if (st[0].EventState&scard.StatePresent != 0) == present {
			return
		}
		st[0].CurrentState = st[0].EventState &^ scard.StateChanged
	}
}

// removeCard pulls card i out and waits until pcscd has seen it go.
func (r *cardRig) removeCard(t testing.TB, i int) {
	t.Helper()
	r.control(t, i, "remove")
	r.waitReader(t, i, false)
}

// insertCard puts card i back and waits until pcscd has seen it.
func (r *cardRig) insertCard(t testing.TB, i int) {
	t.Helper()
	r.control(t, i, "insert")
	r.waitReader(t, i, true)
}

func (r *cardRig) control(t testing.TB, i int, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := cardemu.Control(ctx, r.ctl[i], cmd)
	if err != nil {
		t.Fatalf("card %d %q: %v", i, cmd, err)
	}
	return out
}

func (r *cardRig) stat(t testing.TB, i int, name string) int {
	t.Helper()
	for _, f := range strings.Fields(r.control(t, i, "stats")) {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			var n int
			fmt.Sscan(v, &n)
			return n
		}
	}
	t.Fatalf("no %s in stats", name)
	return 0
}

func (r *cardRig) member(id string, card, keyRef int) MemberConfig {
	return MemberConfig{ID: id, Kind: KindPCSC, Profile: "amo", Reader: r.readers[card], KeyRef: keyRef, PINFile: r.pinFile}
}

func memberState(p *Pool, id string) MemberStatus {
	for _, s := range p.Members() {
		if s.ID == id {
			return s
		}
	}
	return MemberStatus{}
}

// TestPCSC runs the card members through the real pcscd and vpcd against
// emulated cards (one pcscd per test process: libpcsclite reads
// PCSCLITE_CSOCK_NAME once).
func TestPCSC(t *testing.T) {
	r := startCards(t, 2)
	ctx := context.Background()
	rec := &recorder{}
	p, err := New(ctx, Config{Production: true, Members: []MemberConfig{r.member("card0", 0, 1), r.member("card1", 1, 2)}}, Options{Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	for _, s := range p.Members() {
		if s.State != StateUp {
			t.Fatalf("%s: %+v", s.ID, s)
		}
	}

	t.Run("sign", func(t *testing.T) {
		before0, before1 := r.stat(t, 0, "signatures"), r.stat(t, 1, "signatures")
		seen := map[string]int{}
		for i := range 10 {
			der, err := p.SignFile(ctx, "amo", fmt.Sprintf("lot-%d", i), fileData)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := Verify(der, fileData)
			if err != nil {
				t.Fatal(err)
			}
			switch string(cert.Raw) {
			case string(r.certs[0][0]):
				seen["card0-ec"]++
			case string(r.certs[1][1]):
				seen["card1-rsa"]++
			default:
				t.Fatal("unexpected signer certificate")
			}
		}
		if seen["card0-ec"] != 5 || seen["card1-rsa"] != 5 {
			t.Fatalf("dispatch %v", seen)
		}
		if d0, d1 := r.stat(t, 0, "signatures")-before0, r.stat(t, 1, "signatures")-before1; d0 != 5 || d1 != 5 {
			t.Fatalf("cards made %d and %d signatures, want 5 and 5", d0, d1)
		}
		p.CheckHealth(ctx)
		if s := memberState(p, "card0"); s.State != StateUp {
			t.Fatalf("card0 after health check: %+v", s)
		}
	})

	t.Run("removed card fails over", func(t *testing.T) {
		r.removeCard(t, 0)
		before1 := r.stat(t, 1, "signatures")
		nFailed := len(rec.of(EventSignFailed))
		// Both members are equally loaded: the request tries card0 first.
		der, err := p.SignFile(ctx, "amo", "lot-removed", fileData)
		if err != nil {
			t.Fatal(err)
		}
		if cert, err := Verify(der, fileData); err != nil || string(cert.Raw) != string(r.certs[1][1]) {
			t.Fatalf("verify: %v", err)
		}
		if d := r.stat(t, 1, "signatures") - before1; d != 1 {
			t.Fatalf("card1 made %d signatures for one request", d)
		}
		failed := rec.of(EventSignFailed)[nFailed:]
		if len(failed) != 1 || failed[0].MemberID != "card0" {
			t.Fatalf("failed attempts %+v", failed)
		}
		t.Logf("removed card error: %v", failed[0].Err)
		if s := memberState(p, "card0"); s.State != StateDown {
			t.Fatalf("card0 %+v, want down", s)
		}
		p.CheckHealth(ctx)
		if s := memberState(p, "card0"); s.State != StateDown {
			t.Fatalf("card0 %+v while removed", s)
		}
		verifies := r.stat(t, 0, "verifies")
		r.insertCard(t, 0)
		pollUp(t, p, "card0")
		if r.stat(t, 0, "verifies") != verifies+1 {
			t.Fatal("want exactly one new VERIFY after reinsertion")
		}
		for range 4 {
			if _, err := p.SignFile(ctx, "amo", "r", fileData); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("wrong status word fails over", func(t *testing.T) {
		r.control(t, 1, "fail 2A 6F00 1")
		r.control(t, 0, "fail 2A 6F00 1")
		before := r.stat(t, 0, "signatures") + r.stat(t, 1, "signatures")
		if _, err := p.SignFile(ctx, "amo", "lot-sw", fileData); err == nil {
			t.Fatal("both cards answered 6F00, yet a signature came back")
		}
		der, err := p.SignFile(ctx, "amo", "lot-sw-2", fileData)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(der, fileData); err != nil {
			t.Fatal(err)
		}
		if d := r.stat(t, 0, "signatures") + r.stat(t, 1, "signatures") - before; d != 1 {
			t.Fatalf("%d card signatures for one successful request", d)
		}
		for _, id := range []string{"card0", "card1"} {
			if s := memberState(p, id); s.State != StateUp || s.Breaker != BreakerClosed {
				t.Fatalf("%s after one status word fault: %+v", id, s)
			}
		}
	})

	t.Run("blocked PIN takes the card out", func(t *testing.T) {
		// Someone exhausted card0's tries while it was out of its reader.
		r.removeCard(t, 0)
		r.control(t, 0, "tries 0")
		r.insertCard(t, 0)
		verifies := r.stat(t, 0, "verifies")
		deadline := time.Now().Add(10 * time.Second)
		for memberState(p, "card0").State != StateDisabled {
			if time.Now().After(deadline) {
				t.Fatalf("card0 %+v, want disabled", memberState(p, "card0"))
			}
			// A request may hit card0 first: it fails over to card1.
			if _, err := p.SignFile(ctx, "amo", "lot-b", fileData); err != nil {
				t.Fatal(err)
			}
			p.CheckHealth(ctx)
		}
		if ev := rec.of(EventPINBlocked); len(ev) != 1 || ev[0].MemberID != "card0" {
			t.Fatalf("pin_blocked events %+v", ev)
		}
		for range 3 {
			p.CheckHealth(ctx)
			if _, err := p.SignFile(ctx, "amo", "r", fileData); err != nil {
				t.Fatal(err)
			}
		}
		if v := r.stat(t, 0, "verifies"); v != verifies {
			t.Fatalf("PIN presented to a blocked card (%d -> %d)", verifies, v)
		}
	})

	t.Run("wrong PIN is presented once", func(t *testing.T) {
		r.control(t, 0, "tries 3")
		bad := r.member("card0", 0, 1)
		bad.PINFile = r.badPIN
		verifies := r.stat(t, 0, "verifies")
		if err := p.Update(ctx, []MemberConfig{bad, r.member("card1", 1, 2)}); err != nil {
			t.Fatal(err)
		}
		s := memberState(p, "card0")
		var e *Error
		if s.State != StateDisabled || !errors.As(s.LastError, &e) || e.Code != CodePINIncorrect || e.TriesLeft != 2 {
			t.Fatalf("card0 %+v", s)
		}
		for range 3 {
			p.CheckHealth(ctx)
		}
		if v := r.stat(t, 0, "verifies"); v != verifies+1 {
			t.Fatalf("%d PIN presentations, want 1", v-verifies)
		}
		// Fix the configuration: the card is back.
		if err := p.Update(ctx, []MemberConfig{r.member("card0", 0, 1), r.member("card1", 1, 2)}); err != nil {
			t.Fatal(err)
		}
		if s := memberState(p, "card0"); s.State != StateUp {
			t.Fatalf("card0 %+v", s)
		}
		if n := r.stat(t, 0, "tries"); n != 3 {
			t.Fatalf("tries %d after a good PIN, want 3", n)
		}
	})
}

func pollUp(t *testing.T, p *Pool, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := testenv.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		p.CheckHealth(ctx)
		return memberState(p, id).State == StateUp, nil
	}); err != nil {
		t.Fatalf("%s not up again: %v (%+v)", id, err, memberState(p, id))
	}
}

// BenchmarkPoolPCSC measures signatures through pcscd and vpcd on emulated
// cards (P-256), one card per member.
//
//	OCT_INTEGRATION=1 go test -tags pcsc -run '^$' -bench PoolPCSC -benchtime 3s ./gateway/signing/
func BenchmarkPoolPCSC(b *testing.B) {
	r := startCards(b, 2)
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("p256/cards=%d", n), func(b *testing.B) {
			var cfgs []MemberConfig
			for i := range n {
				cfgs = append(cfgs, r.member(fmt.Sprintf("card%d", i), i, 1))
			}
			benchPool(b, cfgs, nil)
		})
	}
}
