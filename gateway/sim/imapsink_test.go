package sim

import (
	"context"
	"net"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

func TestIMAPSinkAppendsTheReturnMail(t *testing.T) {
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("oct", "secret")
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })

	sink := &IMAPSink{Addr: ln.Addr().String(), Username: "oct", Password: "secret"}
	r := Return{Kind: "arl", From: "01422@422.01.rss.fr", To: "returns@oct.test", Subject: "IR/ARL", Body: []byte("000 test body")}
	if err := sink.Deliver(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	c, err := imapclient.DialInsecure(ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("oct", "secret").Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 1 {
		t.Fatalf("INBOX holds %d messages (%v), want the return", sel.NumMessages, err)
	}
}
