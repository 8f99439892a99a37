package https_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/octgw/oct/formats/pec"
	"github.com/octgw/oct/gateway/deliver"
	dhttps "github.com/octgw/oct/gateway/deliver/https"
	"github.com/octgw/oct/gateway/sim"
	"github.com/octgw/oct/internal/testenv"
	"github.com/octgw/oct/referentials"
)

// TestPECThroughSim: a PEC request, a status and a cancel to the simulated
// AMC: 200 with an OCT-PEC answer carried in Receipt.Answer, the signature
// verified by the AMC; an invalid message is a permanent error with the
// findings in the reply.
func TestPECThroughSim(t *testing.T) {
	good, goodX := testenv.ClientCert(t, "oct-gateway")
	pool := x509.NewCertPool()
	pool.AddCert(goodX)
	s, err := sim.New(sim.Config{KeyBits: 1024, HTTPSClientCAs: pool, Clock: sim.NewFakeClock(time.Now()), PECAgreementRate: 1,
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dest := deliver.Destination{ID: "amc-sp", Transport: referentials.HTTPS, Address: "https://localhost:" + addr[strings.LastIndexByte(addr, ':')+1:] + "/amc/amc-sp/"}
	req := pec.GenMessage(pec.GenOptions{Seed: 4})
	body, _ := pec.Marshal(req)
	m := deliver.Message{Flow: deliver.FlowPEC, Ref: req.Request.PECID, Lot: "P1", Dest: dest, Body: body, Signature: sign(t, body)}
	rc, err := snd.Send(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	ans := answer(t, rc.Answer)
	if ans.Status != pec.StatusAgreement || ans.AmountCents != req.Request.Totals.AMCRequestedCents || !pec.PECNumberValid(ans.PECNumber) ||
		!strings.HasPrefix(rc.MessageID, "sim-pec-amc-sp-") || !strings.Contains(rc.Detail, "agreement") {
		t.Fatalf("%+v %+v", rc, ans)
	}
	got := s.Received()
	if len(got) != 1 || got[0].Flow != "pec" || !got[0].SignatureOK || got[0].Ref != req.Request.PECID {
		t.Fatalf("%+v", got)
	}
	st, _ := pec.Marshal(&pec.Message{Version: pec.Version, Kind: pec.KindStatus, Status: &pec.Status{PECID: req.Request.PECID, AMC: req.Request.AMC}})
	m2 := m
	m2.Lot, m2.Body, m2.Signature = "P2", st, nil
	rc, err = snd.Send(ctx, m2)
	if err != nil || answer(t, rc.Answer).Status != pec.StatusAgreement {
		t.Fatalf("status: %v %s", err, rc.Answer)
	}
	cn, _ := pec.Marshal(&pec.Message{Version: pec.Version, Kind: pec.KindCancel, Cancel: &pec.Cancel{PECID: req.Request.PECID, AMC: req.Request.AMC, PECNumber: ans.PECNumber, Reason: "PATIENT A RENONCE"}})
	m2.Lot, m2.Body = "P3", cn
	rc, err = snd.Send(ctx, m2)
	if err != nil || answer(t, rc.Answer).Status != pec.StatusCancelled {
		t.Fatalf("cancel: %v %s", err, rc.Answer)
	}
	// Bad input: an invalid request is refused for good, with its findings.
	m2.Lot, m2.Body = "P4", pec.Generate(pec.GenOptions{Seed: 4, Fault: pec.ErrTotals})
	_, err = snd.Send(ctx, m2)
	var de *deliver.Error
	if !errors.As(err, &de) || !errors.Is(err, deliver.ErrPermanent) || de.Code != 400 || !strings.Contains(de.Reply, "totals") {
		t.Fatalf("invalid: %v", err)
	}
	// An injected 503 is temporary.
	s.InjectFault("amc-sp", sim.Fault{Stage: "pec", Code: 503, Message: "busy"})
	if _, err := snd.Send(ctx, m); !errors.Is(err, deliver.ErrTemporary) {
		t.Fatalf("503: %v", err)
	}
}

func answer(t *testing.T, b []byte) *pec.Answer {
	t.Helper()
	rep, err := pec.Validate(bytes.NewReader(b), pec.Options{})
	if err != nil || !rep.Valid || rep.Kind != pec.KindAnswer {
		t.Fatalf("answer %s: %v %+v", b, err, rep)
	}
	return rep.Message.Answer
}

// TestPECBadAnswer: an endpoint that answers 200 with something that is
// not an OCT-PEC answer (or for another pec_id) is a permanent error; the
// wrong flow is refused before any request.
func TestPECBadAnswer(t *testing.T) {
	var body []byte
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/x/pec" || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Idempotency-Key") != "P1" {
			http.Error(w, "bad request shape", 400)
			return
		}
		w.Write(body)
	}))
	srv.TLS = nil
	srv.StartTLS()
	defer srv.Close()
	good, _ := testenv.ClientCert(t, "oct")
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	snd, _ := dhttps.New(dhttps.Config{ClientCert: good, RootCAs: pool})
	defer snd.CloseIdleConnections()
	req := pec.GenMessage(pec.GenOptions{Seed: 1})
	b, _ := pec.Marshal(req)
	m := deliver.Message{Flow: deliver.FlowPEC, Ref: req.Request.PECID, Lot: "P1", Body: b,
		Dest: deliver.Destination{ID: "x", Transport: referentials.HTTPS, Address: srv.URL + "/x"}}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"not json", []byte("OK")},
		{"a request", b},
		{"other pec_id", pec.Generate(pec.GenOptions{Seed: 99, Kind: pec.KindAnswer})},
	} {
		body = tc.body
		if _, err := snd.Send(ctx, m); !errors.Is(err, deliver.ErrPermanent) {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	a := pec.GenMessage(pec.GenOptions{Seed: 1, Kind: pec.KindAnswer, Status: pec.StatusPending})
	body, _ = pec.Marshal(a)
	rc, err := snd.Send(ctx, m)
	if err != nil || !bytes.Equal(rc.Answer, body) {
		t.Fatalf("pending: %v", err)
	}
	m.Flow = "certificate"
	if _, err := snd.Send(ctx, m); !errors.Is(err, deliver.ErrConfig) {
		t.Fatalf("wrong flow: %v", err)
	}
}
