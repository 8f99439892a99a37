package sftp_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway/deliver"
	dsftp "github.com/octgw/oct/gateway/deliver/sftp"
	"github.com/octgw/oct/gateway/signing"
	"github.com/octgw/oct/gateway/sim"
	"github.com/octgw/oct/referentials"
)

func sign(t *testing.T, data []byte) []byte {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "s"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	c, _ := x509.ParseCertificate(der)
	sw, _ := signing.NewSoftware("t", key, c)
	cms, err := signing.SignCMS(context.Background(), sw, c, data, signing.Detached())
	if err != nil {
		t.Fatal(err)
	}
	return cms
}

// TestSFTPUpload: upload to a temporary name then rename (the simulator
// takes the file in at the rename, with its signature already in place),
// known_hosts enforced: an unknown or different host key is refused
// permanently before anything is written.
func TestSFTPUpload(t *testing.T) {
	s, err := sim.New(sim.Config{KeyBits: 1024, Clock: sim.NewFakeClock(time.Now()),
		Sink: sim.SinkFunc(func(context.Context, sim.Return) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	addr, line, err := s.StartSFTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(line+"\n"), 0o600)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	snd, err := dsftp.New(dsftp.Config{Signer: signer, KnownHosts: kh, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	b2.Generate(&buf, b2.GenOptions{Seed: 6})
	body := buf.Bytes()
	m := deliver.Message{Lot: "L6", Emitter: "750000001", FileID: "F00006", Invoices: 3,
		Dest: deliver.Destination{ID: "amc-x", Transport: referentials.SFTP, Address: "sftp://amcx@" + addr + "/in", Cipher: referentials.CipherNone},
		Body: body, Signature: sign(t, body)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := snd.Send(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if rc.MessageID != "/in/750000001_F00006_L6.b2" {
		t.Fatalf("receipt %+v", rc)
	}
	got := s.Received()
	if len(got) != 1 || got[0].Channel != "sftp" || got[0].Endpoint != "amcx" || got[0].MessageID != rc.MessageID ||
		!bytes.Equal(got[0].File, body) || !got[0].Signed || !got[0].SignatureOK || !got[0].Valid {
		t.Fatalf("received %+v", got)
	}

	// Upload refused by the server: permanent (permission denied).
	s.InjectFault("amcx", sim.Fault{Stage: "upload"})
	if _, err := snd.Send(ctx, m); !errors.Is(err, deliver.ErrPermanent) {
		t.Fatalf("denied: %v", err)
	}

	// A known_hosts with another key for this address: refused.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	otherSigner, _ := ssh.NewSignerFromKey(other)
	kh2 := filepath.Join(dir, "known_hosts2")
	os.WriteFile(kh2, []byte(knownhosts.Line([]string{knownhosts.Normalize(addr)}, otherSigner.PublicKey())+"\n"), 0o600)
	bad, _ := dsftp.New(dsftp.Config{Signer: signer, KnownHosts: kh2})
	_, err = bad.Send(ctx, m)
	if !errors.Is(err, deliver.ErrPermanent) || !errors.Is(err, deliver.ErrHostKey) {
		t.Fatalf("changed host key: %v", err)
	}
	// An empty known_hosts: unknown host, refused.
	kh3 := filepath.Join(dir, "known_hosts3")
	os.WriteFile(kh3, nil, 0o600)
	unknown, _ := dsftp.New(dsftp.Config{Signer: signer, KnownHosts: kh3})
	if _, err := unknown.Send(ctx, m); !errors.Is(err, deliver.ErrHostKey) {
		t.Fatalf("unknown host: %v", err)
	}
	if n := len(s.Received()); n != 1 {
		t.Fatalf("%d files received", n)
	}
	// Bad addresses are permanent configuration errors.
	for _, a := range []string{"sftp://host/in", "ftp://u@h/x", "sftp://u:pw@h/x"} {
		m2 := m
		m2.Dest.Address = a
		if _, err := snd.Send(ctx, m2); !errors.Is(err, deliver.ErrConfig) {
			t.Errorf("%s: %v", a, err)
		}
	}
	if _, err := dsftp.New(dsftp.Config{Signer: signer}); !errors.Is(err, deliver.ErrConfig) || !strings.Contains(err.Error(), "known_hosts") {
		t.Fatal(err)
	}
}
