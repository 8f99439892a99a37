// Package certificate reads, checks and writes medical certificates
// ("certificats médicaux": sick leave, maternity, invalidity, work
// accident) that practice software sends to an SSA through the gateway, and
// the status Tasks the SSA answers with (status.go).
//
// oct-cert/1 is OUR schema, and its FHIR R4 mapping is OUR profile
// (docs/formats/certificate.md): no public schema exists for this flow. A
// certificate arrives as oct-cert/1 JSON or as a FHIR R4 Bundle of type
// "document"; both map to Certificate, which Validate checks with the same
// rules, and the gateway sends the SSA the FHIR Bundle (MarshalFHIR).
//
// A certificate holds personal and medical data. The package keeps no
// state and logs nothing; no finding quotes a NIR, a name, a date or a
// diagnosis: messages state the rule, Field says where.
package certificate

import (
	"time"

	"github.com/octgw/oct/formats/fixed"
)

// Version is the value of the "version" member of oct-cert/1 JSON.
const Version = "oct-cert/1"

// Benefit is the benefit the practitioner recommends.
type Benefit string

// Benefits of oct-cert/1.
const (
	BenefitSickness     Benefit = "sickness"      // sick leave (arrêt maladie)
	BenefitMaternity    Benefit = "maternity"     // maternity (pregnancy-related leave)
	BenefitInvalidity   Benefit = "invalidity"    // invalidity (lasting loss of capacity, assessed by the SSA)
	BenefitWorkAccident Benefit = "work_accident" // work accident or occupational disease
)

// Benefits lists the benefits in documentation order.
var Benefits = []Benefit{BenefitSickness, BenefitMaternity, BenefitInvalidity, BenefitWorkAccident}

// Valid reports whether b is one of Benefits.
func (b Benefit) Valid() bool {
	switch b {
	case BenefitSickness, BenefitMaternity, BenefitInvalidity, BenefitWorkAccident:
		return true
	}
	return false
}

// Incapacity kinds.
const (
	KindInitial   = "initial"   // first certificate of an incapacity
	KindExtension = "extension" // prolongs the incapacity of an earlier certificate (Period.Extends)
)

// ICD10System is the only diagnosis code system of oct-cert/1 (WHO ICD-10,
// its FHIR URI).
const ICD10System = "http://hl7.org/fhir/sid/icd-10"

// Certificate is one medical certificate: the canonical model both
// encodings (oct-cert/1 JSON, FHIR R4 Bundle) map to. Dates are
// YYYY-MM-DD strings as received, so that a malformed one can be reported
// rather than lost.
type Certificate struct {
	ID           string    // sender's certificate id, 1..35 [A-Za-z0-9._-]
	Issued       time.Time // when the practitioner signed it
	Insurer      string    // SSA organisation code the certificate goes to (routing key), 2..16 [A-Z0-9]
	Patient      Patient   // personal data: never in findings
	Practitioner Practitioner
	VisitDate    string // YYYY-MM-DD
	VisitNumber  string // optional: the practice software's visit number, 1..35 [A-Za-z0-9._-]
	Diagnosis    Diagnosis
	Incapacity   *Period // required for sickness and work_accident, optional for maternity, forbidden for invalidity
	Benefit      Benefit
	AccidentDate string // YYYY-MM-DD; work_accident only, and then required
}

// Patient is the insured person.
type Patient struct {
	NIR       string // 15 characters with its key (formats/nir); blanks allowed between groups
	Family    string // 1..100 bytes
	Given     string // 1..100 bytes (several given names separated by spaces)
	BirthDate string // YYYY-MM-DD
}

// Practitioner is who examined the patient and signs the certificate.
type Practitioner struct {
	ID        string // 9 digits, Luhn key (formats/pec PractitionerIDValid)
	Family    string // 1..100 bytes
	Given     string // optional, ≤ 100 bytes
	Specialty string // 2 digits
}

// Diagnosis is the coded diagnosis. The zero value means "none" (allowed
// for maternity only).
type Diagnosis struct {
	System string // ICD10System
	Code   string // ICD-10 shape: letter, 2 digits, optional "." and 1..2 digits (J11.1, S93.4, G35)
	Text   string // optional, ≤ 200 bytes
}

// IsZero reports whether no diagnosis member is set.
func (d Diagnosis) IsZero() bool { return d == Diagnosis{} }

// Period is the incapacity (work stoppage) the certificate prescribes.
type Period struct {
	From    string // YYYY-MM-DD, first day off work
	To      string // YYYY-MM-DD, last day off work (inclusive)
	Kind    string // KindInitial or KindExtension
	Extends string // KindExtension only: the ID of the certificate it prolongs
}

// Days is the length of the period in days, both ends included; 0 when a
// date does not parse or To is before From.
func (p *Period) Days() int {
	if p == nil {
		return 0
	}
	f, err1 := parseDate(p.From)
	t, err2 := parseDate(p.To)
	if err1 != nil || err2 != nil || t.Before(f) {
		return 0
	}
	return int(t.Sub(f).Hours()/24) + 1
}

// Limits and tolerances of oct-cert/1 (docs/formats/certificate.md).
const (
	DefaultMaxBytes   = 1 << 20 // Options.MaxBytes default
	MaxIDLen          = 35
	MaxNameLen        = 100
	MaxDiagnosisText  = 200
	MaxIncapacityDays = 365 // one certificate prescribes at most a year; longer needs an extension
	BackdateDays      = 2   // incapacity.from may precede the visit by at most this many days
	IssueLeadDays     = 1   // visit_date may follow the issue date by at most this (time zones)
	MaxAccidentAge    = 730 // days between accident_date and visit_date, at most
	MaxFHIREntries    = 16  // entries of a FHIR Bundle
)

// idValid: 1..max characters [A-Za-z0-9._-].
func idValid(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// InsurerValid reports whether s has the shape of an SSA organisation
// code: 2..16 characters [A-Z0-9].
func InsurerValid(s string) bool {
	if len(s) < 2 || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// ICD10Valid reports whether s has the shape of a WHO ICD-10 code as FHIR
// writes it: an upper-case letter, two digits, then optionally "." and one
// or two digits (A09, J11.1, S72.00). It checks the shape, not that the
// code exists.
func ICD10Valid(s string) bool {
	if len(s) != 3 && (len(s) < 5 || len(s) > 6) {
		return false
	}
	if s[0] < 'A' || s[0] > 'Z' || !digits(s[1:3]) {
		return false
	}
	if len(s) == 3 {
		return true
	}
	return s[3] == '.' && digits(s[4:])
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

func parseDate(s string) (time.Time, error) {
	if len(s) != 10 {
		return time.Time{}, ErrDate
	}
	return time.Parse(time.DateOnly, s)
}

// Options drive Validate. The zero value is usable.
type Options struct {
	MaxBytes  int64 // 0 means DefaultMaxBytes
	MaxErrors int   // 0 means fixed.DefaultMaxErrors
}

// Encodings reported by Validate.
const (
	EncodingJSON = "json" // oct-cert/1
	EncodingFHIR = "fhir" // FHIR R4 Bundle, our profile
)

// Report is the outcome of Validate.
type Report struct {
	Valid       bool          `json:"valid"`
	Encoding    string        `json:"encoding,omitempty"` // "json", "fhir", or "" when not a JSON object
	Certificate *Certificate  `json:"-"`                  // what could be read; nil when the input is not a JSON object
	Errors      []fixed.Error `json:"errors,omitempty"`
	Dropped     int           `json:"dropped,omitempty"`
}

// Has reports whether the report holds a finding with the code.
func (r *Report) Has(code fixed.Code) bool { return fixed.HasCode(r.Errors, code) }
