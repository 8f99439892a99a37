package https_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway/deliver"
	dhttps "github.com/octgw/oct/gateway/deliver/https"
	"github.com/octgw/oct/gateway/signing"
	"github.com/octgw/oct/gateway/sim"
	"github.com/octgw/oct/internal/testenv"
	"github.com/octgw/oct/referentials"
)

func sign(t *testing.T, data []byte) []byte {
	tc, c := testenv.ClientCert(t, "signer")
	sw, _ := signing.NewSoftware("t", tc.PrivateKey.(*ecdsa.PrivateKey), c)
	cms, err := signing.SignCMS(context.Background(), sw, c, data, signing.Detached())
	if err != nil {
		t.Fatal(err)
	}
	return cms
}

// TestHTTPSmTLS: POST to the simulated AMC endpoint with a client
// certificate it verifies; status classes; an unknown client certificate
// is refused permanently.
func TestHTTPSmTLS(t *testing.T) {
	good, goodX := testenv.ClientCert(t, "oct-gateway")
	pool := x509.NewCertPool()
	pool.AddCert(goodX)
	s, err := sim.New(sim.Config{KeyBits: 1024, HTTPSClientCAs: pool, Clock: sim.NewFakeClock(time.Now()),
		Sink: sim.SinkFunc(func(context.Context, sim.Return) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	addr, err := s.StartHTTPS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	snd, err := dhttps.New(dhttps.Config{ClientCert: good, RootCAs: s.RootCAs(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(snd.CloseIdleConnections)
	var buf bytes.Buffer
	b2.Generate(&buf, b2.GenOptions{Seed: 5})
	body := buf.Bytes()
	m := deliver.Message{Lot: "L1", Emitter: "750000001", FileID: "F00005", Invoices: 3,
		Dest: deliver.Destination{ID: "amc-sp", Transport: referentials.HTTPS, Address: "https://localhost:" + addr[strings.LastIndexByte(addr, ':')+1:] + "/amc/amc-sp", Cipher: referentials.CipherNone},
		Body: body, Signature: sign(t, body)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := snd.Send(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rc.MessageID, "sim-amc-sp-") || !strings.HasPrefix(rc.Detail, "HTTP 202") {
		t.Fatalf("receipt %+v", rc)
	}
	got := s.Received()
	if len(got) != 1 || got[0].Channel != "https" || got[0].Endpoint != "amc-sp" || !bytes.Equal(got[0].File, body) || !got[0].SignatureOK || !got[0].Valid {
		t.Fatalf("received %+v", got)
	}
	for _, tc := range []struct {
		code int
		temp bool
	}{{503, true}, {429, true}, {408, true}, {403, false}, {422, false}} {
		s.InjectFault("amc-sp", sim.Fault{Stage: "post", Code: tc.code, Message: "injected"})
		_, err := snd.Send(ctx, m)
		var de *deliver.Error
		if !errors.As(err, &de) || de.Code != tc.code || errors.Is(err, deliver.ErrTemporary) != tc.temp || !strings.Contains(de.Reply, "injected") {
			t.Fatalf("%d: %v", tc.code, err)
		}
	}
	other, _ := testenv.ClientCert(t, "intruder")
	bad, _ := dhttps.New(dhttps.Config{ClientCert: other, RootCAs: s.RootCAs()})
	defer bad.CloseIdleConnections()
	// With TLS 1.3 the server checks the client certificate after the
	// client has finished its handshake: the client sees either the alert
	// (permanent, ErrTLS) or a connection cut while writing (temporary).
	// Either way the request is refused and never reaches the endpoint.
	_, err = bad.Send(ctx, m)
	if err == nil || errors.Is(err, deliver.ErrPermanent) && !errors.Is(err, deliver.ErrTLS) {
		t.Fatalf("unknown client cert: %v", err)
	}
	// An endpoint certificate the client does not trust: permanent.
	distrust, _ := dhttps.New(dhttps.Config{ClientCert: good, RootCAs: x509.NewCertPool()})
	if _, err := distrust.Send(ctx, m); !errors.Is(err, deliver.ErrPermanent) || !errors.Is(err, deliver.ErrTLS) {
		t.Fatalf("untrusted server: %v", err)
	}
	if len(s.Received()) != 1 {
		t.Fatal("refused requests reached the endpoint")
	}
}
