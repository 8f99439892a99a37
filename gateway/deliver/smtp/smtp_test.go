package smtp_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/smallstep/pkcs7"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway/deliver"
	"github.com/octgw/oct/gateway/deliver/iris"
	dsmtp "github.com/octgw/oct/gateway/deliver/smtp"
	"github.com/octgw/oct/gateway/signing"
	"github.com/octgw/oct/gateway/sim"
	"github.com/octgw/oct/referentials"
)

const box = "01422@422.01.rss.fr"

func lotFile(t *testing.T, opt b2.GenOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b2.Generate(&buf, opt); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sign(t *testing.T, data []byte) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "OCT signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)
	sw, err := signing.NewSoftware("test", key, cert)
	if err != nil {
		t.Fatal(err)
	}
	cms, err := signing.SignCMS(context.Background(), sw, cert, data, signing.Detached())
	if err != nil {
		t.Fatal(err)
	}
	return cms
}

type env struct {
	sim    *sim.Sim
	addr   string
	sender *dsmtp.Sender
	clock  *sim.FakeClock
}

func newEnv(t *testing.T, mut func(*dsmtp.Config)) *env {
	t.Helper()
	clock := sim.NewFakeClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	s, err := sim.New(sim.Config{Mailboxes: []string{box}, KeyBits: 1024, Clock: clock,
		Sink: sim.SinkFunc(func(context.Context, sim.Return) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	addr, err := s.StartSMTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := dsmtp.Config{Relay: addr, From: "oct@oct.test", RootCAs: s.RootCAs(), ServerName: "localhost",
		Username: "oct", Password: "secret", CommandTimeout: 10 * time.Second}
	if mut != nil {
		mut(&cfg)
	}
	snd, err := dsmtp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{sim: s, addr: addr, sender: snd, clock: clock}
}

func (e *env) message(t *testing.T, cipher referentials.Cipher, body []byte) deliver.Message {
	return deliver.Message{Lot: "L1", Emitter: "750000001", FileID: "F00001", Invoices: 3,
		Dest: deliver.Destination{ID: "cpam-422", Transport: referentials.SMTP, Address: box, Cipher: cipher},
		Cert: e.sim.Cert(box), Body: body, Signature: sign(t, body)}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

var subjectRE = regexp.MustCompile(`^IR100500/00000750000001/\d{19}/00003$`)

// TestSendAESAnd3DES: delivery over STARTTLS with a verified certificate
// and AUTH PLAIN; the simulator decrypts both ciphers with the caisse key,
// finds the gzipped file and a valid detached signature.
func TestSendAESAnd3DES(t *testing.T) {
	e := newEnv(t, nil)
	body := lotFile(t, b2.GenOptions{Seed: 1})
	for i, c := range []referentials.Cipher{referentials.AES128, referentials.TripleDES, ""} {
		m := e.message(t, c, body)
		rc, err := e.sender.Send(ctx(t), m)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if !strings.HasPrefix(rc.MessageID, "<") || !strings.HasSuffix(rc.MessageID, "@oct.test>") || !strings.HasPrefix(rc.Detail, "250") {
			t.Fatalf("receipt %+v", rc)
		}
		got := e.sim.Received()
		if len(got) != i+1 {
			t.Fatalf("received %d", len(got))
		}
		r := got[i]
		want := string(c)
		if c == "" {
			want = "aes128"
		}
		if r.Cipher != want || !r.TLS || r.User != "oct" || !bytes.Equal(r.File, body) || !r.Valid {
			t.Fatalf("%s: received cipher=%q tls=%v user=%q same=%v valid=%v", c, r.Cipher, r.TLS, r.User, bytes.Equal(r.File, body), r.Valid)
		}
		if !r.Signed || !r.SignatureOK {
			t.Fatalf("signature: %+v %s", r.Signed, r.SignatureErr)
		}
		if r.MessageID != rc.MessageID || !subjectRE.MatchString(r.Subject) || r.Description != "IRIS/B2/Z" {
			t.Fatalf("headers: %q %q %q", r.MessageID, r.Subject, r.Description)
		}
	}
	if st := e.sim.Stats(); st.Auths != 3 || st.Mails != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// TestComposeStructure opens a composed message by hand: outer headers,
// enveloped-data part, inner EDI part in base64 of gzip, signature part,
// IRISTEST for a test flow, unique Message-IDs.
func TestComposeStructure(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 1024)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: box},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)
	snd, err := dsmtp.New(dsmtp.Config{Relay: "127.0.0.1:1", From: "oct@oct.test"})
	if err != nil {
		t.Fatal(err)
	}
	body := lotFile(t, b2.GenOptions{Seed: 2, Test: true})
	m := deliver.Message{Lot: "L1", Emitter: "750000001", Invoices: 3, Test: true,
		Dest: deliver.Destination{ID: "x", Transport: referentials.SMTP, Address: box, Cipher: referentials.TripleDES},
		Cert: cert, Body: body, Signature: []byte{0x30, 0x00}}
	c1, err := snd.Compose(m)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := snd.Compose(m)
	if c1.MessageID == c2.MessageID || c1.Subject == c2.Subject {
		t.Fatalf("not unique: %s %s", c1.MessageID, c2.MessageID)
	}
	ent, err := message.Read(bufio.NewReader(bytes.NewReader(c1.Raw)))
	if err != nil {
		t.Fatal(err)
	}
	h := ent.Header
	if h.Get("To") != "<"+box+">" || h.Get("From") != "<oct@oct.test>" || h.Get("Mime-Version") != "1.0" ||
		h.Get("Message-Id") != c1.MessageID || h.Get("Subject") != c1.Subject || h.Get("Content-Description") != "IRISTEST/B2/Z" {
		t.Fatalf("outer header: %v", h.Map())
	}
	mr := ent.MultipartReader()
	if mr == nil {
		t.Fatal("not multipart")
	}
	p, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	mt, params, _ := p.Header.ContentType()
	if mt != "application/pkcs7-mime" || params["smime-type"] != "enveloped-data" {
		t.Fatalf("part %s %v", mt, params)
	}
	der2, _ := io.ReadAll(p.Body)
	if c, _ := iris.CipherOf(der2); c != "3des" {
		t.Fatalf("cipher %s", c)
	}
	p7, err := pkcs7.Parse(der2)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := p7.Decrypt(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	// Inner: multipart with the EDI part then the signature; read raw
	// (no transfer decoding) to check the encodings themselves.
	inner, err := message.Read(bufio.NewReader(bytes.NewReader(plain)))
	if err != nil {
		t.Fatal(err)
	}
	imr := inner.MultipartReader()
	edi, err := imr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if mt, _, _ := edi.Header.ContentType(); !strings.EqualFold(mt, "application/EDI-consent") ||
		edi.Header.Get("Content-Description") != "IRISTEST/B2/Z" {
		t.Fatalf("edi part header %v", edi.Header.Map())
	}
	zipped, _ := io.ReadAll(edi.Body) // go-message decodes base64 for us
	if len(zipped) < 2 || zipped[0] != 0x1f || zipped[1] != 0x8b {
		t.Fatal("not gzip")
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	unz, _ := io.ReadAll(zr)
	if !bytes.Equal(unz, body) {
		t.Fatal("gunzip differs")
	}
	sig, err := imr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if mt, _, _ := sig.Header.ContentType(); mt != "application/pkcs7-signature" {
		t.Fatalf("sig part %s", mt)
	}
	// The raw inner text really is base64 (76 columns).
	i := bytes.Index(plain, []byte("Content-Transfer-Encoding: base64"))
	if i < 0 {
		t.Fatal("no base64 CTE")
	}
	lines := strings.Split(string(plain[bytes.Index(plain[i:], []byte("\r\n\r\n"))+i+4:]), "\r\n")
	if _, err := base64.StdEncoding.DecodeString(lines[0]); err != nil || len(lines[0]) != 76 {
		t.Fatalf("first body line %q", lines[0])
	}
}

// TestWrongCertificate: a relay whose certificate the client does not
// trust fails permanently, before any AUTH or MAIL.
func TestWrongCertificate(t *testing.T) {
	e := newEnv(t, func(c *dsmtp.Config) { c.RootCAs = x509.NewCertPool() })
	body := lotFile(t, b2.GenOptions{Seed: 3})
	_, err := e.sender.Send(ctx(t), e.message(t, referentials.AES128, body))
	if !errors.Is(err, deliver.ErrPermanent) || !errors.Is(err, deliver.ErrTLS) {
		t.Fatalf("err %v", err)
	}
	// Wrong name, trusted CA: also refused.
	e2 := newEnv(t, func(c *dsmtp.Config) { c.ServerName = "caisse.example" })
	_, err2 := e2.sender.Send(ctx(t), e2.message(t, referentials.AES128, body))
	if !errors.Is(err2, deliver.ErrPermanent) || !errors.Is(err2, deliver.ErrTLS) {
		t.Fatalf("err %v", err2)
	}
	t.Logf("unknown authority: %v", err)
	t.Logf("wrong name: %v", err2)
	for _, s := range []*sim.Sim{e.sim, e2.sim} {
		if st := s.Stats(); st.Auths != 0 || st.Mails != 0 || st.Files != 0 {
			t.Fatalf("the server saw %+v", st)
		}
	}
}

// TestReplyClasses: 4xx temporary, 5xx permanent, with the reply kept;
// refused connection temporary; unknown mailbox permanent.
func TestReplyClasses(t *testing.T) {
	e := newEnv(t, nil)
	body := lotFile(t, b2.GenOptions{Seed: 4})
	e.sim.InjectFault(box, sim.Fault{Stage: "rcpt", Code: 451, Message: "Mailbox busy, try later"})
	_, err := e.sender.Send(ctx(t), e.message(t, referentials.AES128, body))
	var de *deliver.Error
	if !errors.Is(err, deliver.ErrTemporary) || !errors.As(err, &de) || de.Code != 451 || de.Op != "rcpt" || !strings.Contains(de.Reply, "Mailbox busy") {
		t.Fatalf("451: %v", err)
	}
	e.sim.InjectFault(box, sim.Fault{Stage: "data", Code: 554, Message: "Transaction failed: file refused"})
	_, err = e.sender.Send(ctx(t), e.message(t, referentials.AES128, body))
	if !errors.Is(err, deliver.ErrPermanent) || !errors.As(err, &de) || de.Code != 554 || !strings.Contains(de.Reply, "file refused") {
		t.Fatalf("554: %v", err)
	}
	m := e.message(t, referentials.AES128, body)
	m.Dest.Address = "01999@999.01.rss.fr"
	_, err = e.sender.Send(ctx(t), m)
	if !errors.Is(err, deliver.ErrPermanent) || !errors.As(err, &de) || de.Code != 550 {
		t.Fatalf("550: %v", err)
	}
	// The next send goes through: faults were consumed.
	if _, err := e.sender.Send(ctx(t), e.message(t, referentials.AES128, body)); err != nil {
		t.Fatal(err)
	}

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	snd, _ := dsmtp.New(dsmtp.Config{Relay: addr, From: "oct@oct.test"})
	if _, err := snd.Send(ctx(t), e.message(t, referentials.AES128, body)); !errors.Is(err, deliver.ErrTemporary) {
		t.Fatalf("refused: %v", err)
	}
	// Cancelled context: temporary, nothing sent.
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.sender.Send(c, e.message(t, referentials.AES128, body)); !errors.Is(err, deliver.ErrTemporary) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestComposeErrors(t *testing.T) {
	snd, _ := dsmtp.New(dsmtp.Config{Relay: "127.0.0.1:1", From: "oct@oct.test"})
	base := deliver.Message{Emitter: "750000001", Body: []byte("x"), Dest: deliver.Destination{Address: box, Cipher: referentials.AES128}}
	for name, m := range map[string]deliver.Message{
		"no cert":   base,
		"bad rcpt":  func() deliver.Message { m := base; m.Dest.Address = "nobody"; return m }(),
		"transport": func() deliver.Message { m := base; m.Dest.Transport = referentials.SFTP; return m }(),
		"cipher":    func() deliver.Message { m := base; m.Dest.Cipher = "rc4"; return m }(),
	} {
		if _, err := snd.Send(context.Background(), m); !errors.Is(err, deliver.ErrPermanent) || !errors.Is(err, deliver.ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := dsmtp.New(dsmtp.Config{Relay: "nohost", From: "a@b"}); !errors.Is(err, deliver.ErrConfig) {
		t.Fatal(err)
	}
}
