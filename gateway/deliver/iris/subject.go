// Package iris builds IRIS/B2 mail messages the way ETS-DT-001-based
// implementations do (docs/formats.md §4.2, docs/delivery.md): the subject
// IR<VVVVVV>/<émetteur:14>/<compostage:19>/<nb-factures:5>, the B2 file
// gzipped in a base64 application/EDI-consent part described IRIS/B2/Z
// (IRISTEST/B2/Z for test flows), an optional detached signature part, the
// whole optionally enveloped in CMS enveloped-data (AES-128-CBC or
// 3DES-CBC) to the recipient's certificate.
//
// The gateway's SMTP sender uses it for outbound lots; the insurer simulator
// uses it, unencrypted, for the ARL and NOEMIE returns it sends back.
package iris

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultSubjectVersion is the VVVVVV field of the subject. Calebasse writes
// 100500 citing ETS-DT-001 v1.1; a 2025 implementation omits the field
// ("IR/…"). Its meaning is unknown (formats.md §4.2 [?]): keep it
// configurable.
const DefaultSubjectVersion = "100500"

// ErrSubject is returned by ParseSubject for a subject not of the IRIS form
// and by Subject.String for fields that do not fit.
var ErrSubject = errors.New("iris: bad subject")

// Subject is the IRIS subject line.
type Subject struct {
	// Version is the 6-character VVVVVV field; "" writes the "IR/…" form.
	Version    string
	Emitter    string // émetteur number, 14 characters (zero-padded left when shorter)
	Compostage string // YYYYMMDDHHMMSS + 5-digit counter (19 characters)
	Invoices   int    // number of invoices in the file, 0..99999
}

// String formats the subject, or returns "" when a field does not fit (see
// Format for the error).
func (s Subject) String() string {
	v, _ := s.Format()
	return v
}

// Format formats the subject.
func (s Subject) Format() (string, error) {
	if s.Version != "" && len(s.Version) != 6 {
		return "", fmt.Errorf("%w: version %q is not 6 characters", ErrSubject, s.Version)
	}
	em, err := PadEmitter(s.Emitter)
	if err != nil {
		return "", err
	}
	if len(s.Compostage) != 19 || !digits(s.Compostage) {
		return "", fmt.Errorf("%w: compostage %q is not 19 digits", ErrSubject, s.Compostage)
	}
	if s.Invoices < 0 || s.Invoices > 99999 {
		return "", fmt.Errorf("%w: %d invoices do not fit 5 digits", ErrSubject, s.Invoices)
	}
	return fmt.Sprintf("IR%s/%s/%s/%05d", s.Version, em, s.Compostage, s.Invoices), nil
}

// PadEmitter returns the 14-character émetteur of the subject: digits and
// upper-case letters only, zero-padded on the left (a 9-digit FINESS gives
// 00000 + FINESS, as Calebasse writes).
func PadEmitter(e string) (string, error) {
	e = strings.TrimSpace(e)
	if e == "" || len(e) > 14 {
		return "", fmt.Errorf("%w: émetteur %q must be 1 to 14 characters", ErrSubject, e)
	}
	for i := 0; i < len(e); i++ {
		c := e[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return "", fmt.Errorf("%w: émetteur %q has a character other than 0-9 A-Z", ErrSubject, e)
		}
	}
	return strings.Repeat("0", 14-len(e)) + e, nil
}

// ParseSubject reads an IRIS subject, with or without the VVVVVV field.
func ParseSubject(v string) (Subject, error) {
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, "IR") {
		return Subject{}, fmt.Errorf("%w: %q does not start with IR", ErrSubject, v)
	}
	f := strings.Split(v[2:], "/")
	if len(f) != 4 {
		return Subject{}, fmt.Errorf("%w: %q has %d fields, want 4", ErrSubject, v, len(f))
	}
	if f[0] != "" && len(f[0]) != 6 {
		return Subject{}, fmt.Errorf("%w: version %q", ErrSubject, f[0])
	}
	if len(f[1]) != 14 || len(f[2]) != 19 || !digits(f[2]) || len(f[3]) != 5 || !digits(f[3]) {
		return Subject{}, fmt.Errorf("%w: %q", ErrSubject, v)
	}
	n, _ := strconv.Atoi(f[3])
	return Subject{Version: f[0], Emitter: f[1], Compostage: f[2], Invoices: n}, nil
}

// Compostage formats the 19-character "date de compostage": the time as
// YYYYMMDDHHMMSS followed by a 5-digit counter (taken modulo 100000).
func Compostage(t time.Time, counter uint64) string {
	return t.Format("20060102150405") + fmt.Sprintf("%05d", counter%100000)
}

// Description is the Content-Description of a B2 part: IRIS/B2 or
// IRISTEST/B2, with /Z when the part is gzipped.
func Description(test, compressed bool) string {
	d := "IRIS/B2"
	if test {
		d = "IRISTEST/B2"
	}
	if compressed {
		d += "/Z"
	}
	return d
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
