package sim_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/octgw/oct/formats/certificate"
	"github.com/octgw/oct/formats/pec"
	"github.com/octgw/oct/formats/scor"
	"github.com/octgw/oct/gateway/deliver"
	"github.com/octgw/oct/gateway/deliver/fhir"
	dhttps "github.com/octgw/oct/gateway/deliver/https"
	"github.com/octgw/oct/gateway/deliver/iris"
	"github.com/octgw/oct/gateway/sim"
	"github.com/octgw/oct/referentials"
)

// TestSCORBadSubject: a part described IRIS/SCOR under a subject the
// caisse cannot read (here a B2 subject) is refused with 554: there is
// nothing to acknowledge; no ARL is scheduled.
func TestSCORBadSubject(t *testing.T) {
	e := newEnv(t, sim.Config{})
	pdf, _ := scor.Generate(scor.GenOptions{Seed: 1})
	var raw bytes.Buffer
	if err := iris.Build(&raw, iris.Mail{From: "oct@oct.test", To: box, MessageID: "x1@oct.test", Date: time.Now(),
		Subject: "IR100500/00000750000001/2026030210040523456/00001", Description: iris.SCORDescription(false),
		FileName: "SCOR_S00001.pdf", Data: pdf, Cipher: referentials.CipherNone}); err != nil {
		t.Fatal(err)
	}
	c, err := gosmtp.DialStartTLS(e.addr, &tls.Config{RootCAs: e.sim.RootCAs(), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("oct@oct.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(box, nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw.Bytes())
	err = w.Close()
	var se *gosmtp.SMTPError
	if !errors.As(err, &se) || se.Code != 554 || !strings.Contains(se.Message, "SCOR") {
		t.Fatalf("want 554, got %v", err)
	}
	if e.clock.Pending() != 0 || e.sim.Stats().SCOR != 0 {
		t.Fatalf("pending %d, %+v", e.clock.Pending(), e.sim.Stats())
	}
}

// TestSSAFeedQuery: the feed's search semantics straight over HTTP: gt
// excludes the instant, ge includes it, _count bounds the page, bad
// parameters get 400 with an OperationOutcome; an injected fault on POST
// is temporary at the sender.
func TestSSAFeedQuery(t *testing.T) {
	e := newHTTPSEnv(t, sim.Config{Seed: 2, SSAReviewDelay: time.Minute, SSADecisionDelay: time.Minute})
	snd, _ := fhir.New(e.cfg)
	defer snd.CloseIdleConnections()
	ctx := context.Background()
	dest := deliver.Destination{ID: "ssa", Transport: referentials.HTTPS, Address: e.ssa}
	for i := 0; i < 3; i++ {
		body := certificate.Generate(certificate.GenOptions{Seed: uint64(40 + i), FHIR: true})
		if _, err := snd.Send(ctx, deliver.Message{Flow: deliver.FlowCertificate, Lot: "c" + itoa(i), Dest: dest, Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(time.Minute) // three under_review at t0+1m
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.cfg.RootCAs, Certificates: []tls.Certificate{e.cfg.ClientCert}}}}
	defer client.CloseIdleConnections()
	get := func(q string) (int, []byte) {
		t.Helper()
		resp, err := client.Get(e.ssa + "/Task?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	count := func(q string) int {
		t.Helper()
		code, b := get(q)
		us, err := certificate.ParseTaskBundle(b)
		if code != 200 || err != nil {
			t.Fatalf("%s: %d %v %s", q, code, err, b)
		}
		return len(us)
	}
	t1 := "2026-03-02T09:01:00Z"
	if n := count("_sort=_lastUpdated"); n != 6 {
		t.Fatalf("all: %d", n)
	}
	if n := count("_lastUpdated=ge" + t1 + "&_sort=_lastUpdated"); n != 3 {
		t.Fatalf("ge: %d", n)
	}
	if n := count("_lastUpdated=gt" + t1); n != 0 {
		t.Fatalf("gt: %d", n)
	}
	if n := count("_count=4"); n != 4 {
		t.Fatalf("_count: %d", n)
	}
	for _, q := range []string{"_lastUpdated=lt" + t1, "_lastUpdated=gtyesterday", "_count=0", "_sort=status"} {
		if code, b := get(q); code != 400 || !strings.Contains(string(b), "OperationOutcome") {
			t.Fatalf("%s: %d %s", q, code, b)
		}
	}
	e.sim.InjectFault("cpam", sim.Fault{Stage: "fhir", Code: 503, Message: "maintenance"})
	body := certificate.Generate(certificate.GenOptions{Seed: 50, FHIR: true})
	if _, err := snd.Send(ctx, deliver.Message{Flow: deliver.FlowCertificate, Lot: "c9", Dest: dest, Body: body}); !errors.Is(err, deliver.ErrTemporary) {
		t.Fatalf("503: %v", err)
	}
}

// TestPECRepost: the same request posted twice gets the same answer, and
// only one case.
func TestPECRepost(t *testing.T) {
	e := newHTTPSEnv(t, sim.Config{Seed: 4})
	snd, _ := dhttps.New(e.cfg)
	defer snd.CloseIdleConnections()
	q := pec.GenMessage(pec.GenOptions{Seed: 8})
	b, _ := pec.Marshal(q)
	m := deliver.Message{Flow: deliver.FlowPEC, Ref: q.Request.PECID, Lot: "p", Body: b,
		Dest: deliver.Destination{ID: "amc-sp", Transport: referentials.HTTPS, Address: e.amc}}
	r1, err := snd.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	m.Resend = true
	r2, err := snd.Send(context.Background(), m)
	if err != nil || !bytes.Equal(r1.Answer, r2.Answer) || len(e.sim.PECCases()) != 1 {
		t.Fatalf("%s / %s %v", r1.Answer, r2.Answer, err)
	}
}
