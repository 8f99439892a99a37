package iris_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/octgw/oct/gateway/deliver/iris"
	insmtp "github.com/octgw/oct/gateway/intake/smtp"
	"github.com/octgw/oct/referentials"
)

func rsaCert(t *testing.T) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "01422@422.01.rss.fr"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func TestSubject(t *testing.T) {
	s := iris.Subject{Version: "100500", Emitter: "750000001", Compostage: iris.Compostage(time.Date(2026, 3, 2, 10, 4, 5, 0, time.UTC), 123456), Invoices: 3}
	got, err := s.Format()
	if err != nil {
		t.Fatal(err)
	}
	want := "IR100500/00000750000001/2026030210040523456/00003"
	if got != want {
		t.Fatalf("subject %q, want %q", got, want)
	}
	back, err := iris.ParseSubject(got)
	if err != nil || back.Emitter != "00000750000001" || back.Invoices != 3 || back.Version != "100500" {
		t.Fatalf("parse: %+v %v", back, err)
	}
	s.Version = ""
	if got := s.String(); got != "IR/00000750000001/2026030210040523456/00003" {
		t.Fatalf("no version: %q", got)
	}
	if _, err := iris.ParseSubject("IR/00000750000001/2026030210040523456/00003"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []iris.Subject{
		{Version: "12345", Emitter: "1", Compostage: s.Compostage},
		{Emitter: "123456789012345", Compostage: s.Compostage},
		{Emitter: "75a", Compostage: s.Compostage},
		{Emitter: "1", Compostage: "123"},
		{Emitter: "1", Compostage: s.Compostage, Invoices: 100000},
	} {
		if _, err := bad.Format(); !errors.Is(err, iris.ErrSubject) {
			t.Errorf("%+v: err %v", bad, err)
		}
	}
	for _, bad := range []string{"", "XX/1/2/3", "IR100500/00000750000001/2026030210040523456", "IR1/00000750000001/2026030210040523456/00003"} {
		if _, err := iris.ParseSubject(bad); !errors.Is(err, iris.ErrSubject) {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}

// TestBuildExtract builds encrypted and clear messages and reads them back
// with the intake's decoder (smallstep/pkcs7 for decryption): both
// ciphers, with and without signature.
func TestBuildExtract(t *testing.T) {
	cert, key := rsaCert(t)
	data := bytes.Repeat([]byte("0123456789ABCDEF"), 64)
	for _, tc := range []struct {
		name   string
		cipher referentials.Cipher
		sig    []byte
		test   bool
	}{
		{"aes128", referentials.AES128, nil, false},
		{"3des+sig", referentials.TripleDES, []byte{0x30, 0x03, 0x02, 0x01, 0x01}, true},
		{"clear+sig", referentials.CipherNone, []byte{0x30, 0x03, 0x02, 0x01, 0x01}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := iris.Mail{From: "oct@oct.test", To: "01422@422.01.rss.fr", MessageID: "x1@oct.test",
				Date: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), Subject: "IR/00000750000001/2026030210040523456/00003",
				Description: iris.Description(tc.test, true), FileName: "B2_1.gz", Data: data, Compress: true, Signature: tc.sig,
				Cipher: tc.cipher}
			if tc.cipher != referentials.CipherNone {
				m.Cert = cert
			}
			var buf bytes.Buffer
			if err := iris.Build(&buf, m); err != nil {
				t.Fatal(err)
			}
			raw := buf.Bytes()
			for _, line := range bytes.Split(raw, []byte("\r\n")) {
				if len(line) > 998 {
					t.Fatalf("line of %d bytes", len(line))
				}
			}
			mr, err := mail.CreateReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if got := mr.Header.Get("Subject"); got != m.Subject {
				t.Fatalf("subject %q", got)
			}
			if got := mr.Header.Get("Message-Id"); got != "<x1@oct.test>" {
				t.Fatalf("message-id %q", got)
			}
			parts, err := insmtp.Extract(bytes.NewReader(raw), insmtp.ExtractOptions{Decrypter: &insmtp.Decrypter{Cert: cert, Key: key}})
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) != 1 || !bytes.Equal(parts[0].Data, data) {
				t.Fatalf("parts %d", len(parts))
			}
			if parts[0].Encrypted != (tc.cipher != referentials.CipherNone) || parts[0].Description != iris.Description(tc.test, true) {
				t.Fatalf("part %+v", parts[0].Description)
			}
			if tc.cipher != referentials.CipherNone {
				if !strings.Contains(string(raw), "smime-type=enveloped-data") {
					t.Fatal("no enveloped-data part")
				}
			}
		})
	}
}

func TestEncryptCipherAndErrors(t *testing.T) {
	cert, _ := rsaCert(t)
	for _, c := range []referentials.Cipher{referentials.AES128, referentials.TripleDES} {
		der, err := iris.Encrypt([]byte("hello"), cert, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := iris.CipherOf(der); got != string(c) {
			t.Fatalf("cipher %s, want %s", got, c)
		}
	}
	if _, err := iris.Encrypt([]byte("x"), cert, "rc2", nil); !errors.Is(err, iris.ErrCipher) {
		t.Fatal(err)
	}
	if _, err := iris.Encrypt([]byte("x"), nil, referentials.AES128, nil); !errors.Is(err, iris.ErrRecipient) {
		t.Fatal(err)
	}
	if err := iris.Build(&bytes.Buffer{}, iris.Mail{From: "a@b", To: "c@d", MessageID: "1", Subject: "s", Description: "d", Cipher: referentials.AES128}); !errors.Is(err, iris.ErrMail) {
		t.Fatal(err)
	}
	if err := iris.Build(&bytes.Buffer{}, iris.Mail{From: "a@b", To: "c@d\r\nBcc: x", MessageID: "1", Subject: "s", Description: "d"}); !errors.Is(err, iris.ErrMail) {
		t.Fatal(err)
	}
}

func TestSCORSubject(t *testing.T) {
	d := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	s, err := iris.SCORSubject{Emitter: "750000001", FileID: "S0A1B2", LotNumber: 12, LotDate: d, Pages: 3}.Format()
	if err != nil || s != "SCOR/00000750000001/S0A1B2/012/260302/00003" {
		t.Fatalf("%q %v", s, err)
	}
	p, err := iris.ParseSCORSubject(s)
	if err != nil || p.Emitter != "00000750000001" || p.FileID != "S0A1B2" || p.LotNumber != 12 || !p.LotDate.Equal(d) || p.Pages != 3 {
		t.Fatalf("%+v %v", p, err)
	}
	for _, bad := range []iris.SCORSubject{{Emitter: "", FileID: "S0A1B2", LotNumber: 1, LotDate: d}, {Emitter: "1", FileID: "s0a1b2", LotNumber: 1, LotDate: d},
		{Emitter: "1", FileID: "S0A1B2", LotNumber: 1000, LotDate: d}, {Emitter: "1", FileID: "S0A1B2", LotNumber: 1}, {Emitter: "1", FileID: "S0A1B2", LotNumber: 1, LotDate: d, Pages: -1}} {
		if _, err := bad.Format(); !errors.Is(err, iris.ErrSubject) {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
	for _, bad := range []string{"IR100500/00000750000001/2026030210040523456/00003", "SCOR/00000750000001/S0A1B2/012/261302/00003",
		"SCOR/00000750000001/S0A1B2/12/260302/00003", "SCOR/00000750000001/S0A1B2/012/260302"} {
		if _, err := iris.ParseSCORSubject(bad); !errors.Is(err, iris.ErrSubject) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	if !iris.IsSCORDescription("iristest/scor") || iris.IsSCORDescription("IRIS/B2/Z") || iris.SCORDescription(true) != "IRISTEST/SCOR" {
		t.Fatal("description")
	}
}
