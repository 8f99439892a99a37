package returns

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/gateway/lifecycle"
)

func newPoller(t *testing.T, addr string, h Handler, cur Cursor, tweak func(*PollerOptions)) *Poller {
	t.Helper()
	o := PollerOptions{Addr: addr, TLS: TLSNone, Username: imapUser, Password: imapPass, Handler: h, Cursor: cur,
		Interval: time.Hour, Backoff: 20 * time.Millisecond, Logger: quietLogger()}
	if tweak != nil {
		tweak(&o)
	}
	p, err := NewPoller(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var rev2 = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}

// TestPollerExactlyOnce: messages are processed once each, moved to the
// processed or unparsable folder, news is picked up through IDLE (the
// polling interval is an hour), and a restart with the same cursor does
// not process anything again.
func TestPollerExactlyOnce(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"000000101"}})
	addr := memIMAP(t, rev2)
	c := imapClient(t, addr)
	ackMsg := message(t, "arl", arlFile(t, arl.ARL{LotNumber: 1, Positive: true}))
	garbage := []byte("Subject: not a return\r\n\r\nhello\r\n")
	appendMsg(t, c, "INBOX", ackMsg)
	appendMsg(t, c, "INBOX", garbage)

	cur, err := NewFileCursor(filepath.Join(e.dir, "cursor"))
	if err != nil {
		t.Fatal(err)
	}
	h := newCounting(e.proc)
	p := newPoller(t, addr, h, cur, nil)
	stop := runPoller(t, p)
	waitFor(t, "two messages handled", func() bool { s := p.Stats(); return s.Processed == 1 && s.Unparsable == 1 })
	if got := count(t, c, "OCT/processed"); got != 1 {
		t.Fatalf("processed folder holds %d", got)
	}
	if got := count(t, c, "OCT/unparsable"); got != 1 {
		t.Fatalf("unparsable folder holds %d", got)
	}
	if got := count(t, c, "INBOX"); got != 0 {
		t.Fatalf("INBOX holds %d", got)
	}
	if e.lotState("L1") != lifecycle.LotARLPositive {
		t.Fatal("ARL not applied")
	}
	if n := len(e.anomalies(AnomalyUnparsable)); n != 1 {
		t.Fatalf("%d unparsable anomalies", n)
	}

	// While the poller idles, a new message arrives: IDLE wakes it.
	waitFor(t, "poller idling", func() bool { return p.Stats().Idles > 0 })
	rsp := message(t, "rsp", rspFile(t, "", rspInvoice{number: "000000101", lot: 1, state: 'P'}))
	appendMsg(t, c, "INBOX", rsp)
	waitFor(t, "RSP handled through IDLE", func() bool { return p.Stats().Processed == 2 })
	if e.lotState("L1") != lifecycle.LotSettled {
		t.Fatalf("lot %s", e.lotState("L1"))
	}
	stop()
	v, uid, err := cur.Load(t.Context(), "INBOX")
	if err != nil || v == 0 || uid != 3 {
		t.Fatalf("cursor %d/%d %v", v, uid, err)
	}

	// Restart with the same cursor: nothing is handled again; a new
	// message is.
	late := message(t, "arl-orphan", arlFile(t, arl.ARL{LotNumber: 42, Positive: true}))
	appendMsg(t, c, "INBOX", late)
	p2 := newPoller(t, addr, h, cur, nil)
	stop2 := runPoller(t, p2)
	waitFor(t, "new message after restart", func() bool { return p2.Stats().Processed == 1 })
	stop2()
	for name, raw := range map[string][]byte{"ack": ackMsg, "garbage": garbage, "rsp": rsp, "late": late} {
		if n := h.of(raw); n != 1 {
			t.Errorf("%s handled %d times", name, n)
		}
	}
	if s := p2.Stats(); s.Duplicates != 0 || s.Unparsable != 0 {
		t.Errorf("restart stats %+v", s)
	}
}

// TestPollerUIDValidityChange: a cursor from another UIDVALIDITY means a
// full scan; a message already applied (the crash came before its move)
// is recognised by content and only moved.
func TestPollerUIDValidityChange(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"1"}})
	addr := memIMAP(t, rev2)
	c := imapClient(t, addr)
	ackMsg := message(t, "arl", arlFile(t, arl.ARL{LotNumber: 1, Positive: true}))
	appendMsg(t, c, "INBOX", ackMsg)
	e.process(ackMsg) // applied, then "crashed" before the move
	events, _ := e.st.EventsAfter(t.Context(), 0, 10000)

	cur, _ := NewFileCursor(filepath.Join(e.dir, "cursor"))
	if err := cur.Save(t.Context(), "INBOX", 999999, 50); err != nil {
		t.Fatal(err)
	}
	p := newPoller(t, addr, e.proc, cur, nil)
	stop := runPoller(t, p)
	waitFor(t, "message moved", func() bool { return p.Stats().Processed == 1 })
	stop()
	if s := p.Stats(); s.Duplicates != 1 {
		t.Fatalf("stats %+v", s)
	}
	after, _ := e.st.EventsAfter(t.Context(), 0, 10000)
	if len(after) != len(events) {
		t.Fatalf("re-scan wrote %d events", len(after)-len(events))
	}
	if v, uid, _ := cur.Load(t.Context(), "INBOX"); v == 999999 || uid != 1 {
		t.Fatalf("cursor %d/%d", v, uid)
	}
}

// TestPollerPollingWithoutMove: polling at the interval (NoIdle) against
// an IMAP4rev1 server without MOVE nor UIDPLUS: messages are moved by COPY
// + \Deleted + EXPUNGE.
func TestPollerPollingWithoutMove(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"1"}})
	addr := memIMAP(t, imap.CapSet{imap.CapIMAP4rev1: {}})
	c := imapClient(t, addr)
	p := newPoller(t, addr, e.proc, mustCursor(t, e), func(o *PollerOptions) { o.Interval, o.NoIdle = 20*time.Millisecond, true })
	runPoller(t, p)
	waitFor(t, "first round", func() bool { return p.Stats().Rounds > 0 })
	appendMsg(t, c, "INBOX", message(t, "arl", arlFile(t, arl.ARL{LotNumber: 1, Positive: true})))
	waitFor(t, "message processed by polling", func() bool { return p.Stats().Processed == 1 })
	if s := p.Stats(); s.Idles != 0 {
		t.Fatalf("stats %+v", s)
	}
	waitFor(t, "moved", func() bool { return count(t, c, "INBOX") == 0 && count(t, c, "OCT/processed") == 1 })
}

// TestPollerBadLoginRetries: the poller survives a refused login (bad
// password) by retrying with backoff, and stops cleanly.
func TestPollerBadLoginRetries(t *testing.T) {
	e := newEnv(t)
	addr := memIMAP(t, rev2)
	p := newPoller(t, addr, e.proc, mustCursor(t, e), func(o *PollerOptions) { o.Password = "wrong" })
	stop := runPoller(t, p)
	waitFor(t, "two failed sessions", func() bool { return p.Stats().Failures >= 2 })
	stop()
	if p.Stats().Sessions != 0 {
		t.Fatal("logged in with a wrong password")
	}
}

func mustCursor(t *testing.T, e *env) *FileCursor {
	t.Helper()
	cur, err := NewFileCursor(filepath.Join(e.dir, "cursor"))
	if err != nil {
		t.Fatal(err)
	}
	return cur
}

func TestFileCursor(t *testing.T) {
	dir := t.TempDir()
	cur := mustCursorDir(t, dir)
	ctx := t.Context()
	if v, u, err := cur.Load(ctx, "INBOX"); v != 0 || u != 0 || err != nil {
		t.Fatalf("fresh cursor %d %d %v", v, u, err)
	}
	for _, mb := range []string{"INBOX", "Retours/AMO", "../x"} {
		if err := cur.Save(ctx, mb, 7, 42); err != nil {
			t.Fatal(err)
		}
	}
	again := mustCursorDir(t, dir) // a new process reads what was saved
	if v, u, err := again.Load(ctx, "Retours/AMO"); v != 7 || u != 42 || err != nil {
		t.Fatalf("reloaded %d %d %v", v, u, err)
	}
	ents, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(ents) != 3 {
		t.Fatalf("files %v", ents)
	}
}

func mustCursorDir(t *testing.T, dir string) *FileCursor {
	t.Helper()
	c, err := NewFileCursor(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// failOnce fails its first call, as a store that is briefly unavailable.
type failOnce struct {
	h      Handler
	failed atomic.Bool
}

func (f *failOnce) Process(ctx context.Context, raw []byte) (Outcome, error) {
	if !f.failed.Swap(true) {
		return Outcome{}, errors.New("store unavailable")
	}
	return f.h.Process(ctx, raw)
}

// TestPollerRetriesAfterHandlerError: a message whose processing fails
// stays in the mailbox, the cursor does not pass it, and it is processed
// after the reconnection.
func TestPollerRetriesAfterHandlerError(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"1"}})
	addr := memIMAP(t, rev2)
	c := imapClient(t, addr)
	appendMsg(t, c, "INBOX", message(t, "arl", arlFile(t, arl.ARL{LotNumber: 1, Positive: true})))
	cur := mustCursor(t, e)
	p := newPoller(t, addr, &failOnce{h: e.proc}, cur, nil)
	stop := runPoller(t, p)
	waitFor(t, "processed after a retry", func() bool { return p.Stats().Processed == 1 })
	stop()
	if s := p.Stats(); s.Failures < 1 || s.Sessions < 2 {
		t.Fatalf("stats %+v", s)
	}
	if e.lotState("L1") != lifecycle.LotARLPositive {
		t.Fatal("not applied")
	}
}

// cutProxy relays TCP to target; the first connection is cut once the
// client has asked for a FETCH and the server has sent 100 more bytes —
// in the middle of the message — later connections are relayed whole.
type cutProxy struct {
	ln     net.Listener
	target string
	cuts   atomic.Int32
	wg     sync.WaitGroup
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for first := true; ; first = false {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func(c net.Conn, cut bool) { defer p.wg.Done(); p.relay(c, cut) }(c, first)
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *cutProxy) relay(c net.Conn, cut bool) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	var fetching atomic.Bool
	done := make(chan struct{})
	go func() { // client -> server, watching for FETCH
		defer close(done)
		defer s.Close() // the client left: unblock the server -> client side
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if bytes.Contains(bytes.ToUpper(buf[:n]), []byte("FETCH")) {
					fetching.Store(true)
				}
				if _, werr := s.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64)
	sent := 0
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if cut && fetching.Load() {
				if sent += n; sent > 100 {
					p.cuts.Add(1)
					c.Close() // the connection dies mid-fetch
					s.Close()
					<-done
					return
				}
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	c.Close()
	<-done
}

// TestPollerConnectionCutMidFetch: the IMAP connection dies while a
// message is being fetched; the poller reconnects and the return is
// processed exactly once — not lost, not applied twice.
func TestPollerConnectionCutMidFetch(t *testing.T) {
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"000000101"}})
	addr := memIMAP(t, rev2)
	c := imapClient(t, addr)
	ackMsg := message(t, "arl", arlFile(t, arl.ARL{LotNumber: 1, Positive: true}))
	appendMsg(t, c, "INBOX", ackMsg)
	proxy := startCutProxy(t, addr)
	cur, err := NewFileCursor(filepath.Join(e.dir, "cursor"))
	if err != nil {
		t.Fatal(err)
	}
	h := newCounting(e.proc)
	p := newPoller(t, proxy.ln.Addr().String(), h, cur, nil)
	stop := runPoller(t, p)
	waitFor(t, "message handled after the cut", func() bool { return p.Stats().Processed == 1 })
	stop()
	if proxy.cuts.Load() != 1 {
		t.Fatalf("the connection was cut %d times, want once mid-fetch", proxy.cuts.Load())
	}
	if n := h.of(ackMsg); n != 1 {
		t.Fatalf("the ARL was handled %d times", n)
	}
	if e.lotState("L1") != lifecycle.LotARLPositive || count(t, c, "INBOX") != 0 || count(t, c, "OCT/processed") != 1 {
		t.Fatalf("lot %s, inbox %d", e.lotState("L1"), count(t, c, "INBOX"))
	}
}
