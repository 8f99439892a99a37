package smtp

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/internal/testenv"
)

type fakeIntaker struct {
	mu    sync.Mutex
	calls []intakeCall
	err   error
}

type intakeCall struct {
	tenant string
	src    gateway.Source
	data   []byte
}

func (f *fakeIntaker) Intake(ctx context.Context, tenant string, src gateway.Source, r io.Reader) (gateway.Ack, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return gateway.Ack{}, err
	}
	f.mu.Lock()
	f.calls = append(f.calls, intakeCall{tenant, src, data})
	n, ferr := len(f.calls), f.err
	f.mu.Unlock()
	if ferr != nil {
		return gateway.Ack{}, ferr
	}
	if len(data) == 0 {
		return gateway.Ack{}, gateway.ErrEmpty
	}
	sum := sha256.Sum256(data)
	return gateway.Ack{ID: fmt.Sprintf("F%04d", n), Status: gateway.StatusAccepted, Format: "b2", Name: src.Name,
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)), Received: "2026-01-02T03:04:05Z"}, nil
}

func (f *fakeIntaker) Calls() []intakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]intakeCall(nil), f.calls...)
}

func (f *fakeIntaker) setErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// fakeTenants knows user "acme" with password "s3cret".
type fakeTenants struct{}

func (fakeTenants) CheckPassword(_ context.Context, user, pass string) (string, error) {
	if user == "acme" && pass == "s3cret" {
		return "acme", nil
	}
	return "", ErrBadCredentials
}

// testPKI is a self-signed TLS certificate for 127.0.0.1 and an RSA
// certificate and key for S/MIME, made once per test binary.
type testPKI struct {
	tls      *tls.Config // server side
	roots    *x509.CertPool
	certPEM  []byte
	encCert  *x509.Certificate
	encKey   *rsa.PrivateKey
	otherCrt *x509.Certificate // another recipient: the OCT cannot decrypt
}

var pkiOnce = sync.OnceValues(func() (*testPKI, error) {
	p := &testPKI{}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ek.PublicKey, ek)
	if err != nil {
		return nil, err
	}
	leaf, _ := x509.ParseCertificate(der)
	p.tls = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: ek, Leaf: leaf}}, MinVersion: tls.VersionTLS12}
	p.roots = x509.NewCertPool()
	p.roots.AddCert(leaf)
	mk := func(serial int64, cn string) (*x509.Certificate, *rsa.PrivateKey, error) {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, nil, err
		}
		t := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageKeyEncipherment}
		d, err := x509.CreateCertificate(rand.Reader, t, t, &k.PublicKey, k)
		if err != nil {
			return nil, nil, err
		}
		c, err := x509.ParseCertificate(d)
		return c, k, err
	}
	if p.encCert, p.encKey, err = mk(10, "oct.example"); err != nil {
		return nil, err
	}
	if p.otherCrt, _, err = mk(11, "someone-else"); err != nil {
		return nil, err
	}
	return p, nil
})

func pki(t *testing.T) *testPKI {
	t.Helper()
	p, err := pkiOnce()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// envelope builds CMS enveloped-data of content for cert, with AES-128-CBC
// or 3DES-CBC (written here so that tests do not touch pkcs7's globals).
func envelope(t *testing.T, content []byte, cert *x509.Certificate, alg string) []byte {
	t.Helper()
	var (
		key   []byte
		block cipher.Block
		oid   asn1.ObjectIdentifier
		err   error
	)
	switch alg {
	case "aes128":
		key = make([]byte, 16)
		rand.Read(key)
		block, err = aes.NewCipher(key)
		oid = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	case "3des":
		key = make([]byte, 24)
		rand.Read(key)
		block, err = des.NewTripleDESCipher(key)
		oid = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
	default:
		t.Fatalf("alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	iv := make([]byte, block.BlockSize())
	rand.Read(iv)
	pad := block.BlockSize() - len(content)%block.BlockSize()
	padded := append(append([]byte(nil), content...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)
	ek, err := rsa.EncryptPKCS1v15(rand.Reader, cert.PublicKey.(*rsa.PublicKey), key)
	if err != nil {
		t.Fatal(err)
	}
	type algID struct {
		Algorithm  asn1.ObjectIdentifier
		Parameters asn1.RawValue `asn1:"optional"`
	}
	type issuerSerial struct {
		Issuer asn1.RawValue
		Serial *big.Int
	}
	type recipientInfo struct {
		Version      int
		IssuerSerial issuerSerial
		KeyAlg       algID
		EncryptedKey []byte
	}
	type encContent struct {
		ContentType asn1.ObjectIdentifier
		Alg         algID
		Content     asn1.RawValue
	}
	type envData struct {
		Version    int
		Recipients []recipientInfo `asn1:"set"`
		Enc        encContent
	}
	type contentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue
	}
	ivDER, _ := asn1.Marshal(iv)
	env, err := asn1.Marshal(envData{
		Recipients: []recipientInfo{{
			IssuerSerial: issuerSerial{Issuer: asn1.RawValue{FullBytes: cert.RawIssuer}, Serial: cert.SerialNumber},
			KeyAlg:       algID{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}, Parameters: asn1.NullRawValue},
			EncryptedKey: ek,
		}},
		Enc: encContent{
			ContentType: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1},
			Alg:         algID{Algorithm: oid, Parameters: asn1.RawValue{FullBytes: ivDER}},
			Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: ct},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := asn1.Marshal(contentInfo{
		ContentType: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3},
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: env},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func b64lines(b []byte, width int) string {
	s := base64.StdEncoding.EncodeToString(b)
	var sb strings.Builder
	for len(s) > width {
		sb.WriteString(s[:width])
		sb.WriteString("\r\n")
		s = s[width:]
	}
	sb.WriteString(s)
	sb.WriteString("\r\n")
	return sb.String()
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ediPart is an application/EDI-consent MIME part (headers and body).
func ediPart(body, desc, filename string) string {
	h := "Content-Type: application/EDI-consent\r\nContent-Transfer-Encoding: base64\r\nContent-Description: " + desc + "\r\n"
	if filename != "" {
		h += "Content-Disposition: attachment; filename=\"" + filename + "\"\r\n"
	}
	return h + "\r\n" + body
}

// mimeMessage wraps parts in a multipart/mixed message with IRIS headers.
func mimeMessage(parts ...string) string {
	var b strings.Builder
	b.WriteString("From: vendor@acme.example\r\nTo: 01422@422.01.rss.fr\r\nSubject: IR100500/00000123456789/2026010203040500001/00001\r\n")
	b.WriteString("Message-ID: <2026010203040500001@acme.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=b1\"\r\n\r\n")
	b.WriteString("--=b1\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nLot B2\r\n")
	for _, p := range parts {
		b.WriteString("--=b1\r\n")
		b.WriteString(p)
	}
	b.WriteString("--=b1--\r\n")
	return b.String()
}

func smimePart(p7 []byte) string {
	return "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=smime.p7m\r\n\r\n" + b64lines(p7, 64)
}

type logHook struct{ ch chan string }

func (h *logHook) Enabled(context.Context, slog.Level) bool { return true }
func (h *logHook) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.ch <- r.Message:
	default:
	}
	return nil
}
func (h *logHook) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logHook) WithGroup(string) slog.Handler      { return h }

type env struct {
	t      *testing.T
	srv    *Server
	addr   string
	intake *fakeIntaker
	pki    *testPKI
	stop   func() // shuts the server down, checks its goroutines ended
}

func startEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	p := pki(t)
	e := &env{t: t, intake: &fakeIntaker{}, pki: p}
	cfg := Config{
		TLS: p.tls, Tenants: fakeTenants{}, Intaker: e.intake,
		Decrypter: &Decrypter{Cert: p.encCert, Key: p.encKey},
		Logger:    slog.New(&logHook{ch: make(chan string, 64)}),
		AuthDelay: time.Millisecond, MaxAuthDelay: 2 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	var err error
	if e.srv, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	e.addr, e.stop = testenv.ServeLoopback(t, e.srv.Serve, e.srv.running.Load)
	return e
}
