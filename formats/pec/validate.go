package pec

import (
	"encoding/json"
	"io"
	"reflect"
	"strconv"
	"time"

	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/jsondoc"
	"github.com/octgw/oct/formats/nir"
)

// Options drive Validate. The zero value is usable.
type Options struct {
	MaxBytes  int64 // 0 means DefaultMaxBytes
	MaxErrors int   // 0 means fixed.DefaultMaxErrors
}

// Report is the outcome of Validate.
type Report struct {
	Kind    Kind          `json:"kind,omitempty"`
	Message *Message      `json:"-"` // nil when the input is not a JSON object
	Valid   bool          `json:"valid"`
	Errors  []fixed.Error `json:"errors,omitempty"`
	Dropped int64         `json:"dropped,omitempty"`
}

// Has reports whether the report holds an error with the code.
func (r *Report) Has(code fixed.Code) bool { return fixed.HasCode(r.Errors, code) }

// Validate reads one OCT-PEC v1 message and checks it completely: every
// finding is collected with its stable code and JSON path. The error is
// for I/O failures only.
func Validate(r io.Reader, opt Options) (*Report, error) {
	max := opt.MaxBytes
	if max <= 0 {
		max = DefaultMaxBytes
	}
	c := &fixed.Collector{Max: opt.MaxErrors}
	rep := &Report{}
	data, whole, err := jsondoc.Read(r, max, c, ErrTooLarge)
	if err != nil {
		return nil, err
	} else if !whole {
		return finish(rep, c), nil
	}
	m := decode(data, c)
	if m != nil {
		rep.Message = m
		rep.Kind = m.Kind
		// A member of the wrong JSON type was left at its zero value:
		// report the type error only, not what the zero value breaks.
		bad := map[string]bool{}
		for _, e := range c.Errors() {
			if e.Code == ErrJSONType {
				bad[e.Field] = true
			}
		}
		// check emits a bounded number of findings (lines stop at
		// MaxLines), so sem needs no cap of its own; c applies the cap.
		sem := &fixed.Collector{Max: 1 << 20}
		check(m, sem)
		for _, e := range sem.Errors() {
			if !bad[e.Field] {
				c.Add(e)
			}
		}
	}
	return finish(rep, c), nil
}

func finish(rep *Report, c *fixed.Collector) *Report {
	rep.Errors = c.Errors()
	rep.Dropped = c.Dropped()
	rep.Valid = c.Len() == 0 && rep.Dropped == 0
	return rep
}

// decode parses data into a Message, reporting syntax, shape and type
// problems. It returns nil when data is not a JSON object.
func decode(data []byte, c *fixed.Collector) *Message {
	v := jsondoc.Object(data, c, ErrJSONSyntax)
	if v == nil {
		return nil
	}
	checkShape(v, reflect.TypeFor[Message](), "", c, 0)
	var m Message
	_ = json.Unmarshal(data, &m) // type errors already reported by checkShape; the rest is filled
	return &m
}

// Check validates a Message built in memory (by the gateway or Generate)
// and returns its findings.
func Check(m *Message) []fixed.Error {
	c := &fixed.Collector{}
	check(m, c)
	return c.Errors()
}

func check(m *Message, c *fixed.Collector) {
	if m.Version != Version {
		c.Addf(ErrVersion, 0, "version", "want %q", Version)
	}
	bodies := 0
	for _, b := range []bool{m.Request != nil, m.Answer != nil, m.Status != nil, m.Cancel != nil} {
		if b {
			bodies++
		}
	}
	if bodies > 1 {
		c.Addf(ErrKind, 0, "", "%d bodies; one message carries exactly one", bodies)
	}
	switch m.Kind {
	case KindRequest:
		if m.Request == nil {
			c.Addf(ErrKind, 0, "request", "kind request without a request body")
			return
		}
		checkRequest(m.Request, c)
	case KindAnswer:
		if m.Answer == nil {
			c.Addf(ErrKind, 0, "answer", "kind answer without an answer body")
			return
		}
		checkAnswer(m.Answer, c)
	case KindStatus:
		if m.Status == nil {
			c.Addf(ErrKind, 0, "status", "kind status without a status body")
			return
		}
		s := m.Status
		checkPECID(s.PECID, "status.pec_id", c)
		checkAMC(s.AMC, "status.amc", c)
		if s.PECNumber != "" {
			checkPECNumber(s.PECNumber, "status.pec_number", c)
		}
	case KindCancel:
		if m.Cancel == nil {
			c.Addf(ErrKind, 0, "cancel", "kind cancel without a cancel body")
			return
		}
		k := m.Cancel
		checkPECID(k.PECID, "cancel.pec_id", c)
		checkAMC(k.AMC, "cancel.amc", c)
		if k.PECNumber != "" {
			checkPECNumber(k.PECNumber, "cancel.pec_number", c)
		}
		switch {
		case k.Reason == "":
			c.Addf(ErrReason, 0, "cancel.reason", "a cancel says why")
		case len(k.Reason) > MaxLabel:
			c.Addf(ErrFieldTooLong, 0, "cancel.reason", "over %d bytes", MaxLabel)
		}
	case "":
		c.Addf(ErrRequired, 0, "kind", "missing")
	default:
		c.Addf(ErrKind, 0, "kind", "unknown kind (want request, answer, status or cancel)")
	}
}

func checkRequest(q *Request, c *fixed.Collector) {
	checkPECID(q.PECID, "request.pec_id", c)
	checkTime(q.Created, "request.created", c)
	checkAMC(q.AMC, "request.amc", c)
	switch {
	case q.MemberID == "":
		c.Addf(ErrRequired, 0, "request.member_id", "missing")
	case len(q.MemberID) > 15 || !isAlnum(q.MemberID, false):
		c.Addf(ErrID, 0, "request.member_id", "want 1..15 characters [0-9A-Z]")
	}
	b := q.Beneficiary
	checkDate(b.BirthDate, "request.beneficiary.birth_date", c)
	if b.Rank < 1 || b.Rank > 9 {
		c.Addf(ErrRank, 0, "request.beneficiary.rank", "want 1..9")
	}
	if b.NIRHash != "" {
		checkNIRHash(b.NIRHash, "request.beneficiary.nir_hash", c)
	}
	p := q.Practitioner
	checkPractitioner(p, c)
	checkDate(q.QuoteDate, "request.quote_date", c)

	if len(q.Lines) == 0 {
		c.Addf(ErrLines, 0, "request.lines", "at least one quote line")
	} else if len(q.Lines) > MaxLines {
		c.Addf(ErrLines, 0, "request.lines", "%d lines, at most %d", len(q.Lines), MaxLines)
	}
	var sum int64
	sumOK := true
	for i := range q.Lines {
		if i >= MaxLines {
			break
		}
		l := &q.Lines[i]
		rec := int64(i + 1)
		path := "request.lines[" + strconv.Itoa(i) + "]"
		switch {
		case l.Code == "":
			c.Addf(ErrRequired, rec, path+".code", "missing")
		case len(l.Code) > 13 || !isAlnum(l.Code, false):
			c.Addf(ErrID, rec, path+".code", "want 1..13 characters [0-9A-Z]")
		}
		if l.Label == "" {
			c.Addf(ErrRequired, rec, path+".label", "missing")
		} else if len(l.Label) > MaxLabel {
			c.Addf(ErrFieldTooLong, rec, path+".label", "over %d bytes", MaxLabel)
		}
		okQ := l.Quantity >= 1 && l.Quantity <= MaxQuantity
		if !okQ {
			c.Addf(ErrQuantity, rec, path+".quantity", "want 1..%d", MaxQuantity)
		}
		okP := l.UnitPriceCents >= 0 && l.UnitPriceCents <= MaxUnitPriceCents
		if !okP {
			c.Addf(ErrAmount, rec, path+".unit_price_cents", "want 0..%d", int64(MaxUnitPriceCents))
		}
		if l.TotalCents < 0 || l.TotalCents > MaxUnitPriceCents*MaxQuantity {
			c.Addf(ErrAmount, rec, path+".total_cents", "out of range")
			sumOK = false
		} else if okQ && okP && int64(l.Quantity)*l.UnitPriceCents != l.TotalCents {
			c.Addf(ErrLineTotal, rec, path+".total_cents", "%d × %d = %d, not %d",
				l.Quantity, l.UnitPriceCents, int64(l.Quantity)*l.UnitPriceCents, l.TotalCents)
		}
		sum += l.TotalCents
	}
	t := q.Totals
	amountsOK := true
	for _, a := range []struct {
		v    int64
		name string
	}{{t.TotalCents, "total_cents"}, {t.AMOCents, "amo_cents"}, {t.AMCRequestedCents, "amc_requested_cents"}, {t.PatientCents, "patient_cents"}} {
		if a.v < 0 || a.v > MaxUnitPriceCents*MaxQuantity*MaxLines {
			c.Addf(ErrAmount, 0, "request.totals."+a.name, "out of range (0..%d)", int64(MaxUnitPriceCents*MaxQuantity*MaxLines))
			amountsOK = false
		}
	}
	if !amountsOK {
		return
	}
	if sumOK && len(q.Lines) > 0 && len(q.Lines) <= MaxLines && sum != t.TotalCents {
		c.Addf(ErrTotals, 0, "request.totals.total_cents", "lines add up to %d, not %d", sum, t.TotalCents)
	}
	if t.AMOCents+t.AMCRequestedCents+t.PatientCents != t.TotalCents {
		c.Addf(ErrTotals, 0, "request.totals", "amo %d + amc_requested %d + patient %d != total %d",
			t.AMOCents, t.AMCRequestedCents, t.PatientCents, t.TotalCents)
	}
}

func checkAnswer(a *Answer, c *fixed.Collector) {
	checkPECID(a.PECID, "answer.pec_id", c)
	checkAMC(a.AMC, "answer.amc", c)
	checkTime(a.Answered, "answer.answered", c)
	if len(a.ReasonLabel) > MaxLabel {
		c.Addf(ErrFieldTooLong, 0, "answer.reason_label", "over %d bytes", MaxLabel)
	}
	if a.AmountCents < 0 || a.AmountCents > MaxUnitPriceCents*MaxQuantity*MaxLines {
		c.Addf(ErrAmount, 0, "answer.amount_cents", "out of range")
	}
	needNumber := func() {
		if a.PECNumber == "" {
			c.Addf(ErrRequired, 0, "answer.pec_number", "status %s carries the PEC number", a.Status)
		} else {
			checkPECNumber(a.PECNumber, "answer.pec_number", c)
		}
	}
	forbid := func(set bool, field string) {
		if set {
			c.Addf(ErrForbidden, 0, "answer."+field, "not allowed with status %s", a.Status)
		}
	}
	switch a.Status {
	case StatusAgreement, StatusPartial:
		needNumber()
		if a.AmountCents <= 0 {
			c.Addf(ErrAmount, 0, "answer.amount_cents", "status %s grants a positive amount", a.Status)
		}
		if a.ValidUntil == "" {
			c.Addf(ErrRequired, 0, "answer.valid_until", "status %s has an end of validity", a.Status)
		} else {
			checkDate(a.ValidUntil, "answer.valid_until", c)
		}
		if a.Status == StatusPartial {
			checkReasonCode(a.ReasonCode, "answer.reason_code", true, c)
		} else {
			forbid(a.ReasonCode != "", "reason_code")
		}
	case StatusRefusal:
		checkReasonCode(a.ReasonCode, "answer.reason_code", false, c)
		forbid(a.PECNumber != "", "pec_number")
		forbid(a.AmountCents != 0, "amount_cents")
		forbid(a.ValidUntil != "", "valid_until")
	case StatusCancelled:
		needNumber()
		forbid(a.AmountCents != 0, "amount_cents")
		forbid(a.ValidUntil != "", "valid_until")
	case StatusPending:
		if a.PECNumber != "" {
			checkPECNumber(a.PECNumber, "answer.pec_number", c)
		}
		forbid(a.AmountCents != 0, "amount_cents")
		forbid(a.ValidUntil != "", "valid_until")
	case "":
		c.Addf(ErrRequired, 0, "answer.status", "missing")
	default:
		c.Addf(ErrStatus, 0, "answer.status", "want agreement, partial, refusal, cancelled or pending")
	}
}

func checkReasonCode(s, path string, optional bool, c *fixed.Collector) {
	if s == "" {
		if !optional {
			c.Addf(ErrReason, 0, path, "a refusal carries a reason code")
		}
		return
	}
	if len(s) < 2 || len(s) > 8 || !isAlnum(s, false) {
		c.Addf(ErrReason, 0, path, "want 2..8 characters [0-9A-Z]")
	}
}

func checkPECID(s, path string, c *fixed.Collector) {
	if s == "" {
		c.Addf(ErrRequired, 0, path, "missing")
		return
	}
	if len(s) > 35 || !isAlnum(s, true) {
		c.Addf(ErrID, 0, path, "want 1..35 characters [A-Za-z0-9._-]")
	}
}

// AMCNumberValid reports whether s has the shape OCT-PEC v1 accepts for an
// AMC number: 8 to 10 digits (B2 carries it on 10, the routing tables on 8).
func AMCNumberValid(s string) bool {
	if len(s) < 8 || len(s) > 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func checkAMC(s, path string, c *fixed.Collector) {
	if s == "" {
		c.Addf(ErrRequired, 0, path, "missing")
		return
	}
	if !AMCNumberValid(s) {
		c.Addf(ErrAMCNumber, 0, path, "want 8 to 10 digits")
	}
}

func checkPractitioner(p Practitioner, c *fixed.Collector) {
	switch p.IDType {
	case "finess", "am":
	case "":
		c.Addf(ErrRequired, 0, "request.practitioner.id_type", "missing")
	default:
		c.Addf(ErrPractitioner, 0, "request.practitioner.id_type", "want finess or am")
	}
	switch {
	case p.ID == "":
		c.Addf(ErrRequired, 0, "request.practitioner.id", "missing")
	case !PractitionerIDValid(p.ID):
		c.Addf(ErrPractitioner, 0, "request.practitioner.id", "want 9 digits (2A/2B allowed at 1-2) with a Luhn key")
	}
	switch {
	case p.Specialty == "":
		c.Addf(ErrRequired, 0, "request.practitioner.specialty", "missing")
	case len(p.Specialty) != 2 || !isDigits(p.Specialty):
		c.Addf(ErrSpecialty, 0, "request.practitioner.specialty", "want 2 digits")
	}
}

// PractitionerIDValid checks a FINESS or AM number: 9 characters, digits
// (a Corsican FINESS may start 2A or 2B), the last one a Luhn key over the
// first eight. Corsican numbers are checked for shape only (our assumption:
// the key rule for 2A/2B is not public).
func PractitionerIDValid(s string) bool {
	if len(s) != 9 {
		return false
	}
	if s[0] == '2' && (s[1] == 'A' || s[1] == 'B') {
		return isDigits(s[2:])
	}
	if !isDigits(s) {
		return false
	}
	return luhn(s)
}

// luhn checks a digit string whose last digit is its Luhn key.
func luhn(s string) bool {
	sum := 0
	double := false
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// luhnKey returns the key digit that makes s+key pass luhn.
func luhnKey(s string) byte {
	for k := byte('0'); k <= '9'; k++ {
		if luhn(s + string(k)) {
			return k
		}
	}
	return '0'
}

func checkDate(s, path string, c *fixed.Collector) {
	if s == "" {
		c.Addf(ErrRequired, 0, path, "missing")
		return
	}
	if _, err := time.Parse(time.DateOnly, s); err != nil || len(s) != 10 {
		c.Addf(ErrDate, 0, path, "want an existing date YYYY-MM-DD")
	}
}

func checkTime(s, path string, c *fixed.Collector) {
	if s == "" {
		c.Addf(ErrRequired, 0, path, "missing")
		return
	}
	if _, err := time.Parse(time.RFC3339, s); err != nil {
		c.Addf(ErrDate, 0, path, "want an RFC 3339 time")
	}
}

func checkNIRHash(s, path string, c *fixed.Collector) {
	if nir.Valid(s) || (len(s) == nir.Len && isDigits(s)) {
		c.Addf(ErrNIRNotHashed, 0, path, "holds a NIR; send the keyed hash (value not echoed)")
		return
	}
	if len(s) != 64 || !isLowerHex(s) {
		c.Addf(ErrNIRNotHashed, 0, path, "want 64 lower-case hex characters (value not echoed)")
	}
}

func checkPECNumber(s, path string, c *fixed.Collector) {
	if !PECNumberValid(s) {
		c.Addf(ErrPECNumber, 0, path, "want %d characters [0-9A-Z]", PECNumberLen)
	}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// isAlnum: [0-9A-Z], plus [a-z._-] when loose.
func isAlnum(s string, loose bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'Z':
		case loose && (c >= 'a' && c <= 'z' || c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}
