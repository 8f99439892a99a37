package iris

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SCOR message (OUR design, docs/delivery.md "SCOR message"): the CdC SCOR
// (PDT-CDC-002/062) is not public. A SCOR lot travels like an IRIS/B2 lot
// (same S/MIME envelope, same detached-signature part) with:
//
//	Subject: SCOR/<émetteur:14>/<SCOR file id:6>/<lot:3>/<lot date YYMMDD>/<pages:5>
//	part:    application/EDI-consent; name="SCOR_<file id>.pdf", NOT gzipped
//	         (a scanned PDF's images are already compressed)
//	         Content-Description: IRIS/SCOR (IRISTEST/SCOR for test flows)
//
// The lot number and date are those of the B2 lot the attachment goes with;
// the caisse answers the SCOR lot with its own ARL carrying the émetteur,
// the SCOR file id, that lot number and date.

// SCORSubjectPrefix starts every SCOR subject.
const SCORSubjectPrefix = "SCOR/"

// SCORSubject is the subject line of a SCOR message.
type SCORSubject struct {
	Emitter   string    // émetteur, zero-padded left to 14
	FileID    string    // SCOR file id, 6 characters [0-9A-Z] (formats/scor.FileID)
	LotNumber int       // number of the accompanied B2 lot, 1..999
	LotDate   time.Time // its date
	Pages     int       // pages of the PDF, 0..99999
}

// Format formats the subject.
func (s SCORSubject) Format() (string, error) {
	em, err := PadEmitter(s.Emitter)
	if err != nil {
		return "", err
	}
	if len(s.FileID) != 6 || !alnumUpper(s.FileID) {
		return "", fmt.Errorf("%w: SCOR file id %q is not 6 characters [0-9A-Z]", ErrSubject, s.FileID)
	}
	if s.LotNumber < 1 || s.LotNumber > 999 {
		return "", fmt.Errorf("%w: lot number %d is not 1..999", ErrSubject, s.LotNumber)
	}
	if s.LotDate.IsZero() {
		return "", fmt.Errorf("%w: no lot date", ErrSubject)
	}
	if s.Pages < 0 || s.Pages > 99999 {
		return "", fmt.Errorf("%w: %d pages do not fit 5 digits", ErrSubject, s.Pages)
	}
	return fmt.Sprintf("%s%s/%s/%03d/%s/%05d", SCORSubjectPrefix, em, s.FileID, s.LotNumber, s.LotDate.Format("060102"), s.Pages), nil
}

// ParseSCORSubject reads a SCOR subject.
func ParseSCORSubject(v string) (SCORSubject, error) {
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, SCORSubjectPrefix) {
		return SCORSubject{}, fmt.Errorf("%w: %q does not start with %s", ErrSubject, v, SCORSubjectPrefix)
	}
	f := strings.Split(v[len(SCORSubjectPrefix):], "/")
	if len(f) != 5 || len(f[0]) != 14 || !alnumUpper(f[0]) || len(f[1]) != 6 || !alnumUpper(f[1]) ||
		len(f[2]) != 3 || !digits(f[2]) || len(f[3]) != 6 || !digits(f[3]) || len(f[4]) != 5 || !digits(f[4]) {
		return SCORSubject{}, fmt.Errorf("%w: %q is not a SCOR subject", ErrSubject, v)
	}
	d, err := time.Parse("060102", f[3])
	if err != nil {
		return SCORSubject{}, fmt.Errorf("%w: lot date %q", ErrSubject, f[3])
	}
	lot, _ := strconv.Atoi(f[2])
	pages, _ := strconv.Atoi(f[4])
	return SCORSubject{Emitter: f[0], FileID: f[1], LotNumber: lot, LotDate: d, Pages: pages}, nil
}

// SCORDescription is the Content-Description of a SCOR part: IRIS/SCOR or
// IRISTEST/SCOR (no /Z: the PDF is not gzipped).
func SCORDescription(test bool) string {
	if test {
		return "IRISTEST/SCOR"
	}
	return "IRIS/SCOR"
}

// IsSCORDescription reports whether a Content-Description marks a SCOR part.
func IsSCORDescription(d string) bool {
	d = strings.ToUpper(strings.TrimSpace(d))
	return strings.HasPrefix(d, "IRIS/SCOR") || strings.HasPrefix(d, "IRISTEST/SCOR")
}

func alnumUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return s != ""
}
