package node_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/config"
	"github.com/octgw/oct/gateway/deliver"
	deliversmtp "github.com/octgw/oct/gateway/deliver/smtp"
	"github.com/octgw/oct/gateway/node"
	"github.com/octgw/oct/gateway/signing"
	"github.com/octgw/oct/gateway/sim"
	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/internal/testenv"
	"github.com/octgw/oct/referentials"
)

const caisse = "01422@422.01.rss.fr" // where the generated lots route (demo referential)

// deliveryEnv is a node that signs and sends to an in-process simulated
// caisse over SMTP + S/MIME; returns are dropped (the faults are about
// sending).
type deliveryEnv struct {
	*testNode
	sim   *sim.Sim
	token string
}

func startDelivery(t *testing.T, serverName string) *deliveryEnv {
	t.Helper()
	s, err := sim.New(sim.Config{AnyMailbox: true, KeyBits: 1024, ARLDelay: time.Hour,
		Sink: sim.SinkFunc(func(context.Context, sim.Return) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	addr, err := s.StartSMTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	smtpSender, err := deliversmtp.New(deliversmtp.Config{Relay: addr, From: "oct@oct.test", RootCAs: s.RootCAs(), ServerName: serverName})
	if err != nil {
		t.Fatal(err)
	}
	d, err := deliver.NewDispatcher(deliver.DispatcherConfig{Senders: map[referentials.Transport]deliver.Sender{referentials.SMTP: smtpSender}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile, certFile, err := signing.WriteDevelopmentKey(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.DataDir, cfg.HTTP.Listen, cfg.SFTP.Listen = dir, "127.0.0.1:0", ""
	cfg.Workers.PollEvery = 20 * time.Millisecond
	cfg.Workers.MaxAttempts = 4
	cfg.Refs.SeedDemo = true
	cfg.Signing = signing.Config{Members: []signing.MemberConfig{{ID: "soft", Kind: signing.KindSoftware, Profile: "default", KeyFile: keyFile, CertFile: certFile}}}
	certs := node.CertsFunc(func(_ context.Context, mb string) (*x509.Certificate, error) { return s.Cert(mb), nil })
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.Open(ctx, cfg, node.Options{Exclusive: true, Deliver: d, Certs: certs})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := n.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done; n.Close() })
	tn := &testNode{n, "http://" + ln.Addr().String()}
	return &deliveryEnv{testNode: tn, sim: s, token: tn.tenant(t, "acme")}
}

type lotState struct {
	State    string `json:"state"`
	Attempts []struct {
		Outcome string `json:"outcome"`
		Detail  string `json:"detail"`
	} `json:"attempts"`
}

// pushOneLot pushes a one-lot file and waits until its lot reaches a state
// in want; it returns the lot view.
func (e *deliveryEnv) pushOneLot(t *testing.T, seed int64, want ...string) lotState {
	t.Helper()
	code, b, _ := e.do(t, "POST", "/v1/files", e.token, bytes.NewReader(genOneLot(t, seed)))
	var ack gateway.Ack
	if code != http.StatusCreated || json.Unmarshal(b, &ack) != nil {
		t.Fatalf("push: %d %s", code, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var lv lotState
	err := testenv.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		var f struct {
			LotList []struct{ ID string } `json:"lot_list"`
		}
		if _, b, _ := e.do(t, "GET", "/v1/files/"+ack.ID, e.token, nil); json.Unmarshal(b, &f) != nil || len(f.LotList) != 1 {
			return false, nil
		}
		_, b, _ := e.do(t, "GET", "/v1/lots/"+f.LotList[0].ID, e.token, nil)
		if err := json.Unmarshal(b, &lv); err != nil {
			return false, err
		}
		for _, w := range want {
			if lv.State == w {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("lot never reached %v: %+v", want, lv)
	}
	return lv
}

func TestDeliveryFaultsAgainstTheSimulatedCaisse(t *testing.T) {
	t.Run("451 then success: delivered once", func(t *testing.T) {
		e := startDelivery(t, "localhost")
		e.sim.InjectFault(caisse, sim.Fault{Stage: "data", Code: 451, Message: "try later"})
		lv := e.pushOneLot(t, 41, "sent")
		if len(lv.Attempts) != 2 || lv.Attempts[0].Outcome != "temporary" || lv.Attempts[1].Outcome != "ok" {
			t.Fatalf("attempts %+v", lv.Attempts)
		}
		if n := len(e.sim.Received()); n != 1 {
			t.Fatalf("the caisse received %d messages, want 1", n)
		}
	})
	t.Run("550: anomaly, no retry", func(t *testing.T) {
		e := startDelivery(t, "localhost")
		e.sim.InjectFault(caisse, sim.Fault{Stage: "rcpt", Code: 550, Message: "no such mailbox", Times: 5})
		lv := e.pushOneLot(t, 42, "delivery_failed")
		if len(lv.Attempts) != 1 || lv.Attempts[0].Outcome != "permanent" {
			t.Fatalf("attempts %+v", lv.Attempts)
		}
		as, _ := e.Store.Anomalies(context.Background(), store.AnomalyQuery{Kind: "delivery-failed"})
		if len(as) != 1 {
			t.Fatalf("anomalies %+v", as)
		}
	})
	t.Run("TLS certificate mismatch: refused before AUTH/MAIL, anomaly", func(t *testing.T) {
		e := startDelivery(t, "not-the-caisse.example")
		lv := e.pushOneLot(t, 43, "delivery_failed")
		if len(lv.Attempts) != 1 || lv.Attempts[0].Outcome != "permanent" || len(e.sim.Received()) != 0 {
			t.Fatalf("attempts %+v, received %d", lv.Attempts, len(e.sim.Received()))
		}
	})
}
