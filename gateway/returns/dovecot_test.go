package returns

import (
	"path/filepath"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/internal/testenv"
)

// TestDovecotIntegration runs the poller against a real Dovecot
// (OCT_INTEGRATION=1): messages seeded by APPEND, moved with Dovecot's
// MOVE into folders under its own hierarchy delimiter, news picked up
// through IDLE, and nothing processed twice across a restart.
func TestDovecotIntegration(t *testing.T) {
	dc := testenv.StartDovecot(t)
	e := newEnv(t)
	e.addLot(lotSpec{id: "L1", invoices: []string{"000000101", "000000102"}})
	c := imapClientAs(t, dc.Addr, dc.User, dc.Password)
	ackMsg := message(t, "arl", arlFile(t, arl.ARL{LotNumber: 1, Positive: true}))
	garbage := []byte("Subject: bounce\r\nContent-Type: text/plain\r\n\r\nDelivery failed\r\n")
	appendMsg(t, c, "INBOX", ackMsg)
	appendMsg(t, c, "INBOX", garbage)

	cur, err := NewFileCursor(filepath.Join(e.dir, "cursor"))
	if err != nil {
		t.Fatal(err)
	}
	h := newCounting(e.proc)
	auth := func(o *PollerOptions) { o.Username, o.Password = dc.User, dc.Password }
	p := newPoller(t, dc.Addr, h, cur, auth)
	stop := runPoller(t, p)
	waitFor(t, "seeded messages handled", func() bool { s := p.Stats(); return s.Processed == 1 && s.Unparsable == 1 })
	waitFor(t, "poller in IDLE", func() bool { return p.Stats().Idles > 0 })
	rsp := message(t, "rsp", rspFile(t, "000000"+emitterA,
		rspInvoice{number: "000000101", lot: 1, state: 'P'}, rspInvoice{number: "000000102", lot: 1, state: 'R', code: "S001"}))
	appendMsg(t, c, "INBOX", rsp)
	waitFor(t, "RSP handled through IDLE", func() bool { return p.Stats().Processed == 2 })
	stop()

	processed, unparsable := serverName(t, c, "OCT/processed"), serverName(t, c, "OCT/unparsable")
	if n := count(t, c, processed); n != 2 {
		t.Fatalf("%s holds %d", processed, n)
	}
	if n := count(t, c, unparsable); n != 1 {
		t.Fatalf("%s holds %d", unparsable, n)
	}
	if n := count(t, c, "INBOX"); n != 0 {
		t.Fatalf("INBOX holds %d", n)
	}
	if s := e.lotState("L1"); s != lifecycle.LotSettled {
		t.Fatalf("lot %s", s)
	}
	if n := len(e.anomalies(AnomalyInvoiceRejected)); n != 1 {
		t.Fatalf("%d invoice-rejected anomalies", n)
	}

	// Restart with the same cursor: only the new message is handled.
	late := message(t, "late", arlFile(t, arl.ARL{LotNumber: 77, Positive: true}))
	appendMsg(t, c, "INBOX", late)
	p2 := newPoller(t, dc.Addr, h, cur, auth)
	stop2 := runPoller(t, p2)
	waitFor(t, "late message", func() bool { return p2.Stats().Processed == 1 })
	stop2()
	for name, raw := range map[string][]byte{"ack": ackMsg, "garbage": garbage, "rsp": rsp, "late": late} {
		if n := h.of(raw); n != 1 {
			t.Errorf("%s handled %d times", name, n)
		}
	}
	// The fetch used BODY.PEEK[]: nothing was marked \Seen.
	if _, err := c.Select(processed, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(data.AllUIDs()); n != 0 {
		t.Fatalf("%d messages marked seen", n)
	}
}
