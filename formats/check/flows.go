package check

// Validators of the flows beside B2: medical certificates (oct-cert/1 or
// our FHIR profile), OCT-PEC messages and SCOR PDF attachments, registered
// in validatorFor and detected by detectFlow.

import (
	"bytes"
	"context"
	"io"
	"strings"

	"github.com/octgw/oct/formats/certificate"
	"github.com/octgw/oct/formats/pec"
	"github.com/octgw/oct/formats/scor"
)

// Formats of the flows beside B2.
const (
	FormatCertificate = "certificate"
	FormatPEC         = "pec"
	FormatSCOR        = "scor"
)

// DetectFlow names a certificate, PEC message or SCOR attachment from its
// name and first bytes — the rule of the gateway's intake (docs/flows.md):
// *.pdf or %PDF- is SCOR; a JSON object (or *.json) is PEC when it says
// "oct-pec/1", else a certificate; "" when it is none of them.
func DetectFlow(name string, head []byte) string {
	lower := strings.ToLower(name)
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case strings.HasSuffix(lower, ".pdf") || bytes.HasPrefix(head, []byte("%PDF-")):
		return FormatSCOR
	case bytes.HasPrefix(trimmed, []byte("{")) || strings.HasSuffix(lower, ".json"):
		if bytes.Contains(head, []byte(`"`+pec.Version+`"`)) {
			return FormatPEC
		}
		return FormatCertificate
	}
	return ""
}

func validateCertificate(_ context.Context, r io.Reader, lim Limits) (Result, error) {
	rep, err := certificate.Validate(r, certificate.Options{MaxBytes: max(lim.MaxBytes, 0), MaxErrors: limitInt(lim.MaxErrors)})
	if err != nil {
		return Result{}, err
	}
	res := Result{Valid: rep.Valid, Errors: FromFixed(rep.Errors), Dropped: int64(rep.Dropped)}
	if rep.Valid {
		res.Stats.Records = 1
	}
	return res, nil
}

func validatePEC(_ context.Context, r io.Reader, lim Limits) (Result, error) {
	rep, err := pec.Validate(r, pec.Options{MaxBytes: max(lim.MaxBytes, 0), MaxErrors: limitInt(lim.MaxErrors)})
	if err != nil {
		return Result{}, err
	}
	res := Result{Valid: rep.Valid, Errors: FromFixed(rep.Errors), Dropped: rep.Dropped}
	if rep.Valid {
		res.Stats.Records = 1
	}
	return res, nil
}

// validateSCOR reads the PDF whole (pdfcpu needs random access), within
// the size limit, and checks it at the default resolution; Records is its
// page count.
func validateSCOR(_ context.Context, r io.Reader, lim Limits) (Result, error) {
	maxBytes := lim.MaxBytes
	if maxBytes == 0 {
		maxBytes = scor.DefaultMaxBytes
	}
	data, err := io.ReadAll(io.LimitReader(r, limit64(maxBytes)+1))
	if err != nil {
		return Result{}, err
	}
	opt := scor.Options{MaxBytes: limit64(maxBytes), MaxErrors: limitInt(lim.MaxErrors)}
	rep, err := scor.Check(bytes.NewReader(data), int64(len(data)), opt)
	if err != nil {
		return Result{}, err
	}
	return Result{Valid: rep.Valid, Errors: FromFixed(rep.Errors), Dropped: rep.Dropped, Stats: Stats{Records: int64(rep.Pages)}}, nil
}
