package smtp

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/intake/mailbox"
)

var b2 = []byte("000 fake B2 file for the fake intaker\r\n999\r\n")

// dial connects, upgrades with STARTTLS (checking the handshake at once:
// the go-smtp client is lazy) and logs in.
func (e *env) dial(user, pass string) (*smtp.Client, error) {
	c, err := smtp.DialStartTLS(e.addr, &tls.Config{RootCAs: e.pki.roots, ServerName: "127.0.0.1"})
	if err != nil {
		return nil, err
	}
	if err := c.Noop(); err != nil {
		c.Close()
		return nil, err
	}
	if st, ok := c.TLSConnectionState(); !ok || !st.HandshakeComplete {
		c.Close()
		return nil, errors.New("no TLS")
	}
	if user != "" {
		if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func (e *env) send(msg string) error {
	e.t.Helper()
	c, err := e.dial("acme", "s3cret")
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	return c.SendMail("vendor@acme.example", []string{"01422@422.01.rss.fr"}, strings.NewReader(msg))
}

func code(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestAcceptsIRISMessages(t *testing.T) {
	e := startEnv(t, nil)
	p := e.pki
	inner := ediPart(b64lines(gz(t, b2), 76), "IRIS/B2/Z", "B2_2026010203040500001.gz")
	cases := []struct {
		name, msg, wantName string
		encrypted           bool
	}{
		{"gzip", mimeMessage(inner), "B2_2026010203040500001.gz", false},
		{"plain", mimeMessage(ediPart(b64lines(b2, 76), "IRISTEST/B2", "")), "B2", false},
		{"aes128", mimeMessage(smimePart(envelope(t, []byte(inner), p.encCert, "aes128"))), "B2_2026010203040500001.gz", true},
		{"3des", mimeMessage(smimePart(envelope(t, []byte(inner), p.encCert, "3des"))), "B2_2026010203040500001.gz", true},
		// Top-level S/MIME (no multipart around it).
		{"toplevel", "From: v@a\r\nTo: o@b\r\nSubject: IR/x\r\nMIME-Version: 1.0\r\n" + smimePart(envelope(t, []byte(inner), p.encCert, "aes128")), "B2_2026010203040500001.gz", true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.send(tc.msg); err != nil {
				t.Fatalf("send: %v", err)
			}
			calls := e.intake.Calls()
			if len(calls) != i+1 {
				t.Fatalf("calls = %d, want %d", len(calls), i+1)
			}
			c := calls[i]
			if c.tenant != "acme" || c.src.Channel != "smtp" || c.src.Name != tc.wantName || !bytes.Equal(c.data, b2) || c.src.Remote == "" {
				t.Fatalf("call = %+v (%q)", c.src, c.data)
			}
		})
	}
	// Two B2 files in one message: both taken in.
	n := len(e.intake.Calls())
	if err := e.send(mimeMessage(inner, ediPart(b64lines(b2, 76), "IRIS/B2", "second"))); err != nil {
		t.Fatal(err)
	}
	if got := len(e.intake.Calls()) - n; got != 2 {
		t.Fatalf("two-part message: %d calls", got)
	}
}

func TestRefusals(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.MaxFileSize = 1000; c.MaxMessageBytes = 20000 })
	p := e.pki
	badGzip := ediPart(b64lines([]byte("not gzip at all"), 76), "IRIS/B2/Z", "")
	cases := []struct {
		name, msg string
		code      int
		text      string
	}{
		{"no EDI part", mimeMessage("Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n"), 554, "EDI-consent"},
		{"bad base64", mimeMessage(ediPart("!!!! not base64 ????\r\n", "IRIS/B2", "")), 554, "base64"},
		{"bad gzip", mimeMessage(badGzip), 554, "gzip"},
		{"other recipient", mimeMessage(smimePart(envelope(t, []byte(badGzip), p.otherCrt, "aes128"))), 554, "decrypt"},
		{"not pkcs7", mimeMessage(smimePart([]byte("garbage"))), 554, "decrypt"},
		{"decoded too large", mimeMessage(ediPart(b64lines(gz(t, bytes.Repeat([]byte("0"), 5000)), 76), "IRIS/B2/Z", "")), 552, "too large"},
		{"message too large", mimeMessage(ediPart(b64lines(bytes.Repeat([]byte("0"), 30000), 76), "IRIS/B2", "")), 552, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := e.send(tc.msg)
			if code(err) != tc.code || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.text)) {
				t.Fatalf("reply = %v, want %d with %q", err, tc.code, tc.text)
			}
		})
	}
	if n := len(e.intake.Calls()); n != 0 {
		t.Fatalf("%d files taken in from invalid messages", n)
	}
}

func TestIntakeErrorsMapTo4xx(t *testing.T) {
	e := startEnv(t, nil)
	msg := mimeMessage(ediPart(b64lines(b2, 76), "IRIS/B2", ""))
	for _, tc := range []struct {
		err  error
		code int
	}{
		{gateway.ErrUnavailable, 451}, {gateway.ErrShuttingDown, 451}, {gateway.ErrRateLimited, 451},
		{gateway.ErrTooLarge, 552}, {gateway.ErrUnknownTenant, 550}, {errors.New("disk on fire"), 451},
	} {
		e.intake.setErr(tc.err)
		if err := e.send(msg); code(err) != tc.code {
			t.Errorf("%v: reply %v, want %d", tc.err, err, tc.code)
		}
	}
	e.intake.setErr(nil)
	if err := e.send(mimeMessage(ediPart("", "IRIS/B2", ""))); code(err) != 554 {
		t.Errorf("empty B2: %v", err)
	}
}

func TestAuthAndTLSRequired(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.MaxRecipients = 2 })
	// No STARTTLS: AUTH is not offered and refused, MAIL is refused.
	c, err := smtp.Dial(e.addr)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered before STARTTLS")
	}
	if err := c.Auth(sasl.NewPlainClient("", "acme", "s3cret")); err == nil {
		t.Error("AUTH accepted before STARTTLS")
	}
	if err := c.Mail("v@a", nil); err == nil {
		t.Error("MAIL accepted without TLS")
	}
	c.Close()
	// Wrong password, unknown user, authzid of another user.
	for _, a := range []sasl.Client{sasl.NewPlainClient("", "acme", "nope"), sasl.NewPlainClient("", "mallory", "s3cret"), sasl.NewPlainClient("beta", "acme", "s3cret")} {
		c, err := e.dial("", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Auth(a); code(err) != 535 {
			t.Errorf("bad credentials: %v", err)
		}
		c.Close()
	}
	e.srv.mu.Lock()
	d := e.srv.fails.Delay("127.0.0.1", e.srv.cfg.Now())
	e.srv.mu.Unlock()
	if d != 2*time.Millisecond {
		t.Errorf("delay after 3 failures = %v", d)
	}
	// TLS without AUTH: MAIL refused.
	c, err = e.dial("", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("v@a", nil); code(err) != 502 {
		t.Errorf("MAIL without AUTH: %v", err)
	}
	c.Close()
	// Recipient limit.
	c, err = e.dial("acme", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail("v@a", []string{"a@b", "c@d", "e@f"}, strings.NewReader(mimeMessage(ediPart(b64lines(b2, 76), "IRIS/B2", "")))); code(err) != 452 {
		t.Errorf("third recipient: %v", err)
	}
}

func TestShutdownClosesConnections(t *testing.T) {
	e := startEnv(t, nil)
	c1, err := e.dial("acme", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := smtp.Dial(e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	e.stop() // Serve returned and no goroutine is left
	if err := c1.Noop(); err == nil {
		t.Fatal("connection still open after shutdown")
	}
}

// TestAcknowledgementInOutbox: with tenant folders configured, the
// acknowledgement of a file taken in by mail lands in the tenant's outbox/,
// like an SFTP upload's.
func TestAcknowledgementInOutbox(t *testing.T) {
	folders, err := mailbox.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := startEnv(t, func(c *Config) { c.Folders = folders })
	if err := e.send(mimeMessage(ediPart(b64lines(b2, 76), "IRIS/B2", "lot.b2"))); err != nil {
		t.Fatal(err)
	}
	root, err := folders.Open("acme")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	b, err := root.ReadFile(mailbox.Outbox + "/lot.b2.ack.json")
	if err != nil {
		t.Fatalf("no acknowledgement in outbox/: %v", err)
	}
	var ack gateway.Ack
	if err := json.Unmarshal(b, &ack); err != nil || ack.ID == "" {
		t.Fatalf("ack %s: %v", b, err)
	}
}
