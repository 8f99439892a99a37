package routing

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/octgw/oct/formats/certificate"
	"github.com/octgw/oct/formats/nir"
)

// Selectivity: configurable rules that flag a medical certificate for
// medical control (docs/routing.md "Selectivity of medical certificates").
// Each rule that fires adds a reason "<code>: <detail>"; the code is
// stable, the detail is for people and carries no personal data.

// Selectivity reason codes, stable.
const (
	ReasonLongIncapacity = "long-incapacity" // incapacity of at least LongIncapacityDays
	ReasonRepeat         = "repeat"          // at least RepeatCount earlier certificates of the patient within RepeatWindow
	ReasonRandomSample   = "random-sample"   // drawn by the reproducible random sample
)

// Selectivity error codes.
const (
	// ErrSelectivityConfig: the rules are inconsistent (Validate says which).
	ErrSelectivityConfig Code = "ROUTE_SELECTIVITY_CONFIG"
	// ErrSelectivityFacts: the facts lack what an active rule needs (a
	// patient key, an issue time), or the patient key is a raw NIR.
	ErrSelectivityFacts Code = "ROUTE_SELECTIVITY_FACTS"
	// ErrSelectivityHistory: the history lookup failed; the wrapped error
	// says why. No decision is returned: the caller retries or sends the
	// certificate to control by policy, never silently unchecked.
	ErrSelectivityHistory Code = "ROUTE_SELECTIVITY_HISTORY"
)

// SelectivityError is the error of Select and Validate.
type SelectivityError struct {
	Code   Code
	Detail string // no personal data
	Err    error  // the History error for ErrSelectivityHistory
}

func (e *SelectivityError) Error() string {
	s := string(e.Code) + ": " + e.Detail
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is matches the Code, so errors.Is(err, routing.ErrSelectivityHistory).
func (e *SelectivityError) Is(target error) bool { c, ok := target.(Code); return ok && c == e.Code }

// Unwrap returns the History error.
func (e *SelectivityError) Unwrap() error { return e.Err }

// SelectivityRules flag certificates for medical control. The zero value
// of a field turns its rule off; the zero SelectivityRules flags nothing.
type SelectivityRules struct {
	// LongIncapacityDays flags an incapacity of at least this many days
	// (both ends included, certificate.Period.Days).
	LongIncapacityDays int `yaml:"long_incapacity_days"`
	// RepeatCount flags a certificate whose patient already has at least
	// this many certificates issued in the RepeatWindow before it. Both
	// are set, or neither.
	RepeatCount  int           `yaml:"repeat_count"`
	RepeatWindow time.Duration `yaml:"repeat_window"`
	// SampleRate, 0..1, flags that share of certificates at random. The
	// draw is HMAC-SHA256(SampleSeed, certificate ID): the same seed and
	// ID always give the same draw, so a decision can be explained and
	// replayed; a new seed draws a new sample. SampleSeed is required when
	// SampleRate > 0 and should be kept secret (a sender who knows it can
	// tell which IDs are drawn).
	SampleRate float64 `yaml:"sample_rate"`
	SampleSeed string  `yaml:"sample_seed"`
	// Benefits, when not empty, limits every rule to these benefits
	// ("sickness", "maternity", "invalidity", "work_accident").
	Benefits []string `yaml:"benefits"`
}

// CertificateFacts is what selectivity needs to know of a certificate,
// without personal data.
type CertificateFacts struct {
	ID             string    // the sender's certificate id (keys the random sample)
	PatientKey     string    // keyed hash of the NIR (nir.Hasher.Sum), never the NIR
	Benefit        string    // certificate.Benefit
	IncapacityDays int       // 0 when the certificate prescribes no incapacity
	Issued         time.Time // the certificate's issue time: the repeat window ends here
}

// CertificateFactsOf extracts the facts of a certificate; h hashes the
// NIR (the gateway's tenant-independent hasher).
func CertificateFactsOf(c *certificate.Certificate, h *nir.Hasher) CertificateFacts {
	return CertificateFacts{ID: c.ID, PatientKey: h.Sum(c.Patient.NIR), Benefit: string(c.Benefit),
		IncapacityDays: c.Incapacity.Days(), Issued: c.Issued}
}

// History counts the certificates already recorded for a patient. Select
// is called before the current certificate is recorded, so the count does
// not include it.
type History interface {
	// CountSince returns how many certificates of the patient were issued
	// at or after since.
	CountSince(ctx context.Context, patientKey string, since time.Time) (int, error)
}

// Selection is the outcome of Select.
type Selection struct {
	Flagged bool
	// Reasons: "<code>: <detail>", in rule order (long-incapacity, repeat,
	// random-sample); empty when not flagged. ReasonCode extracts the code.
	Reasons []string
	// Draw is the random-sample draw in [0,1) (NaN when the rule is off),
	// kept so that the decision can be checked later.
	Draw float64
}

// Has reports whether a reason with the code was given.
func (s Selection) Has(code string) bool {
	return slices.ContainsFunc(s.Reasons, func(r string) bool { return ReasonCode(r) == code })
}

// ReasonCode returns the stable code of a reason ("repeat: …" → "repeat").
func ReasonCode(reason string) string {
	code, _, _ := strings.Cut(reason, ":")
	return code
}

// Enabled reports whether at least one rule is on (otherwise Select flags
// nothing and the caller may skip it).
func (r SelectivityRules) Enabled() bool {
	return r.LongIncapacityDays > 0 || r.RepeatCount > 0 || r.SampleRate > 0
}

// Validate checks that the rules are consistent.
func (r SelectivityRules) Validate() error {
	var issues []string
	if r.LongIncapacityDays < 0 {
		issues = append(issues, "long_incapacity_days is negative")
	}
	if r.RepeatCount < 0 || r.RepeatWindow < 0 {
		issues = append(issues, "repeat_count and repeat_window are not negative")
	}
	if (r.RepeatCount > 0) != (r.RepeatWindow > 0) {
		issues = append(issues, "repeat_count and repeat_window are set together")
	}
	if math.IsNaN(r.SampleRate) || r.SampleRate < 0 || r.SampleRate > 1 {
		issues = append(issues, "sample_rate is within 0..1")
	}
	if r.SampleRate > 0 && r.SampleSeed == "" {
		issues = append(issues, "sample_seed is required with sample_rate (the sample must be reproducible)")
	}
	for _, b := range r.Benefits {
		if !certificate.Benefit(b).Valid() {
			issues = append(issues, fmt.Sprintf("benefits: %q is not a benefit", b))
		}
	}
	if len(issues) > 0 {
		return &SelectivityError{Code: ErrSelectivityConfig, Detail: strings.Join(issues, "; ")}
	}
	return nil
}

// SampleDraw is the reproducible draw of the random sample for a
// certificate id: the first 64 bits of HMAC-SHA256(seed, id) over 2^64,
// uniform in [0,1). The certificate is drawn when SampleDraw < SampleRate.
func SampleDraw(seed, id string) float64 {
	m := hmac.New(sha256.New, []byte(seed))
	m.Write([]byte(id))
	return float64(binary.BigEndian.Uint64(m.Sum(nil))>>11) / (1 << 53)
}

// Select applies the rules to one certificate. The error is a
// *SelectivityError: inconsistent rules, facts an active rule cannot use,
// or a History failure (the only I/O, done only when the repeat rule is
// on). Every active rule is evaluated so that all reasons are recorded.
func (r SelectivityRules) Select(ctx context.Context, f CertificateFacts, h History) (Selection, error) {
	sel := Selection{Draw: math.NaN()}
	if err := r.Validate(); err != nil {
		return sel, err
	}
	if len(r.Benefits) > 0 && !slices.Contains(r.Benefits, f.Benefit) {
		return sel, nil
	}
	if r.LongIncapacityDays > 0 && f.IncapacityDays >= r.LongIncapacityDays {
		sel.Reasons = append(sel.Reasons, fmt.Sprintf("%s: incapacity of %d days, threshold %d",
			ReasonLongIncapacity, f.IncapacityDays, r.LongIncapacityDays))
	}
	if r.RepeatCount > 0 {
		switch {
		case f.PatientKey == "":
			return sel, &SelectivityError{Code: ErrSelectivityFacts, Detail: "the repeat rule needs the patient key"}
		case looksLikeNIR(f.PatientKey):
			return sel, &SelectivityError{Code: ErrSelectivityFacts, Detail: "the patient key is a NIR, not its keyed hash (value not echoed)"}
		case f.Issued.IsZero():
			return sel, &SelectivityError{Code: ErrSelectivityFacts, Detail: "the repeat rule needs the issue time"}
		case h == nil:
			return sel, &SelectivityError{Code: ErrSelectivityHistory, Detail: "no history to count repeats"}
		}
		n, err := h.CountSince(ctx, f.PatientKey, f.Issued.Add(-r.RepeatWindow))
		if err != nil {
			return sel, &SelectivityError{Code: ErrSelectivityHistory, Detail: "counting the patient's earlier certificates", Err: err}
		}
		if n >= r.RepeatCount {
			sel.Reasons = append(sel.Reasons, fmt.Sprintf("%s: %d earlier certificates in the %s before this one, threshold %d",
				ReasonRepeat, n, windowText(r.RepeatWindow), r.RepeatCount))
		}
	}
	if r.SampleRate > 0 {
		if f.ID == "" {
			return sel, &SelectivityError{Code: ErrSelectivityFacts, Detail: "the random sample needs the certificate id"}
		}
		sel.Draw = SampleDraw(r.SampleSeed, f.ID)
		if sel.Draw < r.SampleRate {
			sel.Reasons = append(sel.Reasons, fmt.Sprintf("%s: draw %.6f below rate %g (HMAC-SHA256 of the certificate id under the sample seed)",
				ReasonRandomSample, sel.Draw, r.SampleRate))
		}
	}
	sel.Flagged = len(sel.Reasons) > 0
	return sel, nil
}

// looksLikeNIR: a NIR with or without its key, blanks allowed.
func looksLikeNIR(s string) bool {
	if nir.Valid(s) {
		return true
	}
	_, ok := nir.Number([]byte(strings.ReplaceAll(s, " ", "")))
	return ok
}

// windowText writes a window in days when it is a whole number of days.
func windowText(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}
