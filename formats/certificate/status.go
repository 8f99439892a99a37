package certificate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/jsondoc"
)

// The SSA answers a certificate over time with FHIR R4 Task resources
// (OUR profile, docs/formats/certificate.md "Status Tasks"):
//
//	Task.identifier[system=TaskIDSystem].value      the SSA's task id
//	Task.focus.identifier[system=CertificateIDSystem].value  the certificate ID
//	Task.status                                     FHIR task status, fixed by the business status
//	Task.intent                                     "order"
//	Task.businessStatus.coding[system=StatusSystem] one of the Status codes
//	Task.statusReason.coding[system=ReasonSystem]   reason code (+ .text), refused / arbiter_returned
//	Task.lastModified                               when the SSA set this status
//
// Several Tasks travel as a Bundle of type "searchset".

// Status is the SSA's business status of a certificate.
type Status string

// Statuses, in the order they normally happen.
const (
	StatusReceived        Status = "received"         // the SSA has it
	StatusUnderReview     Status = "under_review"     // a medical adviser examines it (selectivity, control)
	StatusAccepted        Status = "accepted"         // the benefit is granted on this certificate
	StatusRefused         Status = "refused"          // refused; ReasonCode/ReasonText say why
	StatusArbiterReturned Status = "arbiter_returned" // sent back by the arbiter (medical expertise); ReasonCode says why
)

// Statuses lists every Status.
var Statuses = []Status{StatusReceived, StatusUnderReview, StatusAccepted, StatusRefused, StatusArbiterReturned}

// Final reports whether no further status is expected after s.
func (s Status) Final() bool {
	switch s {
	case StatusAccepted, StatusRefused, StatusArbiterReturned:
		return true
	}
	return false
}

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool { return s.FHIRTaskStatus() != "" }

// NeedsReason reports whether a Task with status s must carry a reason.
func (s Status) NeedsReason() bool { return s == StatusRefused || s == StatusArbiterReturned }

// FHIRTaskStatus is the R4 Task.status a Task with business status s
// carries ("" for an unknown s).
func (s Status) FHIRTaskStatus() string {
	switch s {
	case StatusReceived:
		return "received"
	case StatusUnderReview:
		return "in-progress"
	case StatusAccepted:
		return "completed"
	case StatusRefused:
		return "rejected"
	case StatusArbiterReturned:
		return "failed"
	}
	return ""
}

// Identifier systems and code systems of the Task profile (ours).
const (
	TaskIDSystem        = "https://oct.example/fhir/NamingSystem/ssa-task-id"
	CertificateIDSystem = "https://oct.example/fhir/NamingSystem/certificate-id"
	StatusSystem        = "https://oct.example/fhir/CodeSystem/ssa-status"
	ReasonSystem        = "https://oct.example/fhir/CodeSystem/ssa-reason"
)

// Limits of the Task codec.
const (
	MaxTaskBytes       = 64 << 10 // one Task
	MaxTaskBundleBytes = 8 << 20  // one searchset Bundle
	MaxTaskBundleTasks = 10000    // Tasks in one Bundle
	MaxTaskIDLen       = 64
	MaxReasonCodeLen   = 16
	MaxReasonText      = 500
)

// StatusUpdate is one Task: the status the SSA gives a certificate.
type StatusUpdate struct {
	TaskID        string // SSA's task id, 1..64 [A-Za-z0-9._-]
	CertificateID string // Certificate.ID, 1..35 [A-Za-z0-9._-]
	Status        Status
	ReasonCode    string // 1..16 [A-Za-z0-9._-]; required for refused and arbiter_returned
	ReasonText    string // ≤ 500 bytes, optional; never personal data (the SSA's wording)
	Updated       time.Time
}

// Check returns the first problem of u as a *fixed.Error (Field is the
// Task path the member is written to), or nil.
func (u StatusUpdate) Check() error {
	c := &fixed.Collector{Max: 1}
	checkUpdate(u, "Task", c)
	return firstErr(c)
}

func checkUpdate(u StatusUpdate, p string, c *fixed.Collector) {
	switch {
	case u.TaskID == "":
		c.Addf(ErrRequired, 0, p+".identifier", "the SSA task id is missing")
	case !idValid(u.TaskID, MaxTaskIDLen):
		c.Addf(ErrID, 0, p+".identifier.value", "want 1..%d characters [A-Za-z0-9._-]", MaxTaskIDLen)
	}
	switch {
	case u.CertificateID == "":
		c.Addf(ErrRequired, 0, p+".focus.identifier", "the certificate id is missing")
	case !idValid(u.CertificateID, MaxIDLen):
		c.Addf(ErrID, 0, p+".focus.identifier.value", "want 1..%d characters [A-Za-z0-9._-]", MaxIDLen)
	}
	switch {
	case u.Status == "":
		c.Addf(ErrRequired, 0, p+".businessStatus", "missing")
	case !u.Status.Valid():
		c.Addf(ErrTaskStatus, 0, p+".businessStatus.coding.code", "unknown business status (want received, under_review, accepted, refused or arbiter_returned)")
	}
	switch {
	case u.ReasonCode == "" && u.Status.NeedsReason():
		c.Addf(ErrReason, 0, p+".statusReason", "status %s carries a reason code", u.Status)
	case u.ReasonCode != "" && !idValid(u.ReasonCode, MaxReasonCodeLen):
		c.Addf(ErrReason, 0, p+".statusReason.coding.code", "want 1..%d characters [A-Za-z0-9._-]", MaxReasonCodeLen)
	}
	if u.ReasonText != "" && u.ReasonCode == "" {
		c.Addf(ErrReason, 0, p+".statusReason.coding", "a reason text without a reason code")
	}
	if len(u.ReasonText) > MaxReasonText {
		c.Addf(ErrFieldTooLong, 0, p+".statusReason.text", "over %d bytes", MaxReasonText)
	}
	if u.Updated.IsZero() {
		c.Addf(ErrRequired, 0, p+".lastModified", "missing")
	}
}

func firstErr(c *fixed.Collector) error {
	if c.Len() == 0 {
		if c.Dropped() > 0 { // cannot happen with Max ≥ 1; keep the invariant visible
			return &fixed.Error{Code: ErrJSONSyntax, Message: "finding dropped"}
		}
		return nil
	}
	e := c.Errors()[0]
	return &e
}

// FHIR R4 JSON shapes written by MarshalTask (member order = R4 order).
type fhirCoding struct {
	System string `json:"system,omitempty"`
	Code   string `json:"code,omitempty"`
}

type fhirConcept struct {
	Coding []fhirCoding `json:"coding,omitempty"`
	Text   string       `json:"text,omitempty"`
}

type fhirIdentifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
}

type fhirTaskRef struct {
	Identifier fhirIdentifier `json:"identifier"`
}

type fhirTask struct {
	ResourceType   string           `json:"resourceType"`
	Identifier     []fhirIdentifier `json:"identifier"`
	Status         string           `json:"status"`
	StatusReason   *fhirConcept     `json:"statusReason,omitempty"`
	BusinessStatus fhirConcept      `json:"businessStatus"`
	Intent         string           `json:"intent"`
	Focus          fhirTaskRef      `json:"focus"`
	LastModified   string           `json:"lastModified"`
}

func taskOf(u StatusUpdate) fhirTask {
	t := fhirTask{
		ResourceType:   "Task",
		Identifier:     []fhirIdentifier{{System: TaskIDSystem, Value: u.TaskID}},
		Status:         u.Status.FHIRTaskStatus(),
		BusinessStatus: fhirConcept{Coding: []fhirCoding{{System: StatusSystem, Code: string(u.Status)}}},
		Intent:         "order",
		Focus:          fhirTaskRef{Identifier: fhirIdentifier{System: CertificateIDSystem, Value: u.CertificateID}},
		LastModified:   u.Updated.Format(time.RFC3339Nano),
	}
	if u.ReasonCode != "" {
		t.StatusReason = &fhirConcept{Coding: []fhirCoding{{System: ReasonSystem, Code: u.ReasonCode}}, Text: u.ReasonText}
	}
	return t
}

// MarshalTask writes u as a FHIR R4 Task (JSON). An update that would not
// parse back (u.Check) is refused with that error.
func MarshalTask(u StatusUpdate) ([]byte, error) {
	if err := u.Check(); err != nil {
		return nil, err
	}
	return marshalIndent(taskOf(u))
}

type fhirBundleEntry struct {
	FullURL  string    `json:"fullUrl,omitempty"`
	Resource *fhirTask `json:"resource"`
}

type fhirTaskBundle struct {
	ResourceType string            `json:"resourceType"`
	Type         string            `json:"type"`
	Total        int               `json:"total"`
	Entry        []fhirBundleEntry `json:"entry,omitempty"`
}

// MarshalTaskBundle writes the updates as a FHIR R4 Bundle of type
// "searchset", one Task entry each, in order.
func MarshalTaskBundle(us []StatusUpdate) ([]byte, error) {
	if len(us) > MaxTaskBundleTasks {
		return nil, &fixed.Error{Code: ErrTooLarge, Field: "Bundle.entry", Message: "more than " + strconv.Itoa(MaxTaskBundleTasks) + " tasks"}
	}
	b := fhirTaskBundle{ResourceType: "Bundle", Type: "searchset", Total: len(us)}
	for i, u := range us {
		c := &fixed.Collector{Max: 1}
		checkUpdate(u, "Bundle.entry["+strconv.Itoa(i)+"].resource", c)
		if err := firstErr(c); err != nil {
			return nil, err
		}
		t := taskOf(u)
		b.Entry = append(b.Entry, fhirBundleEntry{Resource: &t})
	}
	return marshalIndent(b)
}

func marshalIndent(v any) ([]byte, error) {
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	e.SetIndent("", "  ")
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ParseTask reads one FHIR R4 Task of our profile. The error is a
// *fixed.Error (errors.Is(err, certificate.ErrTaskStatus), errors.As for
// the Field path "Task.businessStatus.coding[0].code"); it never quotes the
// input. Task elements the profile does not use (id, meta, text, owner,
// authoredOn, extension…) are ignored; a modifierExtension is an error.
func ParseTask(b []byte) (StatusUpdate, error) {
	c := &fixed.Collector{Max: 1}
	if len(b) > MaxTaskBytes {
		c.Addf(ErrTooLarge, 0, "", "more than %d bytes", MaxTaskBytes)
		return StatusUpdate{}, firstErr(c)
	}
	v := jsondoc.Object(b, c, ErrJSONSyntax)
	if v == nil {
		return StatusUpdate{}, firstErr(c)
	}
	w := &walker{c: c}
	u := parseTask(w, node{v: v, path: "Task"})
	if err := firstErr(c); err != nil {
		return StatusUpdate{}, err
	}
	return u, nil
}

// ParseTaskBundle reads a FHIR R4 Bundle of type "searchset" (or
// "collection") whose entries are Tasks of our profile. Entries whose
// search.mode is "outcome" (an OperationOutcome the server adds) are
// skipped. The first problem is returned as a *fixed.Error whose Field is
// "Bundle.entry[3].resource.status" and so on; no update is returned then.
func ParseTaskBundle(b []byte) ([]StatusUpdate, error) {
	c := &fixed.Collector{Max: 1}
	if len(b) > MaxTaskBundleBytes {
		c.Addf(ErrTooLarge, 0, "", "more than %d bytes", MaxTaskBundleBytes)
		return nil, firstErr(c)
	}
	v := jsondoc.Object(b, c, ErrJSONSyntax)
	if v == nil {
		return nil, firstErr(c)
	}
	w := &walker{c: c}
	root := node{v: v, path: "Bundle"}
	if rt := w.str(root.member("resourceType")); rt != "Bundle" {
		c.Addf(ErrResourceType, 0, "Bundle.resourceType", "want Bundle")
		return nil, firstErr(c)
	}
	w.modifiers(root)
	switch t := w.str(root.member("type")); t {
	case "searchset", "collection":
	case "":
		if c.Len() == 0 {
			c.Addf(ErrRequired, 0, "Bundle.type", "missing")
		}
	default:
		c.Addf(ErrFHIR, 0, "Bundle.type", "want searchset")
	}
	entries := root.member("entry")
	n := w.array(entries)
	if n > MaxTaskBundleTasks {
		c.Addf(ErrTooLarge, 0, "Bundle.entry", "more than %d entries", MaxTaskBundleTasks)
	}
	if c.Len() > 0 {
		return nil, firstErr(c)
	}
	out := make([]StatusUpdate, 0, n)
	for i := 0; i < n; i++ {
		e := entries.index(i)
		if !w.object(e) {
			return nil, firstErr(c)
		}
		w.modifiers(e)
		if mode := w.str(e.member("search").member("mode")); mode == "outcome" {
			continue
		}
		r := e.member("resource")
		if !r.present() {
			c.Addf(ErrRequired, 0, r.path, "an entry without a resource")
			return nil, firstErr(c)
		}
		u := parseTask(w, r)
		if c.Len() > 0 {
			return nil, firstErr(c)
		}
		out = append(out, u)
	}
	return out, nil
}

// parseTask reads the Task at n; findings go to w (the caller stops at the
// first).
func parseTask(w *walker, n node) StatusUpdate {
	var u StatusUpdate
	if !w.object(n) {
		return u
	}
	if rt := w.str(n.member("resourceType")); rt != "Task" {
		w.c.Addf(ErrResourceType, 0, n.path+".resourceType", "want Task")
		return u
	}
	w.modifiers(n)

	// identifier: the one with our system.
	ids := n.member("identifier")
	found := false
	for i, k := 0, w.array(ids); i < k; i++ {
		id := ids.index(i)
		if w.object(id) && w.str(id.member("system")) == TaskIDSystem {
			u.TaskID = w.need(id.member("value"))
			if u.TaskID != "" && !idValid(u.TaskID, MaxTaskIDLen) {
				w.c.Addf(ErrID, 0, id.path+".value", "want 1..%d characters [A-Za-z0-9._-]", MaxTaskIDLen)
			}
			found = true
			break
		}
	}
	if !found {
		w.c.Addf(ErrRequired, 0, ids.path, "no identifier with system %s", TaskIDSystem)
	}

	// focus.identifier: the certificate.
	fid := n.member("focus").member("identifier")
	if w.object(n.member("focus")) && w.object(fid) {
		if s := w.str(fid.member("system")); s != CertificateIDSystem {
			w.c.Addf(ErrCodeSystem, 0, fid.path+".system", "want %s", CertificateIDSystem)
		}
		u.CertificateID = w.need(fid.member("value"))
		if u.CertificateID != "" && !idValid(u.CertificateID, MaxIDLen) {
			w.c.Addf(ErrID, 0, fid.path+".value", "want 1..%d characters [A-Za-z0-9._-]", MaxIDLen)
		}
	} else {
		w.c.Addf(ErrRequired, 0, fid.path, "missing: the Task names the certificate it is about")
	}

	// businessStatus: the coding with our system.
	bs := n.member("businessStatus")
	if !w.object(bs) {
		w.c.Addf(ErrRequired, 0, bs.path, "missing")
	} else {
		cd, ok := findCoding(w, bs, StatusSystem)
		if !ok {
			w.c.Addf(ErrRequired, 0, bs.path+".coding", "no coding with system %s", StatusSystem)
		} else {
			code := w.need(cd.member("code"))
			u.Status = Status(code)
			if code != "" && !u.Status.Valid() {
				w.c.Addf(ErrTaskStatus, 0, cd.path+".code", "unknown business status (want received, under_review, accepted, refused or arbiter_returned)")
			}
		}
	}

	// status: must be the one the business status maps to.
	st := w.need(n.member("status"))
	if st != "" && u.Status.Valid() && st != u.Status.FHIRTaskStatus() {
		w.c.Addf(ErrTaskStatus, 0, n.path+".status", "business status %s goes with Task.status %s", u.Status, u.Status.FHIRTaskStatus())
	}
	if in := w.need(n.member("intent")); in != "" && in != "order" {
		w.c.Addf(ErrFHIR, 0, n.path+".intent", "want order")
	}

	// statusReason.
	sr := n.member("statusReason")
	if w.object(sr) {
		if cd, ok := findCoding(w, sr, ReasonSystem); ok {
			u.ReasonCode = w.str(cd.member("code"))
			if !idValid(u.ReasonCode, MaxReasonCodeLen) {
				w.c.Addf(ErrReason, 0, cd.path+".code", "want 1..%d characters [A-Za-z0-9._-]", MaxReasonCodeLen)
			}
		} else if w.array(sr.member("coding")) > 0 {
			w.c.Addf(ErrCodeSystem, 0, sr.path+".coding", "no coding with system %s", ReasonSystem)
		}
		u.ReasonText = w.str(sr.member("text"))
		if len(u.ReasonText) > MaxReasonText {
			w.c.Addf(ErrFieldTooLong, 0, sr.path+".text", "over %d bytes", MaxReasonText)
		}
	}
	if u.Status.NeedsReason() && u.ReasonCode == "" {
		w.c.Addf(ErrReason, 0, sr.path, "status %s carries a reason code", u.Status)
	}
	if u.ReasonText != "" && u.ReasonCode == "" && w.c.Len() == 0 {
		w.c.Addf(ErrReason, 0, sr.path+".coding", "a reason text without a reason code")
	}

	lm := n.member("lastModified")
	if s := w.need(lm); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			w.c.Addf(ErrDate, 0, lm.path, "want a FHIR instant (RFC 3339 with zone)")
		}
		u.Updated = t
	}
	return u
}

// findCoding returns the first coding of the CodeableConcept cc whose
// system is sys.
func findCoding(w *walker, cc node, sys string) (node, bool) {
	cs := cc.member("coding")
	for i, k := 0, w.array(cs); i < k; i++ {
		cd := cs.index(i)
		if w.object(cd) && w.str(cd.member("system")) == sys {
			return cd, true
		}
	}
	return node{}, false
}

// IsTask is a cheap sniff for the returns decoder: b is a JSON object
// whose top-level resourceType is "Task". It reads members until it meets
// resourceType and does not validate the rest (ParseTask does).
func IsTask(b []byte) bool {
	return topResourceType(b) == "Task"
}

// topResourceType returns the top-level "resourceType" string of a JSON
// object, or "" (not an object, no such member, not a string, bad JSON
// before it). It reads at most MaxTaskBundleBytes.
func topResourceType(b []byte) string {
	b = bytes.TrimPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("\xef\xbb\xbf"))
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return ""
	}
	if len(b) > MaxTaskBundleBytes {
		b = b[:MaxTaskBundleBytes]
	}
	d := json.NewDecoder(bytes.NewReader(b))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return ""
		}
		key, _ := k.(string)
		if key == "resourceType" {
			v, err := d.Token()
			if err != nil {
				return ""
			}
			s, _ := v.(string)
			return s
		}
		if err := skipValue(d); err != nil {
			return ""
		}
	}
	return ""
}

// skipValue consumes one JSON value from d.
func skipValue(d *json.Decoder) error {
	depth := 0
	for {
		t, err := d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
