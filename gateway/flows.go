package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/octgw/oct/formats/certificate"
	"github.com/octgw/oct/formats/check"
	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/pec"
	"github.com/octgw/oct/formats/scor"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// The flows beside B2 (docs/flows.md): medical certificates to a
// social-security administration (SSA), PEC coverage requests to an AMC and
// SCOR scanned attachments that go with a B2 lot. Each message is a file of
// one lot: the same intake entry, the same lifecycle, signing, delivery,
// chase, anomalies and console as B2 lots; Lot.Flow says which it is and
// Lot.Ref carries its business reference.

// Flow-specific ack error codes (beside the formats' own codes).
const (
	ErrSCORName    fixed.Code = "scor-name"    // a SCOR file whose name does not say which B2 lot it goes with
	ErrSCORNoLot   fixed.Code = "scor-no-lot"  // the B2 lot it names is not known for this tenant
	ErrPECKind     fixed.Code = "pec-kind"     // an answer sent by a vendor: only request, status and cancel are taken
	ErrFlowUnknown fixed.Code = "flow-unknown" // an explicit flow OCT does not take
)

// Size limits per flow (the node's file limit applies too, the smaller wins).
const (
	maxCertificateBytes = certificate.DefaultMaxBytes
	maxPECBytes         = 256 << 10
	maxSCORBytes        = scor.DefaultMaxBytes
	// maxSCORInFlight bounds the SCOR files read into memory at once on a
	// node (the others wait, bounded by their context).
	maxSCORInFlight = 8
)

// CertificateSelector flags certificates for medical control (the node
// adapts routing.SelectivityRules to it).
type CertificateSelector interface {
	SelectCertificate(ctx context.Context, f CertificateFacts, h PatientHistory) (flagged bool, reasons []string, err error)
}

// CertificateFacts are what selectivity may look at: no personal data, the
// patient only as a keyed hash.
type CertificateFacts struct {
	ID             string
	PatientKey     string
	Benefit        string
	IncapacityDays int
	Issued         time.Time
}

// PatientHistory counts a patient's earlier certificates.
type PatientHistory interface {
	CountSince(ctx context.Context, patientKey string, since time.Time) (int, error)
}

// scorName is how a SCOR attachment says which B2 lot it goes with:
// SCOR_<émetteur>_<lot number>_<lot date YYYYMMDD>[_anything].pdf (the API
// may pass the same three values as query parameters instead).
var scorName = regexp.MustCompile(`(?i)^SCOR_([0-9A-Z]{1,14})_([0-9]{1,3})_([0-9]{8})(?:_[^/]*)?\.pdf$`)

// SCORKey is the B2 lot a SCOR attachment goes with.
type SCORKey struct {
	Emitter string
	Number  int
	Date    string // YYYY-MM-DD
}

// ParseSCORName reads the B2 lot key out of a SCOR file name.
func ParseSCORName(name string) (SCORKey, bool) {
	m := scorName.FindStringSubmatch(name)
	if m == nil {
		return SCORKey{}, false
	}
	n, _ := strconv.Atoi(m[2])
	d, err := time.Parse("20060102", m[3])
	if err != nil || n == 0 {
		return SCORKey{}, false
	}
	return SCORKey{Emitter: m[1], Number: n, Date: d.Format(time.DateOnly)}, true
}

// detectFlow says which flow a file belongs to from its name and first
// bytes, when the channel did not say (SFTP, SMTP): the same rule as `oct
// validate` (check.DetectFlow), B2 for anything else.
func detectFlow(name string, head []byte) string {
	if f := check.DetectFlow(name, head); f != "" {
		return f
	}
	return store.FlowB2
}

// sniff returns the flow of r and a reader that still yields every byte
// (r itself for a local file, read with ReadAt so that adoption by hard
// link stays possible).
func sniff(src Source, r io.Reader) (string, io.Reader) {
	if src.Flow != "" {
		return src.Flow, r
	}
	if f, ok := r.(*os.File); ok {
		head := make([]byte, 512)
		n, _ := f.ReadAt(head, 0)
		return detectFlow(src.Name, head[:n]), r
	}
	br := bufio.NewReaderSize(r, 4096)
	head, _ := br.Peek(512)
	return detectFlow(src.Name, head), br
}

// flowIntake is what validating one non-B2 message gives.
type flowIntake struct {
	valid    bool
	errs     []fixed.Error
	dropped  int64
	lot      store.Lot // without ids, state and blob
	outbound []byte    // what is sent (nil: the raw bytes)
	events   []store.Event
}

// intakeFlow takes in one certificate, PEC message or SCOR attachment:
// bounded read, raw bytes durable, validation, file + its single lot + the
// route job in one commit, then the acknowledgement.
func (g *Gateway) intakeFlow(ctx context.Context, tenant string, src Source, r io.Reader, flow string) (Ack, error) {
	limit := g.limits.MaxFileBytes
	switch flow {
	case store.FlowCertificate:
		limit = min(limit, maxCertificateBytes)
	case store.FlowPEC:
		limit = min(limit, maxPECBytes)
	case store.FlowSCOR:
		limit = min(limit, maxSCORBytes)
	default:
		return Ack{}, fmt.Errorf("%w: flow %q", ErrUnknownFlow, flow)
	}
	if flow == store.FlowSCOR {
		// A SCOR file is read whole (pdfcpu needs random access): at most
		// maxSCORInFlight at once on this node, so memory stays bounded.
		select {
		case g.scorSlots <- struct{}{}:
			defer func() { <-g.scorSlots }()
		case <-ctx.Done():
			return Ack{}, ctx.Err()
		}
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	switch {
	case err != nil && ctx.Err() != nil:
		return Ack{}, ctx.Err()
	case err != nil:
		return Ack{}, fmt.Errorf("%w: read: %v", ErrUnavailable, err)
	case int64(len(data)) > limit:
		return Ack{}, ErrTooLarge
	case len(data) == 0:
		return Ack{}, ErrEmpty
	}
	sum, size, err := g.blobs.Put(ctx, bytes.NewReader(data), limit)
	if err != nil {
		if ctx.Err() != nil {
			return Ack{}, ctx.Err()
		}
		return Ack{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	now := g.now().UTC()
	id := g.newID()
	lotID := id + "-0"
	var fi flowIntake
	switch flow {
	case store.FlowCertificate:
		fi, err = g.checkCertificate(ctx, lotID, data, now)
	case store.FlowPEC:
		fi = checkPEC(data, now)
	case store.FlowSCOR:
		fi, err = g.checkSCOR(ctx, tenant, src, data)
	}
	if err != nil {
		if ctx.Err() != nil {
			return Ack{}, ctx.Err()
		}
		return Ack{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	status, to := StatusAccepted, lifecycle.FileAccepted
	reason := "valid " + flow
	if !fi.valid {
		status, to = StatusRejected, lifecycle.FileRejected
		reason = fmt.Sprintf("%d error(s)", len(fi.errs)+int(fi.dropped))
	}
	ack := Ack{
		ID: id, Status: status, Format: flow, Name: src.Name, SHA256: sum, Size: size, Ref: fi.lot.Ref,
		Received: now.Format(time.RFC3339Nano), Errors: fi.errs, Dropped: fi.dropped,
	}
	if ack.Errors == nil {
		ack.Errors = []fixed.Error{}
	}
	if fi.valid {
		ack.Stats = AckStats{Records: 1, Lots: 1}
	}
	ackJSON, err := json.Marshal(ack)
	if err != nil {
		return Ack{}, err
	}
	f := store.File{
		ID: id, Tenant: tenant, Channel: src.Channel, Name: src.Name, SHA256: sum, Size: size,
		IdemKey: src.IdemKey, Format: flow, State: lifecycle.FileReceived, ReceivedAt: now, Ack: ackJSON,
	}
	then := &store.Change{
		Actor:       "tenant:" + tenant + "/" + src.Channel,
		Transitions: []store.Transition{{Kind: lifecycle.File, ID: id, From: lifecycle.FileReceived, To: to, Actor: "intake", Reason: reason}},
	}
	if fi.valid {
		f.Lots = 1
		out := sum
		if fi.outbound != nil {
			if out, _, err = g.blobs.Put(ctx, bytes.NewReader(fi.outbound), int64(len(fi.outbound))+1); err != nil {
				return Ack{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
			}
		}
		lot := fi.lot
		lot.ID, lot.File, lot.Tenant, lot.Flow, lot.Blob = lotID, id, tenant, flow, out
		lot.State, lot.UpdatedAt = lifecycle.LotCreated, now
		then.Lots = []store.Lot{lot}
		then.Events = fi.events
		then.Transitions = append(then.Transitions, store.Transition{Kind: lifecycle.File, ID: id, From: lifecycle.FileAccepted,
			To: lifecycle.FileSplit, Actor: "intake", Reason: "one " + flow + " lot"})
		then.Enqueue = []store.Job{{Kind: JobRoute, Subject: lotID, Key: "route", RunAt: now}}
	}
	return g.record(ctx, f, then, ack)
}

// ErrUnknownFlow is returned for an explicit flow OCT does not take.
var ErrUnknownFlow = errors.New("unknown-flow")

// checkCertificate validates a certificate (JSON or FHIR), converts it to
// the FHIR Bundle sent to the SSA and runs the selectivity rules.
func (g *Gateway) checkCertificate(ctx context.Context, lotID string, data []byte, now time.Time) (flowIntake, error) {
	rep, err := certificate.Validate(bytes.NewReader(data), certificate.Options{MaxBytes: int64(len(data)) + 1, MaxErrors: g.limits.MaxErrors})
	if err != nil {
		return flowIntake{}, err
	}
	fi := flowIntake{valid: rep.Valid, errs: rep.Errors, dropped: int64(rep.Dropped)}
	if !rep.Valid {
		return fi, nil
	}
	c := rep.Certificate
	if fi.outbound, err = certificate.MarshalFHIR(c); err != nil {
		return flowIntake{}, fmt.Errorf("certificate %s to FHIR: %w", c.ID, err)
	}
	fi.lot = store.Lot{Ref: c.ID, Emitter: c.Practitioner.ID, Date: c.VisitDate, Invoices: 0}
	// The patient appears in the journal only as a keyed hash: the subject
	// of the events the repeat rule counts.
	patient := "patient:" + g.HashNIR(c.Patient.NIR)
	fi.events = append(fi.events, store.Event{Subject: patient, Type: "certificate", Reason: "lot " + lotID})
	if g.selector == nil {
		return fi, nil
	}
	facts := CertificateFacts{ID: c.ID, PatientKey: patient, Benefit: string(c.Benefit),
		IncapacityDays: c.Incapacity.Days(), Issued: c.Issued}
	flagged, reasons, err := g.selector.SelectCertificate(ctx, facts, eventHistory{g.st})
	if err != nil {
		return flowIntake{}, fmt.Errorf("selectivity: %w", err)
	}
	reason := "not selected for medical control"
	if flagged {
		reason = "medical control: " + strings.Join(reasons, "; ")
	}
	fi.events = append(fi.events, store.Event{Subject: "lot:" + lotID, Type: "selectivity", Actor: "selectivity", Reason: reason})
	return fi, nil
}

// eventHistory counts a patient's earlier certificates from the journal.
type eventHistory struct{ st store.Store }

func (h eventHistory) CountSince(ctx context.Context, patientKey string, since time.Time) (int, error) {
	evs, err := h.st.Events(ctx, patientKey)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range evs {
		if e.Type == "certificate" && !e.Time.Before(since) {
			n++
		}
	}
	return n, nil
}

// checkPEC validates a PEC message a vendor sends: request, status or
// cancel (answers come from AMCs, not vendors).
func checkPEC(data []byte, now time.Time) flowIntake {
	rep, err := pec.Validate(bytes.NewReader(data), pec.Options{MaxBytes: int64(len(data)) + 1})
	if err != nil { // I/O on a bytes.Reader: cannot happen
		return flowIntake{errs: []fixed.Error{{Code: pec.ErrJSONSyntax, Message: err.Error()}}}
	}
	fi := flowIntake{valid: rep.Valid, errs: rep.Errors, dropped: rep.Dropped}
	if !rep.Valid || rep.Message == nil {
		return fi
	}
	m := rep.Message
	day := now.Format(time.DateOnly)
	switch m.Kind {
	case pec.KindRequest:
		fi.lot = store.Lot{Ref: m.Request.PECID, Emitter: m.Request.Practitioner.ID, Date: m.Request.QuoteDate,
			Amount: m.Request.Totals.AMCRequestedCents}
	case pec.KindStatus:
		fi.lot = store.Lot{Ref: m.Status.PECID, Date: day}
	case pec.KindCancel:
		fi.lot = store.Lot{Ref: m.Cancel.PECID, Date: day}
	default:
		fi.valid = false
		fi.errs = append(fi.errs, fixed.Error{Code: ErrPECKind, Field: "kind",
			Message: fmt.Sprintf("a vendor sends request, status or cancel messages, not %q", m.Kind)})
	}
	return fi
}

// checkSCOR checks a SCOR attachment: the B2 lot it goes with must be
// known for the tenant, and the PDF must pass formats/scor (PDF/A when the
// B2 lot's destination requires it).
func (g *Gateway) checkSCOR(ctx context.Context, tenant string, src Source, data []byte) (flowIntake, error) {
	key, ok := src.SCOR, src.SCOR.Emitter != ""
	if !ok {
		key, ok = ParseSCORName(src.Name)
	}
	if !ok {
		return flowIntake{errs: []fixed.Error{{Code: ErrSCORName, Field: "name",
			Message: "a SCOR file is named SCOR_<émetteur>_<lot number>_<lot date YYYYMMDD>[_free].pdf"}}}, nil
	}
	lots, err := g.st.Lots(ctx, store.LotQuery{Tenant: tenant, Emitter: key.Emitter, Number: key.Number, Date: key.Date,
		Flow: store.FlowB2, Limit: 10})
	if err != nil {
		return flowIntake{}, err
	}
	if len(lots) == 0 {
		return flowIntake{errs: []fixed.Error{{Code: ErrSCORNoLot, Field: "name", Message: fmt.Sprintf(
			"no B2 lot %03d of %s dated %s was received from you: send the B2 file first", key.Number, key.Emitter, key.Date)}}}, nil
	}
	b2lot := lots[len(lots)-1] // the latest, when a lot number was reused
	opt := scor.Options{MaxBytes: int64(len(data)) + 1, MaxErrors: g.limits.MaxErrors}
	if g.flows.SCORRequirePDFA != nil && b2lot.Destination != "" {
		opt.RequirePDFA = g.flows.SCORRequirePDFA(b2lot.Destination)
	}
	rep, err := scor.Check(bytes.NewReader(data), int64(len(data)), opt)
	if err != nil {
		return flowIntake{}, err
	}
	fi := flowIntake{valid: rep.Valid, errs: rep.Errors, dropped: rep.Dropped}
	fi.lot = store.Lot{Ref: b2lot.ID, Emitter: b2lot.Emitter, Number: b2lot.Number, Date: b2lot.Date,
		Test: b2lot.Test, Invoices: rep.Pages}
	return fi, nil
}

// FlowOptions tune the flows beside B2.
type FlowOptions struct {
	// Selector flags certificates for medical control (nil: none).
	Selector CertificateSelector
	// SCORRequirePDFA says whether a destination requires PDF/A
	// attachments (nil: none does).
	SCORRequirePDFA func(destination string) bool
	// Relay hands a certificate status or PEC answer, unchanged, to the
	// vendor's SFTP returns/ folder (nil: API feed only).
	Relay func(ctx context.Context, tenant, name string, data []byte) error
	// OnReturn is told of each return applied (the API's long-poll feed).
	OnReturn func(tenant string)
}

// flowRouteInput gives the routing fields of a non-B2 lot.
func (g *Gateway) flowRouteInput(ctx context.Context, lot store.Lot) (RouteInput, error) {
	in := RouteInput{Tenant: lot.Tenant, Emitter: lot.Emitter, Test: lot.Test, Flow: lot.Flow}
	switch lot.Flow {
	case store.FlowCertificate:
		data, err := g.readBlob(ctx, lot.Blob)
		if err != nil {
			return in, err
		}
		rep, err := certificate.Validate(bytes.NewReader(data), certificate.Options{MaxBytes: int64(len(data)) + 1})
		if err != nil {
			return in, err
		}
		if !rep.Valid {
			return in, fmt.Errorf("%w: certificate lot %s no longer validates", ErrPermanent, lot.ID)
		}
		in.Insurer, in.Specialty = rep.Certificate.Insurer, rep.Certificate.Practitioner.Specialty
	case store.FlowPEC:
		m, err := g.pecMessage(ctx, lot)
		if err != nil {
			return in, err
		}
		switch m.Kind {
		case pec.KindRequest:
			in.AMC, in.Specialty = m.Request.AMC, m.Request.Practitioner.Specialty
		case pec.KindStatus:
			in.AMC = m.Status.AMC
		case pec.KindCancel:
			in.AMC = m.Cancel.AMC
		}
	case store.FlowSCOR:
		// Routed with the B2 lot it goes with: the same routing fields,
		// as a SCOR flow (the rules may send SCOR elsewhere).
		b2lot, err := g.st.Lot(ctx, lot.Ref)
		if err != nil {
			return in, fmt.Errorf("B2 lot %s of SCOR lot %s: %w", lot.Ref, lot.ID, err)
		}
		b2in, err := g.routeInput(ctx, b2lot)
		if err != nil {
			return in, err
		}
		b2in.Flow = store.FlowSCOR
		return b2in, nil
	}
	return in, nil
}

func (g *Gateway) pecMessage(ctx context.Context, lot store.Lot) (*pec.Message, error) {
	data, err := g.readBlob(ctx, lot.Blob)
	if err != nil {
		return nil, err
	}
	rep, err := pec.Validate(bytes.NewReader(data), pec.Options{MaxBytes: int64(len(data)) + 1})
	if err != nil {
		return nil, err
	}
	if !rep.Valid || rep.Message == nil {
		return nil, fmt.Errorf("%w: PEC lot %s no longer validates", ErrPermanent, lot.ID)
	}
	return rep.Message, nil
}

// IsB2 reports whether a lot is a B2 lot (the flow of every lot written
// before the other flows existed).
func IsB2(l store.Lot) bool { return l.Flow == "" || l.Flow == store.FlowB2 }
