package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/formats/certificate"
	"github.com/octgw/oct/formats/pec"
	"github.com/octgw/oct/formats/scor"
	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/internal/testenv"
	"github.com/octgw/oct/referentials"
)

// TestServeFlowsThroughSim runs the three flows beside B2 end to end with
// the real binaries: `oct serve` ↔ `oct sim` (caisse SMTP, AMC HTTPS, SSA
// FHIR) ↔ Dovecot (the OCT's return mailbox). A certificate goes to its
// SSA as FHIR and ends accepted after review (statuses read from the SSA's
// Task feed); a PEC request gets its agreement and PEC number; a SCOR PDF
// goes with its B2 lot to the caisse and gets its own ARL. Bad input per
// flow: an invalid FHIR certificate, a JPEG renamed .pdf and a PEC for an
// AMC the referential does not know — each refused clearly, nothing sent.
func TestServeFlowsThroughSim(t *testing.T) {
	testenv.Integration(t)
	bin := testenv.GoBuild(t, "github.com/octgw/oct/cmd/oct")
	dir := t.TempDir()
	dc, pwFile := startMailbox(t, dir)
	simOut := filepath.Join(dir, "sim")
	smtpPort, httpsPort, ssaPort := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	startSim(t, bin, simOut, smtpPort, testenv.TCPReady(fmt.Sprintf("127.0.0.1:%d", ssaPort)), "--sftp", "",
		"--https", fmt.Sprintf("127.0.0.1:%d", httpsPort), "--ssa", fmt.Sprintf("127.0.0.1:%d", ssaPort),
		"--imap", dc.Addr, "--imap-user", dc.User, "--imap-password-file", pwFile,
		"--arl-delay", "100ms", "--rsp-delay", "200ms", "--negative-rate", "0", "--reject-rate", "0",
		"--pec-agreement-rate", "1", "--ssa-review-delay", "100ms", "--ssa-decision-delay", "200ms",
		"--ssa-refuse-rate", "0", "--ssa-arbiter-rate", "0")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// The demo referential, its SSA and PEC endpoints pointing at the sim.
	refDir := filepath.Join(dir, "ref")
	if err := os.MkdirAll(refDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var refFiles []string
	ref := referentials.DemoFeedAt(fmt.Sprintf("https://127.0.0.1:%d/ssa/SSA01", ssaPort),
		fmt.Sprintf("https://127.0.0.1:%d/amc/SANTEPHARM", httpsPort))
	for _, f := range ref.Files {
		p := filepath.Join(refDir, f.Name)
		if err := os.WriteFile(p, f.Data, 0o600); err != nil {
			t.Fatal(err)
		}
		refFiles = append(refFiles, p)
	}

	keyFile, certFile := writeSigningKey(t, dir)
	data := filepath.Join(dir, "data")
	port := testenv.FreePort(t)
	conf := fmt.Sprintf(`data_dir: %s
http:
  listen: 127.0.0.1:%d
sftp:
  listen: ""
workers:
  poll_every: 20ms
signing:
  members:
    - {id: test-soft, kind: software, profile: default, key_file: %[3]s, cert_file: %[4]s}
delivery:
  smtp: {relay: "127.0.0.1:%[5]d", from: oct@oct.test, root_ca_file: %[6]s}
  https: {cert_file: %[4]s, key_file: %[3]s, root_ca_file: %[6]s}
certificates:
  dir: %[7]s
returns:
  imap: {addr: %[8]s, tls: none, username: %[9]s, password_file: %[10]s, interval: 200ms}
flows:
  ssa_poll_every: 100ms
  selectivity: {long_incapacity_days: 30}
`, data, port, keyFile, certFile, smtpPort, filepath.Join(simOut, "sim-root-ca.pem"), filepath.Join(simOut, "certs"),
		dc.Addr, dc.User, pwFile)
	confFile := filepath.Join(dir, "oct.yaml")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := execOutput(bin, append([]string{"referential", "import", "--config", confFile}, refFiles...)...); err != nil {
		t.Fatalf("referential import: %v %s", err, out)
	}
	token := addTenantConf(t, bin, confFile, "acme")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	testenv.Start(t, testenv.Spec{Name: "oct serve", Path: bin, Args: []string{"serve", "--config", confFile}, Ready: readyz(base)})

	post := func(path string, q url.Values, body []byte) gateway.Ack {
		t.Helper()
		return postAck(t, ctx, base+path+"?"+q.Encode(), token, body)
	}
	type lotView struct {
		ID, State, Flow, Ref, Status, PEC, Destination string
		Attempts                                       []struct{ Outcome string } `json:"attempts"`
		History                                        []struct{ Type, Reason string }
	}
	lotOf := func(fileID string) lotView {
		var f struct {
			LotList []lotView `json:"lot_list"`
		}
		var l lotView
		if getJSON(ctx, base+"/v1/files/"+fileID, token, &f) == 200 && len(f.LotList) == 1 {
			getJSON(ctx, base+"/v1/lots/"+f.LotList[0].ID, token, &l)
		}
		return l
	}
	waitLot := func(what, fileID string, ok func(lotView) bool) lotView {
		t.Helper()
		var l lotView
		if err := testenv.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
			l = lotOf(fileID)
			return ok(l), nil
		}); err != nil {
			t.Fatalf("%s: %v (lot %+v)", what, err, l)
		}
		return l
	}

	// A B2 lot first, then its SCOR attachment.
	var buf bytes.Buffer
	if err := b2.Generate(&buf, b2.GenOptions{Seed: 42, Lots: 1, Invoices: 5}); err != nil {
		t.Fatal(err)
	}
	b2ack := post("/v1/files", nil, buf.Bytes())
	b2lot := waitLot("B2 lot sent", b2ack.ID, func(l lotView) bool {
		return l.ID != "" && l.State != "created" && l.State != "routed" && l.State != "signed"
	})
	var full struct {
		Emitter string `json:"emitter"`
		Number  int    `json:"number"`
		Date    string `json:"date"`
	}
	getJSON(ctx, base+"/v1/lots/"+b2lot.ID, token, &full)
	pdf, err := scor.Generate(scor.GenOptions{Seed: 7, Pages: 2})
	if err != nil {
		t.Fatal(err)
	}
	scorName := fmt.Sprintf("SCOR_%s_%03d_%s_ordonnance.pdf", full.Emitter, full.Number, strings.ReplaceAll(full.Date, "-", ""))
	scorAck := post("/v1/scor", url.Values{"name": {scorName}}, pdf)
	if scorAck.Status != "accepted" || scorAck.Ref != b2lot.ID {
		t.Fatalf("SCOR ack %+v", scorAck)
	}

	// A certificate (long incapacity: flagged for medical control) to SSA01.
	c := certificate.GenCertificate(certificate.GenOptions{Seed: 8, Benefit: certificate.BenefitSickness, IncapacityDays: 40})
	c.Insurer = "SSA01"
	certJSON, err := certificate.MarshalJSON(c)
	if err != nil {
		t.Fatal(err)
	}
	certAck := post("/v1/certificates", nil, certJSON)

	// A PEC request for an AMC of the optics convention over HTTPS.
	m := pec.GenMessage(pec.GenOptions{Seed: 9})
	m.Request.AMC = "00420000"
	pecJSON, err := pec.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	pecAck := post("/v1/pec", nil, pecJSON)

	// Bad input, one per flow.
	badCert := post("/v1/certificates", nil, certificate.Generate(certificate.GenOptions{Seed: 10, FHIR: true, Fault: certificate.ErrDateOrder}))
	if badCert.Status != "rejected" || len(badCert.Errors) == 0 || !strings.HasPrefix(badCert.Errors[0].Field, "Bundle.") {
		t.Errorf("invalid FHIR certificate: %+v", badCert)
	}
	badScor := post("/v1/scor", url.Values{"name": {strings.Replace(scorName, "ordonnance", "photo", 1)}}, scor.GenerateJPEG())
	if badScor.Status != "rejected" || len(badScor.Errors) != 1 || badScor.Errors[0].Code != scor.ErrNotPDF {
		t.Errorf("JPEG renamed .pdf: %+v", badScor)
	}
	m.Request.AMC, m.Request.PECID = "99999999", m.Request.PECID+"x"
	unknownJSON, _ := pec.Marshal(m)
	unknownAck := post("/v1/pec", nil, unknownJSON)

	cert := waitLot("certificate decided", certAck.ID, func(l lotView) bool { return l.State == "settled" })
	if cert.Flow != "certificate" || cert.Ref != c.ID || cert.Status != "accepted" || cert.Destination != "ssa:SSA01" || len(cert.Attempts) != 1 {
		t.Errorf("certificate lot %+v", cert)
	}
	flagged := false
	for _, h := range cert.History {
		if h.Type == "selectivity" && strings.Contains(h.Reason, "long-incapacity") {
			flagged = true
		}
	}
	if !flagged {
		t.Errorf("the 40-day incapacity was not flagged: %+v", cert.History)
	}
	p := waitLot("PEC answered", pecAck.ID, func(l lotView) bool { return l.State == "settled" })
	if p.Flow != "pec" || p.Status != "agreement" || len(p.PEC) != 16 || p.Destination != "amc:SANTEPHARM" {
		t.Errorf("PEC lot %+v", p)
	}
	sc := waitLot("SCOR acknowledged", scorAck.ID, func(l lotView) bool { return l.State == "settled" })
	if sc.Flow != "scor" || sc.Ref != b2lot.ID || len(sc.Attempts) != 1 {
		t.Errorf("SCOR lot %+v", sc)
	}
	waitLot("B2 lot settled", b2ack.ID, func(l lotView) bool { return l.State == "settled" })
	un := waitLot("unknown AMC", unknownAck.ID, func(l lotView) bool { return l.State == "unroutable" })
	if len(un.Attempts) != 0 {
		t.Errorf("a PEC for an unknown AMC was sent: %+v", un)
	}

	var feed struct {
		Returns []struct {
			Kind string `json:"kind"`
			Lot  string `json:"lot"`
		} `json:"returns"`
	}
	getJSON(ctx, base+"/v1/returns?limit=1000", token, &feed)
	kinds := map[string]int{}
	for _, r := range feed.Returns {
		kinds[r.Kind]++
	}
	if kinds["ssa-status"] < 3 || kinds["pec-answer"] != 1 || kinds["arl"] != 2 || kinds["rsp"] != 1 {
		t.Errorf("returns feed %v", kinds)
	}
}
