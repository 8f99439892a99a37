package fhir_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/octgw/oct/formats/certificate"
	"github.com/octgw/oct/gateway/deliver"
	"github.com/octgw/oct/gateway/deliver/fhir"
	dhttps "github.com/octgw/oct/gateway/deliver/https"
	"github.com/octgw/oct/internal/testenv"
	"github.com/octgw/oct/referentials"
)

// mtlsServer starts an httptest TLS server that requires a client
// certificate signed by (equal to) client, and returns the config a sender
// needs to reach it.
func mtlsServer(t *testing.T, h http.Handler) (*httptest.Server, dhttps.Config) {
	t.Helper()
	cc, cx := testenv.ClientCert(t, "oct-gateway")
	pool := x509.NewCertPool()
	pool.AddCert(cx)
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return srv, dhttps.Config{ClientCert: cc, RootCAs: roots, Timeout: 10 * time.Second}
}

func task(t *testing.T, id, cert string, st certificate.Status, at time.Time) []byte {
	t.Helper()
	u := certificate.StatusUpdate{TaskID: id, CertificateID: cert, Status: st, Updated: at}
	if st.NeedsReason() {
		u.ReasonCode = "RC01"
	}
	b, err := certificate.MarshalTask(u)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSender: the request shape (path, media type, signature header,
// idempotency key), 201 + Task → receipt with the Task as Answer;
// OperationOutcome → permanent with the issues in the reply; 5xx and 429
// temporary; a 201 that is not a Task, or a Task for another
// certificate, permanent; the wrong flow and an untrusted server refused.
func TestSender(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var mode string
	srv, cfg := mtlsServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sig, err := base64.StdEncoding.DecodeString(r.Header.Get("X-OCT-Signature"))
		if r.URL.Path != "/ssa/cpam/Bundle" || r.Header.Get("Content-Type") != fhir.ContentType || err != nil || string(sig) != "CMS" ||
			r.Header.Get("Idempotency-Key") != "C1" || r.Header.Get("X-OCT-Certificate-Id") != "CERT-1" || string(body) != `{"resourceType":"Bundle"}` {
			http.Error(w, "bad request shape", 418)
			return
		}
		w.Header().Set("Content-Type", fhir.ContentType)
		switch mode {
		case "ok":
			w.WriteHeader(201)
			w.Write(task(t, "T-1", "CERT-1", certificate.StatusReceived, at))
		case "outcome":
			w.WriteHeader(400)
			io.WriteString(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","details":{"coding":[{"code":"icd10"}]},"diagnostics":"not an ICD-10 code","expression":["Bundle.entry[3].resource.code"]},{"severity":"error","code":"required","expression":["Bundle.entry[1].resource.birthDate"]}]}`)
		case "503":
			w.WriteHeader(503)
		case "429":
			w.WriteHeader(429)
		case "not-task":
			w.WriteHeader(201)
			io.WriteString(w, `{"resourceType":"Bundle"}`)
		case "other-cert":
			w.WriteHeader(201)
			w.Write(task(t, "T-2", "CERT-2", certificate.StatusReceived, at))
		}
	}))
	snd, err := fhir.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer snd.CloseIdleConnections()
	m := deliver.Message{Flow: deliver.FlowCertificate, Ref: "CERT-1", Lot: "C1", Body: []byte(`{"resourceType":"Bundle"}`), Signature: []byte("CMS"),
		Dest: deliver.Destination{ID: "ssa-cpam", Transport: referentials.HTTPS, Address: srv.URL + "/ssa/cpam"}}
	ctx := context.Background()
	mode = "ok"
	rc, err := snd.Send(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := certificate.ParseTask(rc.Answer); err != nil || rc.MessageID != "T-1" || u.Status != certificate.StatusReceived || !strings.HasPrefix(rc.Detail, "HTTP 201") {
		t.Fatalf("%+v %v", rc, err)
	}
	mode = "outcome"
	_, err = snd.Send(ctx, m)
	var de *deliver.Error
	if !errors.As(err, &de) || !errors.Is(err, deliver.ErrPermanent) || de.Code != 400 ||
		!strings.Contains(de.Reply, "icd10 at Bundle.entry[3].resource.code: not an ICD-10 code") || !strings.Contains(de.Reply, "required at Bundle.entry[1].resource.birthDate") {
		t.Fatalf("outcome: %v", err)
	}
	for _, md := range []string{"503", "429"} {
		mode = md
		if _, err := snd.Send(ctx, m); !errors.Is(err, deliver.ErrTemporary) {
			t.Fatalf("%s: %v", md, err)
		}
	}
	for _, md := range []string{"not-task", "other-cert"} {
		mode = md
		if _, err := snd.Send(ctx, m); !errors.Is(err, deliver.ErrPermanent) {
			t.Fatalf("%s: %v", md, err)
		}
	}
	bad := m
	bad.Flow = deliver.FlowPEC
	if _, err := snd.Send(ctx, bad); !errors.Is(err, deliver.ErrConfig) {
		t.Fatalf("flow: %v", err)
	}
	bad = m
	bad.Dest.Address = "http://" + strings.TrimPrefix(srv.URL, "https://")
	if _, err := snd.Send(ctx, bad); !errors.Is(err, deliver.ErrConfig) {
		t.Fatalf("http: %v", err)
	}
	cfg.RootCAs = x509.NewCertPool()
	distrust, _ := fhir.New(cfg)
	mode = "ok"
	if _, err := distrust.Send(ctx, m); !errors.Is(err, deliver.ErrTLS) || !errors.Is(err, deliver.ErrPermanent) {
		t.Fatalf("untrusted: %v", err)
	}
	// ByFlow hands certificates to the FHIR sender, the rest to the default.
	var other int
	bf := deliver.ByFlow{Default: deliver.SenderFunc(func(context.Context, deliver.Message) (deliver.Receipt, error) {
		other++
		return deliver.Receipt{MessageID: "b2"}, nil
	}), Flows: map[string]deliver.Sender{deliver.FlowCertificate: snd}}
	if rc, err := bf.Send(ctx, m); err != nil || rc.MessageID != "T-1" || other != 0 {
		t.Fatalf("ByFlow certificate: %+v %v", rc, err)
	}
	if rc, _ := bf.Send(ctx, deliver.Message{Lot: "L"}); rc.MessageID != "b2" || other != 1 {
		t.Fatal("ByFlow B2")
	}
}

func TestOutcomeText(t *testing.T) {
	if fhir.OutcomeText([]byte(`{"resourceType":"Task"}`)) != "" || fhir.OutcomeText([]byte("garbage")) != "" {
		t.Fatal("not an OperationOutcome")
	}
	s := fhir.OutcomeText([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"a\nb"}]}`))
	if s != "invalid: a b" {
		t.Fatalf("%q", s)
	}
}
