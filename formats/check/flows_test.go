package check

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/octgw/oct/formats/certificate"
	"github.com/octgw/oct/formats/pec"
	"github.com/octgw/oct/formats/scor"
)

// TestFlows: certificates (JSON and FHIR), PEC messages and SCOR PDFs are
// detected and validated like the other formats, with their codes and
// paths; a JPEG named .pdf is checked as SCOR and refused.
func TestFlows(t *testing.T) {
	ctx := context.Background()
	pdf, err := scor.Generate(scor.GenOptions{Seed: 1, Pages: 2})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, format string
		data         []byte
		valid        bool
		code         string
		records      int64
	}{
		{"cert.json", FormatCertificate, certificate.Generate(certificate.GenOptions{Seed: 1}), true, "", 1},
		{"cert.fhir", FormatCertificate, certificate.Generate(certificate.GenOptions{Seed: 2, FHIR: true}), true, "", 1},
		{"bad.json", FormatCertificate, certificate.Generate(certificate.GenOptions{Seed: 3, FHIR: true, Fault: certificate.ErrDateOrder}), false, string(certificate.ErrDateOrder), 0},
		{"q.json", FormatPEC, pec.Generate(pec.GenOptions{Seed: 1}), true, "", 1},
		{"q2.json", FormatPEC, pec.Generate(pec.GenOptions{Seed: 2, Fault: pec.ErrTotals}), false, string(pec.ErrTotals), 0},
		{"scan", FormatSCOR, pdf, true, "", 2},
		{"photo.pdf", FormatSCOR, scor.GenerateJPEG(), false, string(scor.ErrNotPDF), 0},
	}
	for _, c := range cases {
		res, err := File(ctx, bytes.NewReader(c.data), c.name, FormatAuto, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if res.Format != c.format || res.Valid != c.valid || res.Stats.Records != c.records {
			t.Errorf("%s: %+v", c.name, res)
		}
		if c.code != "" && (len(res.Errors) == 0 || string(res.Errors[0].Code) != c.code) {
			t.Errorf("%s: errors %+v, want %s", c.name, res.Errors, c.code)
		}
	}
	// --format names them too; a B2 file is still B2.
	var out, errOut strings.Builder
	if code := Run(ctx, nil, RunOptions{Format: FormatSCOR}, &out, &errOut); code != ExitValid {
		t.Fatalf("--format scor refused: %d %s", code, errOut.String())
	}
	if f := DetectFlow("x.b2", []byte("000...")); f != "" {
		t.Fatalf("B2 detected as %q", f)
	}
}
