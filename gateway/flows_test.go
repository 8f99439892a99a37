package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/formats/certificate"
	"github.com/octgw/oct/formats/check"
	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/pec"
	"github.com/octgw/oct/formats/scor"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/internal/testenv"
	"github.com/octgw/oct/routing"
)

// flowRouter routes every flow to a destination named after it, and
// refuses the AMC 99999999 (unknown to the "referential").
type flowRouter struct{}

func (flowRouter) Route(_ context.Context, in RouteInput) (Route, error) {
	switch {
	case in.Flow == store.FlowCertificate:
		return Route{Destination: "ssa:" + in.Insurer, Version: "1", Reason: "test"}, nil
	case in.Flow == store.FlowPEC && in.AMC == "99999999":
		return Route{}, fmt.Errorf("%w: no AMC referential entry for AMC %s", ErrUnroutable, in.AMC)
	case in.Flow == store.FlowPEC:
		return Route{Destination: "amc:OPTIC", Version: "1", Reason: "test"}, nil
	case in.Flow == store.FlowSCOR:
		return Route{Destination: "amo:01422", Version: "1", Reason: "scor with its B2 lot"}, nil
	}
	return Route{Destination: "amo:01422", Version: "1", Reason: "test"}, nil
}

// answeringSender answers like the endpoints do: a Task for a certificate,
// an OCT-PEC answer for a PEC request, nothing for B2 and SCOR.
type answeringSender struct {
	mu    sync.Mutex
	sends map[string]int
	flows map[string]string // lot → flow seen
}

func (s *answeringSender) Send(_ context.Context, d Delivery) (Receipt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sends == nil {
		s.sends, s.flows = map[string]int{}, map[string]string{}
	}
	s.sends[d.Lot.ID]++
	s.flows[d.Lot.ID] = d.Route.Flow
	rc := Receipt{MessageID: "<m-" + d.Lot.ID + ">"}
	switch d.Lot.Flow {
	case store.FlowCertificate:
		// The body is the FHIR Bundle, whatever the vendor sent.
		rep, err := certificate.Validate(bytes.NewReader(d.Body), certificate.Options{})
		if err != nil || !rep.Valid || rep.Encoding != certificate.EncodingFHIR {
			return Receipt{}, fmt.Errorf("bad FHIR body: %v %+v", err, rep)
		}
		rc.Answer, _ = certificate.MarshalTask(certificate.StatusUpdate{TaskID: "T-" + d.Lot.ID, CertificateID: rep.Certificate.ID,
			Status: certificate.StatusReceived, Updated: time.Now().UTC()})
	case store.FlowPEC:
		rep, _ := pec.Validate(bytes.NewReader(d.Body), pec.Options{})
		m := rep.Message
		if m.Kind == pec.KindRequest {
			rc.Answer = pecAnswerJSON(m.Request.PECID, m.Request.AMC, pec.StatusAgreement, "PEC0000000000042", m.Request.Totals.AMCRequestedCents)
		}
	}
	return rc, nil
}

func pecAnswerJSON(id, amc, status, number string, amount int64) []byte {
	a := &pec.Answer{PECID: id, AMC: amc, Answered: time.Now().UTC().Format(time.RFC3339), Status: status}
	switch status {
	case pec.StatusAgreement, pec.StatusPartial:
		a.PECNumber, a.AmountCents, a.ValidUntil = number, amount, time.Now().AddDate(0, 6, 0).Format(time.DateOnly)
	case pec.StatusCancelled:
		a.PECNumber = number
	case pec.StatusRefusal:
		a.ReasonCode = "NODROIT"
	}
	b, err := pec.Marshal(&pec.Message{Version: pec.Version, Kind: pec.KindAnswer, Answer: a})
	if err != nil {
		panic(err)
	}
	return b
}

func waitLot(t *testing.T, g *Gateway, id string, want lifecycle.State) store.Lot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var l store.Lot
	err := testenv.Poll(ctx, 5*time.Millisecond, func() (bool, error) {
		var err error
		l, err = g.Store().Lot(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return err == nil && l.State == want, err
	})
	if err != nil {
		t.Fatalf("lot %s did not reach %s: %v (%+v)", id, want, err, l)
	}
	return l
}

func codesOf(errs []fixed.Error) string {
	var s []string
	for _, e := range errs {
		s = append(s, string(e.Code))
	}
	return strings.Join(s, ",")
}

// TestCertificateFlow: a JSON certificate is validated, converted to FHIR,
// routed to its SSA, signed, sent once; the SSA's Task (received) comes
// back with the send, later statuses through HandleFlowReturn; the lot
// ends settled with the decision, each status in the vendor's feed once.
func TestCertificateFlow(t *testing.T) {
	s := &answeringSender{}
	g := newTestGateway(t, s, flowRouter{})
	ctx := context.Background()
	data := certificate.Generate(certificate.GenOptions{Seed: 3})
	ack, err := g.Intake(ctx, "acme", Source{Channel: "api", Flow: store.FlowCertificate}, bytes.NewReader(data))
	if err != nil || ack.Status != StatusAccepted || ack.Format != store.FlowCertificate || ack.Ref == "" {
		t.Fatalf("intake: %v %+v", err, ack)
	}
	lotID := ack.ID + "-0"
	lot := waitLot(t, g, lotID, lifecycle.LotARLPositive)
	if lot.Flow != store.FlowCertificate || lot.Ref != ack.Ref || lot.Status != string(certificate.StatusReceived) ||
		!strings.HasPrefix(lot.Destination, "ssa:") || s.sends[lotID] != 1 || s.flows[lotID] != store.FlowCertificate {
		t.Fatalf("after send: %+v sends=%d", lot, s.sends[lotID])
	}
	// The SSA's feed: under review, then refused with a reason; then an
	// older Task arrives late and changes nothing.
	task := func(st certificate.Status, reason string, at time.Time) []byte {
		b, err := certificate.MarshalTask(certificate.StatusUpdate{TaskID: "T-" + lotID, CertificateID: lot.Ref, Status: st,
			ReasonCode: reason, Updated: at})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	now := time.Now().UTC()
	review := task(certificate.StatusUnderReview, "", now.Add(time.Second))
	refused := task(certificate.StatusRefused, "INCOH", now.Add(2*time.Second))
	for _, raw := range [][]byte{review, refused, review, task(certificate.StatusReceived, "", now.Add(3*time.Second))} {
		if err := g.HandleFlowReturn(ctx, "ssa:"+strings.TrimPrefix(lot.Destination, "ssa:"), raw); err != nil {
			t.Fatal(err)
		}
	}
	lot, _ = g.Store().Lot(ctx, lotID)
	if lot.State != lifecycle.LotSettled || lot.Status != string(certificate.StatusRefused) {
		t.Fatalf("after the decision: %+v", lot)
	}
	rets, err := g.Store().Returns(ctx, "acme", 0, 100)
	if err != nil || len(rets) != 3 { // received (with the send), under review, refused; the late "received" is the same status of the same task
		t.Fatalf("returns %v %d", err, len(rets))
	}
	var sum SSAStatusSummary
	if err := json.Unmarshal(rets[2].Summary, &sum); err != nil || sum.Status != "refused" || sum.ReasonCode != "INCOH" || rets[2].Lot != lotID {
		t.Fatalf("refusal summary %s %v", rets[2].Summary, err)
	}
	if ex, _ := g.Store().Expectations(ctx, lotID); len(ex) != 1 || ex[0].SatisfiedBy == "" {
		t.Fatalf("ARL expectation not satisfied by the first Task: %+v", ex)
	}
	// A Task about a certificate nobody sent is kept as an orphan.
	orphan := task(certificate.StatusAccepted, "", now)
	orphan = bytes.ReplaceAll(orphan, []byte(lot.Ref), []byte("NOPE-1"))
	if err := g.HandleFlowReturn(ctx, "ssa:SSA01", orphan); err != nil {
		t.Fatal(err)
	}
	if as, _ := g.Store().Anomalies(ctx, store.AnomalyQuery{Kind: "orphan-return"}); len(as) != 1 {
		t.Fatalf("orphan anomalies %+v", as)
	}
}

// TestCertificateBadInput: an invalid FHIR Bundle and a JPEG named .json
// are rejected with their codes, kept, never routed.
func TestCertificateBadInput(t *testing.T) {
	s := &answeringSender{}
	g := newTestGateway(t, s, flowRouter{})
	ctx := context.Background()
	for _, fault := range certificate.Faults {
		if fault == certificate.ErrTooLarge {
			continue
		}
		data := certificate.Generate(certificate.GenOptions{Seed: 4, FHIR: true, Fault: fault})
		ack, err := g.Intake(ctx, "acme", Source{Channel: "sftp", Name: "cert.json"}, bytes.NewReader(data))
		if err != nil || ack.Status != StatusRejected || ack.Format != store.FlowCertificate || !strings.Contains(codesOf(ack.Errors), string(fault)) {
			t.Errorf("fault %s: %v %s %s", fault, err, ack.Status, codesOf(ack.Errors))
		}
	}
	jpeg := append([]byte{0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F'}, bytes.Repeat([]byte{1}, 200)...)
	ack, err := g.Intake(ctx, "acme", Source{Channel: "sftp", Name: "photo.json"}, bytes.NewReader(jpeg))
	if err != nil || ack.Status != StatusRejected || len(ack.Errors) == 0 {
		t.Fatalf("jpeg as a certificate: %v %+v", err, ack)
	}
	lots, _ := g.Store().Lots(ctx, store.LotQuery{Tenant: "acme"})
	if len(lots) != 0 || len(s.sends) != 0 {
		t.Fatalf("rejected certificates made lots %+v / sends %v", lots, s.sends)
	}
}

// TestPECFlowLinksTheInvoice: a PEC request gets its agreement with the
// send; the B2 invoice carrying the granted number links back to it.
func TestPECFlowLinksTheInvoice(t *testing.T) {
	s := &answeringSender{}
	g := newTestGateway(t, s, flowRouter{})
	ctx := context.Background()
	// The B2 invoices first: their 2P complement carries PEC numbers.
	var buf bytes.Buffer
	if err := b2.Generate(&buf, b2.GenOptions{Seed: 11, Lots: 1, Invoices: 3}); err != nil {
		t.Fatal(err)
	}
	b2ack, err := g.Intake(ctx, "acme", Source{Channel: "api"}, &buf)
	if err != nil || b2ack.Status != StatusAccepted {
		t.Fatalf("b2: %v %+v", err, b2ack)
	}
	b2lot := waitLot(t, g, b2ack.ID+"-0", lifecycle.LotSent)
	invs, _ := g.Store().Invoices(ctx, b2lot.ID)
	var number string
	for _, inv := range invs {
		if inv.PEC != "" {
			number = inv.PEC
		}
	}
	if number == "" {
		t.Skip("the generated B2 lot carries no 2P PEC number")
	}
	// The PEC request; the AMC grants exactly the number on the invoice.
	req := pec.Generate(pec.GenOptions{Seed: 5})
	ack, err := g.Intake(ctx, "acme", Source{Channel: "api", Flow: store.FlowPEC}, bytes.NewReader(req))
	if err != nil || ack.Status != StatusAccepted {
		t.Fatalf("pec: %v %+v", err, ack)
	}
	lotID := ack.ID + "-0"
	lot := waitLot(t, g, lotID, lifecycle.LotSettled)
	if lot.Status != pec.StatusAgreement || lot.PEC != "PEC0000000000042" {
		t.Fatalf("request lot %+v", lot)
	}
	// The answer with the invoice's number, as a later status answer would bring it.
	m, _ := pec.Validate(bytes.NewReader(req), pec.Options{})
	raw := pecAnswerJSON(m.Message.Request.PECID, m.Message.Request.AMC, pec.StatusAgreement, number, 100)
	if err := g.HandleFlowReturn(ctx, "amc:OPTIC", raw); err != nil {
		t.Fatal(err)
	}
	lot, _ = g.Store().Lot(ctx, lotID)
	links, err := LinksOf(ctx, g.Store(), lot, nil)
	if err != nil || links == nil || len(links.Invoices) == 0 || links.Invoices[0].Lot != b2lot.ID {
		t.Fatalf("PEC → invoices: %v %+v (lot %+v)", err, links, lot)
	}
	back, err := LinksOf(ctx, g.Store(), b2lot, invs)
	if err != nil || back == nil || len(back.PECRequests) != 1 || back.PECRequests[0].ID != lotID {
		t.Fatalf("invoice → PEC: %v %+v", err, back)
	}
	// An answer (not a vendor's message) is refused at intake; a request
	// for an AMC the referential does not know is unroutable, with an anomaly.
	ans, err := g.Intake(ctx, "acme", Source{Channel: "api", Flow: store.FlowPEC}, bytes.NewReader(raw))
	if err != nil || ans.Status != StatusRejected || codesOf(ans.Errors) != string(ErrPECKind) {
		t.Fatalf("answer from a vendor: %v %+v", err, ans)
	}
	unknown := bytes.Replace(req, []byte(`"amc": "`+m.Message.Request.AMC+`"`), []byte(`"amc": "99999999"`), 1)
	if bytes.Equal(unknown, req) {
		t.Fatal("could not change the AMC of the request")
	}
	ua, err := g.Intake(ctx, "acme", Source{Channel: "api", Flow: store.FlowPEC}, bytes.NewReader(unknown))
	if err != nil || ua.Status != StatusAccepted {
		t.Fatalf("unknown AMC intake: %v %+v", err, ua)
	}
	waitLot(t, g, ua.ID+"-0", lifecycle.LotUnroutable)
	if as, _ := g.Store().Anomalies(ctx, store.AnomalyQuery{Kind: "unroutable", Subject: "lot:" + ua.ID + "-0"}); len(as) != 1 {
		t.Fatalf("unroutable PEC anomaly: %+v", as)
	}
}

// TestSCORFlow: a SCOR PDF named after its B2 lot goes with it; a JPEG
// renamed .pdf and a SCOR for an unknown lot are rejected with clear codes.
func TestSCORFlow(t *testing.T) {
	s := &answeringSender{}
	g := newTestGateway(t, s, flowRouter{})
	ctx := context.Background()
	var buf bytes.Buffer
	if err := b2.Generate(&buf, b2.GenOptions{Seed: 12, Lots: 1, Invoices: 2}); err != nil {
		t.Fatal(err)
	}
	b2ack, err := g.Intake(ctx, "acme", Source{Channel: "api"}, &buf)
	if err != nil || b2ack.Status != StatusAccepted {
		t.Fatal(err, b2ack)
	}
	b2lot := waitLot(t, g, b2ack.ID+"-0", lifecycle.LotSent)
	day := strings.ReplaceAll(b2lot.Date, "-", "")
	name := fmt.Sprintf("SCOR_%s_%03d_%s_ordonnance.pdf", b2lot.Emitter, b2lot.Number, day)
	pdf, err := scor.Generate(scor.GenOptions{Seed: 1, Pages: 2})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := g.Intake(ctx, "acme", Source{Channel: "sftp", Name: name}, bytes.NewReader(pdf))
	if err != nil || ack.Status != StatusAccepted || ack.Format != store.FlowSCOR || ack.Ref != b2lot.ID {
		t.Fatalf("scor: %v %+v", err, ack)
	}
	lot := waitLot(t, g, ack.ID+"-0", lifecycle.LotSent)
	if lot.Emitter != b2lot.Emitter || lot.Number != b2lot.Number || lot.Date != b2lot.Date || lot.Invoices != 2 || s.flows[lot.ID] != store.FlowSCOR {
		t.Fatalf("scor lot %+v", lot)
	}
	if links, _ := LinksOf(ctx, g.Store(), b2lot, nil); links == nil || len(links.SCOR) != 1 {
		t.Fatalf("B2 lot → SCOR: %+v", links)
	}
	jpeg := scor.GenerateJPEG()
	bad, err := g.Intake(ctx, "acme", Source{Channel: "sftp", Name: name}, bytes.NewReader(jpeg))
	if err != nil || bad.Status != StatusRejected || codesOf(bad.Errors) != string(scor.ErrNotPDF) {
		t.Fatalf("jpeg renamed .pdf: %v %+v", err, bad)
	}
	pdf2, err := scor.Generate(scor.GenOptions{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	other, err := g.Intake(ctx, "acme", Source{Channel: "api", Flow: store.FlowSCOR,
		SCOR: SCORKey{Emitter: b2lot.Emitter, Number: 999, Date: b2lot.Date}}, bytes.NewReader(pdf2))
	if err != nil || other.Status != StatusRejected || codesOf(other.Errors) != string(ErrSCORNoLot) {
		t.Fatalf("scor without its lot: %v %+v", err, other)
	}
	pdf3, err := scor.Generate(scor.GenOptions{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	noname, err := g.Intake(ctx, "acme", Source{Channel: "sftp", Name: "scan.pdf"}, bytes.NewReader(pdf3))
	if err != nil || noname.Status != StatusRejected || codesOf(noname.Errors) != string(ErrSCORName) {
		t.Fatalf("scor without a lot name: %v %+v", err, noname)
	}
}

// TestFlowReturnBeforeSend: a status that overtakes the commit of its
// send is refused for a retry, not lost.
func TestFlowReturnBeforeSend(t *testing.T) {
	g := newTestGateway(t, &answeringSender{}, flowRouter{})
	ctx := context.Background()
	now := time.Now().UTC()
	lot := store.Lot{ID: "L1", File: "F1", Tenant: "acme", Flow: store.FlowCertificate, Ref: "C-1",
		Destination: "ssa:SSA01", State: lifecycle.LotCreated, UpdatedAt: now}
	if err := g.Store().Commit(ctx, &store.Change{Lots: []store.Lot{lot}, Transitions: []store.Transition{
		{Kind: lifecycle.Lot, ID: "L1", From: lifecycle.LotCreated, To: lifecycle.LotRouted},
		{Kind: lifecycle.Lot, ID: "L1", From: lifecycle.LotRouted, To: lifecycle.LotSigned},
	}}); err != nil {
		t.Fatal(err)
	}
	raw, _ := certificate.MarshalTask(certificate.StatusUpdate{TaskID: "T1", CertificateID: "C-1", Status: certificate.StatusReceived, Updated: now})
	if err := g.HandleFlowReturn(ctx, "ssa:SSA01", raw); !errors.Is(err, ErrReturnEarly) {
		t.Fatalf("err = %v, want ErrReturnEarly", err)
	}
	if rets, _ := g.Store().Returns(ctx, "acme", 0, 10); len(rets) != 0 {
		t.Fatalf("an early return was recorded: %+v", rets)
	}
}

// rulesSelector is the node's adapter of routing.SelectivityRules.
type rulesSelector struct{ r routing.SelectivityRules }

func (s rulesSelector) SelectCertificate(ctx context.Context, f CertificateFacts, h PatientHistory) (bool, []string, error) {
	sel, err := s.r.Select(ctx, routing.CertificateFacts{ID: f.ID, PatientKey: f.PatientKey, Benefit: f.Benefit,
		IncapacityDays: f.IncapacityDays, Issued: f.Issued}, h)
	return sel.Flagged, sel.Reasons, err
}

// TestCertificateSelectivity: a long incapacity is flagged at intake, and
// the second certificate of the same patient is flagged as a repeat; the
// reasons are in the lot's timeline, never the patient.
func TestCertificateSelectivity(t *testing.T) {
	g := newTestGateway(t, &answeringSender{}, flowRouter{})
	g.selector = rulesSelector{routing.SelectivityRules{LongIncapacityDays: 30, RepeatCount: 1, RepeatWindow: 365 * 24 * time.Hour}}
	ctx := context.Background()
	first := certificate.GenCertificate(certificate.GenOptions{Seed: 21, Benefit: certificate.BenefitSickness, IncapacityDays: 45})
	second := *first
	second.ID, second.Incapacity = first.ID+"b", &certificate.Period{From: first.Incapacity.From, To: first.Incapacity.From, Kind: certificate.KindInitial}
	var lots []string
	for _, c := range []*certificate.Certificate{first, &second} {
		data, err := certificate.MarshalJSON(c)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := g.Intake(ctx, "acme", Source{Channel: "api", Flow: store.FlowCertificate}, bytes.NewReader(data))
		if err != nil || ack.Status != StatusAccepted {
			t.Fatalf("intake: %v %+v", err, ack)
		}
		lots = append(lots, ack.ID+"-0")
	}
	reasonOf := func(lot string) string {
		evs, err := g.Store().Events(ctx, "lot:"+lot)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Type == "selectivity" {
				return e.Reason
			}
		}
		return ""
	}
	if r := reasonOf(lots[0]); !strings.Contains(r, "long-incapacity") || strings.Contains(r, "repeat") {
		t.Errorf("first certificate: %q", r)
	}
	if r := reasonOf(lots[1]); !strings.Contains(r, "repeat") || strings.Contains(r, "long-incapacity") {
		t.Errorf("second certificate: %q", r)
	}
	for _, l := range lots {
		if r := reasonOf(l); strings.Contains(r, first.Patient.NIR) || strings.Contains(r, first.Patient.Family) {
			t.Errorf("personal data in the selectivity reason %q", r)
		}
	}
}

// pecSender answers like an AMC whose decision takes time: a request is
// pending, a status query gets the agreement, a cancel its acknowledgement.
type pecSender struct{ answeringSender }

func (s *pecSender) Send(ctx context.Context, d Delivery) (Receipt, error) {
	if d.Lot.Flow != store.FlowPEC {
		return s.answeringSender.Send(ctx, d)
	}
	rep, _ := pec.Validate(bytes.NewReader(d.Body), pec.Options{})
	m := rep.Message
	rc := Receipt{MessageID: "<m-" + d.Lot.ID + ">"}
	switch m.Kind {
	case pec.KindRequest:
		rc.Answer = pecAnswerJSON(m.Request.PECID, m.Request.AMC, pec.StatusPending, "", 0)
	case pec.KindStatus:
		rc.Answer = pecAnswerJSON(m.Status.PECID, m.Status.AMC, pec.StatusAgreement, "PEC0000000000099", 12000)
	case pec.KindCancel:
		rc.Answer = pecAnswerJSON(m.Cancel.PECID, m.Cancel.AMC, pec.StatusCancelled, m.Cancel.PECNumber, 0)
	}
	return rc, nil
}

// TestPECPendingStatusAndCancel: a pending answer leaves the request
// acknowledged but open; the vendor's status query brings the agreement
// (the request settles with its PEC number); the vendor's cancel is
// acknowledged and the request shows it. Each message is its own lot,
// settled by its own answer.
func TestPECPendingStatusAndCancel(t *testing.T) {
	g := newTestGateway(t, &pecSender{}, flowRouter{})
	ctx := context.Background()
	m := pec.GenMessage(pec.GenOptions{Seed: 31})
	id, amc := m.Request.PECID, m.Request.AMC
	push := func(msg *pec.Message) string {
		t.Helper()
		b, err := pec.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := g.Intake(ctx, "acme", Source{Channel: "api", Flow: store.FlowPEC}, bytes.NewReader(b))
		if err != nil || ack.Status != StatusAccepted || ack.Ref != id {
			t.Fatalf("intake %s: %v %+v", msg.Kind, err, ack)
		}
		return ack.ID + "-0"
	}
	reqLot := push(m)
	req := waitLot(t, g, reqLot, lifecycle.LotARLPositive)
	if req.Status != pec.StatusPending || req.PEC != "" {
		t.Fatalf("pending request %+v", req)
	}
	stLot := push(&pec.Message{Version: pec.Version, Kind: pec.KindStatus, Status: &pec.Status{PECID: id, AMC: amc}})
	if l := waitLot(t, g, stLot, lifecycle.LotSettled); l.Status != pec.StatusAgreement {
		t.Fatalf("status lot %+v", l)
	}
	req = waitLot(t, g, reqLot, lifecycle.LotSettled)
	if req.Status != pec.StatusAgreement || req.PEC != "PEC0000000000099" {
		t.Fatalf("request after the status query %+v", req)
	}
	cLot := push(&pec.Message{Version: pec.Version, Kind: pec.KindCancel,
		Cancel: &pec.Cancel{PECID: id, AMC: amc, PECNumber: req.PEC, Reason: "PATIENT A RENONCE"}})
	if l := waitLot(t, g, cLot, lifecycle.LotSettled); l.Status != pec.StatusCancelled {
		t.Fatalf("cancel lot %+v", l)
	}
	req, _ = g.Store().Lot(ctx, reqLot)
	if req.Status != pec.StatusCancelled {
		t.Fatalf("request after the cancel %+v", req)
	}
	rets, _ := g.Store().Returns(ctx, "acme", 0, 100)
	if len(rets) != 3 {
		t.Fatalf("returns %d, want 3 answers", len(rets))
	}
}

// TestFlowNamesAreValidateFormats: intake detection and `oct validate`
// share one rule and one set of names.
func TestFlowNamesAreValidateFormats(t *testing.T) {
	if check.FormatCertificate != store.FlowCertificate || check.FormatPEC != store.FlowPEC || check.FormatSCOR != store.FlowSCOR {
		t.Fatal("flow names and validate formats differ")
	}
}
