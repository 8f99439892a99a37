package smtp

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/internal/testenv"
)

// TestSwaks sends IRIS/B2 messages with the real swaks client over
// STARTTLS and AUTH PLAIN.
func TestSwaks(t *testing.T) {
	testenv.Integration(t)
	testenv.NeedSwaksTLS(t)
	ctx := context.Background()
	e := startEnv(t, nil)
	p := e.pki
	inner := ediPart(b64lines(gz(t, b2), 76), "IRIS/B2/Z", "B2_1.gz")
	o := testenv.SwaksOptions{Addr: e.addr, User: "acme", Password: "s3cret", From: "vendor@acme.example", To: "01422@422.01.rss.fr"}

	for i, msg := range []string{
		mimeMessage(inner),
		mimeMessage(smimePart(envelope(t, []byte(inner), p.encCert, "aes128"))),
		mimeMessage(smimePart(envelope(t, []byte(inner), p.encCert, "3des"))),
	} {
		o.Data = []byte(msg)
		out, err := testenv.Swaks(ctx, t, o)
		if err != nil || !strings.Contains(out, "250 2.0.0 OK: queued") {
			t.Fatalf("message %d: %v\n%s", i, err, out)
		}
		if !strings.Contains(out, "STARTTLS") {
			t.Fatalf("no STARTTLS in the transcript:\n%s", out)
		}
		calls := e.intake.Calls()
		if len(calls) != i+1 || !bytes.Equal(calls[i].data, b2) || calls[i].src.Channel != "smtp" {
			t.Fatalf("message %d: calls = %d", i, len(calls))
		}
	}
	n := len(e.intake.Calls())

	refuse := func(name string, o testenv.SwaksOptions, want string) {
		t.Helper()
		out, err := testenv.Swaks(ctx, t, o)
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("%s: err=%v, want %q in\n%s", name, err, want, out)
		}
	}
	bad := o
	bad.Data = []byte(mimeMessage(ediPart(b64lines([]byte("not gzip"), 76), "IRIS/B2/Z", "")))
	refuse("bad gzip", bad, "554 5.6.0 Bad gzip")
	bad.Data = []byte(mimeMessage(smimePart(envelope(t, []byte(inner), p.otherCrt, "aes128"))))
	refuse("other recipient", bad, "554 5.7.5 Cannot decrypt")
	bad.Data = []byte(mimeMessage("Content-Type: text/plain\r\n\r\nhello\r\n"))
	refuse("no EDI part", bad, "554 5.6.0 No application/EDI-consent")
	wrong := o
	wrong.Data, wrong.Password = []byte(mimeMessage(inner)), "wrong"
	refuse("wrong password", wrong, "535")
	plain := o
	plain.Data, plain.NoTLS = []byte(mimeMessage(inner)), true
	refuse("AUTH without STARTTLS", plain, "advertise")
	if got := len(e.intake.Calls()); got != n {
		t.Fatalf("refused messages were taken in (%d calls)", got-n)
	}
	// The gateway cannot take the file now: 451, the client retries later.
	e.intake.setErr(gateway.ErrUnavailable)
	o.Data = []byte(mimeMessage(inner))
	refuse("unavailable", o, "451 4.3.0")
}
