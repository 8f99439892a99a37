package signing

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ThalesGroup/crypto11"

	"github.com/octgw/oct/internal/testenv"
)

const (
	hsmPIN   = "1234"
	hsmSOPIN = "5678"
)

// hsmKey creates a token labelled token holding a key pair and its
// self-signed certificate, both labelled key, and returns the certificate.
// alg is "p256" or "rsa2048".
func hsmKey(t testing.TB, h *testenv.SoftHSM, token, key, alg string) *x509.Certificate {
	t.Helper()
	h.InitToken(t, token, hsmSOPIN, hsmPIN)
	c, err := crypto11.Configure(&crypto11.Config{Path: h.Module, TokenLabel: token, Pin: hsmPIN})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := []byte(key)
	var s crypto11.Signer
	switch alg {
	case "p256":
		s, err = c.GenerateECDSAKeyPairWithLabel(id, []byte(key), elliptic.P256())
	case "rsa2048":
		s, err = c.GenerateRSAKeyPairWithLabel(id, []byte(key), 2048)
	default:
		t.Fatalf("alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t, s, token+"/"+key)
	if err := c.ImportCertificateWithLabel(id, []byte(key), cert); err != nil {
		t.Fatal(err)
	}
	return cert
}

func hsmMember(h *testenv.SoftHSM, id, token, key string) MemberConfig {
	return MemberConfig{ID: id, Kind: KindPKCS11, Profile: "amo", Module: h.Module, TokenLabel: token, KeyLabel: key}
}

func TestSoftHSMPool(t *testing.T) {
	h := testenv.NewSoftHSM(t)
	certA := hsmKey(t, h, "oct-hsm-a", "sign-ec", "p256")
	certB := hsmKey(t, h, "oct-hsm-b", "sign-rsa", "rsa2048")

	pinFile := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pinFile, []byte(hsmPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := hsmMember(h, "hsm-a", "oct-hsm-a", "sign-ec")
	a.PINFile = pinFile
	b := hsmMember(h, "hsm-b", "oct-hsm-b", "sign-rsa")
	b.PINEnv = "OCT_TEST_HSM_B_PIN"
	t.Setenv("OCT_TEST_HSM_B_PIN", hsmPIN)

	rec := &recorder{}
	p, err := New(context.Background(), Config{Production: true, Members: []MemberConfig{a, b}}, Options{Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	for _, s := range p.Members() {
		if s.State != StateUp {
			t.Fatalf("member %s: %+v", s.ID, s)
		}
	}
	seen := map[string]int{}
	for i := range 20 {
		der, err := p.SignFile(context.Background(), "amo", fmt.Sprintf("lot-%d", i), fileData)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := Verify(der, fileData)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case cert.Equal(certA):
			seen["a"]++
		case cert.Equal(certB):
			seen["b"]++
		default:
			t.Fatal("unknown signer certificate")
		}
	}
	if seen["a"] != 10 || seen["b"] != 10 {
		t.Fatalf("dispatch %v, want 10/10", seen)
	}
	if n := len(rec.of(EventSigned)); n != 20 {
		t.Fatalf("%d audit events, want 20", n)
	}
	p.CheckHealth(context.Background())
	for _, s := range p.Members() {
		if s.State != StateUp || s.LastError != nil {
			t.Fatalf("after health check %s: %+v", s.ID, s)
		}
	}
}

func TestSoftHSMWrongPIN(t *testing.T) {
	h := testenv.NewSoftHSM(t)
	hsmKey(t, h, "oct-hsm-a", "sign-ec", "p256")
	a := hsmMember(h, "hsm-a", "oct-hsm-a", "sign-ec")
	a.PINEnv = "OCT_TEST_HSM_PIN"
	t.Setenv("OCT_TEST_HSM_PIN", "0000")

	rec := &recorder{}
	clock := newFakeClock()
	opens := 0
	p, err := New(context.Background(), Config{Members: []MemberConfig{a}}, Options{
		Observer: rec, Clock: clock,
		Open: func(ctx context.Context, mc MemberConfig) (Member, error) {
			opens++
			return OpenMember(ctx, mc, nil)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	st := p.Members()[0]
	if st.State != StateDisabled || !errors.Is(st.LastError, ErrPINIncorrect) {
		t.Fatalf("member: %+v", st)
	}
	if n := len(rec.of(EventPINIncorrect)); n != 1 {
		t.Fatalf("%d pin_incorrect events", n)
	}
	for range 3 {
		p.CheckHealth(context.Background())
	}
	if opens != 1 {
		t.Fatalf("wrong PIN presented %d times", opens)
	}
	// Fixed PIN + Reopen: back in service.
	t.Setenv("OCT_TEST_HSM_PIN", hsmPIN)
	if err := p.Reopen(context.Background(), "hsm-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SignFile(context.Background(), "amo", "r", fileData); err != nil {
		t.Fatal(err)
	}
}

// TestSoftHSMFailover deletes the key under a running member: its next
// signature fails on the token, the request moves to the other token and
// exactly one CMS comes back.
func TestSoftHSMFailover(t *testing.T) {
	h := testenv.NewSoftHSM(t)
	hsmKey(t, h, "oct-hsm-a", "sign", "p256")
	certB := hsmKey(t, h, "oct-hsm-b", "sign", "p256")
	t.Setenv("OCT_TEST_HSM_PIN", hsmPIN)
	a, b := hsmMember(h, "hsm-a", "oct-hsm-a", "sign"), hsmMember(h, "hsm-b", "oct-hsm-b", "sign")
	a.PINEnv, b.PINEnv = "OCT_TEST_HSM_PIN", "OCT_TEST_HSM_PIN"
	rec := &recorder{}
	p, err := New(context.Background(), Config{Members: []MemberConfig{a, b}}, Options{Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())

	// Delete hsm-a's key pair through a second session on the same token.
	c, err := crypto11.Configure(&crypto11.Config{Path: h.Module, TokenLabel: "oct-hsm-a", Pin: hsmPIN})
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.FindKeyPair(nil, []byte("sign"))
	if err != nil || k == nil {
		t.Fatalf("find key: %v", err)
	}
	if err := k.Delete(); err != nil {
		t.Fatal(err)
	}
	c.Close()

	der, err := p.SignFile(context.Background(), "amo", "lot-1", fileData)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := Verify(der, fileData)
	if err != nil || !cert.Equal(certB) {
		t.Fatalf("verify: %v", err)
	}
	failed, signed := rec.of(EventSignFailed), rec.of(EventSigned)
	if len(failed) != 1 || len(signed) != 1 || failed[0].MemberID != "hsm-a" || signed[0].MemberID != "hsm-b" ||
		failed[0].RequestID != signed[0].RequestID {
		t.Fatalf("failed %+v signed %+v", failed, signed)
	}
	t.Logf("token error on the deleted key: %v", failed[0].Err)
	// The health check cannot find the key again: hsm-a stays out.
	p.CheckHealth(context.Background())
	for _, s := range p.Members() {
		if s.ID == "hsm-a" && s.State == StateUp {
			t.Fatalf("hsm-a up without its key: %+v", s)
		}
	}
	for range 4 {
		if _, err := p.SignFile(context.Background(), "amo", "r", fileData); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkPoolSoftHSM measures signatures through the pool on SoftHSM2
// tokens (one token per member), in parallel.
//
//	OCT_INTEGRATION=1 go test -run '^$' -bench 'PoolSoftHSM' -benchtime 3s ./gateway/signing/
func BenchmarkPoolSoftHSM(b *testing.B) {
	for _, alg := range []string{"p256", "rsa2048"} {
		for _, n := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/members=%d", alg, n), func(b *testing.B) {
				h := testenv.NewSoftHSM(b)
				b.Setenv("OCT_TEST_HSM_PIN", hsmPIN)
				var cfgs []MemberConfig
				for i := range n {
					token := fmt.Sprintf("oct-bench-%d", i)
					hsmKey(b, h, token, "sign", alg)
					mc := hsmMember(h, fmt.Sprintf("hsm-%d", i), token, "sign")
					mc.PINEnv = "OCT_TEST_HSM_PIN"
					mc.MaxConcurrency = 4
					cfgs = append(cfgs, mc)
				}
				benchPool(b, cfgs, nil)
			})
		}
	}
}
