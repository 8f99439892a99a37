package certificate

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/nir"
)

func validate(t *testing.T, b []byte) *Report {
	t.Helper()
	r, err := Validate(bytes.NewReader(b), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func codes(r *Report) []fixed.Code {
	var cs []fixed.Code
	for _, e := range r.Errors {
		if !slices.Contains(cs, e.Code) {
			cs = append(cs, e.Code)
		}
	}
	return cs
}

// equalCert compares two certificates; Issued as an instant.
func equalCert(a, b *Certificate) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	if !x.Issued.Equal(y.Issued) {
		return false
	}
	x.Issued, y.Issued = time.Time{}, time.Time{}
	if (x.Incapacity == nil) != (y.Incapacity == nil) || x.Incapacity != nil && *x.Incapacity != *y.Incapacity {
		return false
	}
	x.Incapacity, y.Incapacity = nil, nil
	return x == y
}

func TestGeneratedCertificatesAreValid(t *testing.T) {
	for _, b := range append([]Benefit{""}, Benefits...) {
		for seed := uint64(0); seed < 40; seed++ {
			for _, fhir := range []bool{false, true} {
				out := Generate(GenOptions{Seed: seed, Benefit: b, FHIR: fhir})
				r := validate(t, out)
				want := EncodingJSON
				if fhir {
					want = EncodingFHIR
				}
				if !r.Valid || r.Encoding != want {
					t.Fatalf("seed %d %s fhir=%v: valid=%v encoding=%q %v\n%s", seed, b, fhir, r.Valid, r.Encoding, r.Errors, out)
				}
				if !bytes.Equal(out, Generate(GenOptions{Seed: seed, Benefit: b, FHIR: fhir})) {
					t.Fatal("Generate is not deterministic")
				}
			}
		}
	}
}

// JSON → Certificate → FHIR → Certificate: equal, and each Marshal output
// validates again to the same certificate and the same bytes.
func TestRoundTripJSONFHIR(t *testing.T) {
	for seed := uint64(0); seed < 60; seed++ {
		j := Generate(GenOptions{Seed: seed})
		r1 := validate(t, j)
		if !r1.Valid {
			t.Fatalf("seed %d: %v", seed, r1.Errors)
		}
		f, err := MarshalFHIR(r1.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		r2 := validate(t, f)
		if !r2.Valid || r2.Encoding != EncodingFHIR {
			t.Fatalf("seed %d: FHIR output invalid: %v\n%s", seed, r2.Errors, f)
		}
		if !equalCert(r1.Certificate, r2.Certificate) {
			t.Fatalf("seed %d: JSON → FHIR changed the certificate:\n%+v\n%+v", seed, r1.Certificate, r2.Certificate)
		}
		if !equalCert(r2.Certificate, GenCertificate(GenOptions{Seed: seed})) {
			t.Fatalf("seed %d: read certificate differs from the generated one", seed)
		}
		j2, err := MarshalJSON(r2.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(j, j2) {
			t.Fatalf("seed %d: JSON → FHIR → JSON not identical:\n%s\n%s", seed, j, j2)
		}
		f2, _ := MarshalFHIR(validate(t, f).Certificate)
		if !bytes.Equal(f, f2) {
			t.Fatalf("seed %d: FHIR encoding not stable", seed)
		}
	}
}

func TestEachFaultGivesItsCode(t *testing.T) {
	for _, f := range Faults {
		for _, fhir := range []bool{false, true} {
			for _, b := range Benefits {
				for seed := uint64(1); seed < 6; seed++ {
					out := Generate(GenOptions{Seed: seed, FHIR: fhir, Benefit: b, Fault: f})
					r := validate(t, out)
					if got := codes(r); len(got) != 1 || got[0] != f {
						t.Fatalf("fault %s fhir=%v %s seed %d: got %v\n%s", f, fhir, b, seed, r.Errors, trim(out))
					}
				}
			}
		}
	}
}

func trim(b []byte) []byte {
	if len(b) > 4000 {
		return b[:4000]
	}
	return b
}

func TestFHIRFindingsCarryFHIRPaths(t *testing.T) {
	cases := []struct {
		fault fixed.Code
		field string
	}{
		{ErrDiagnosis, "Bundle.entry[4].resource.code.coding[0].code"},
		{ErrCodeSystem, "Bundle.entry[4].resource.code.coding[0].system"},
		{nir.ErrKey, "Bundle.entry[1].resource.identifier[0].value"},
		{ErrRequired, "Bundle.entry[2].resource.name[0].family"},
		{ErrSpecialty, "Bundle.entry[2].resource.qualification[0].code.coding[0].code"},
		{ErrDate, "Bundle.entry[3].resource.period.start"},
		{ErrExtension, "Bundle.entry[0].resource.extension[2].extension('extends').valueString"},
		{ErrIncapacity, "Bundle.entry[0].resource.extension[2].extension[1].valueCode"},
		{ErrForbidden, "Bundle.entry[0].resource.extension[3].valueDate"},
		{ErrInsurer, "Bundle.entry[0].resource.extension[0].valueString"},
		{ErrID, "Bundle.identifier.value"},
		{ErrReference, "Bundle.entry[0].resource.subject.reference"},
		{ErrModifierExt, "Bundle.entry[1].resource.modifierExtension"},
		{ErrJSONType, "Bundle.entry[1].resource.birthDate"},
		{ErrVersion, "Bundle.meta.profile"},
	}
	for _, tc := range cases {
		r := validate(t, Generate(GenOptions{Seed: 3, FHIR: true, Benefit: BenefitSickness, Fault: tc.fault}))
		if len(r.Errors) != 1 || r.Errors[0].Field != tc.field {
			t.Errorf("%s: %v, want field %s", tc.fault, r.Errors, tc.field)
		}
	}
}

const handJSON = `{
  "version": "oct-cert/1",
  "id": "AT-2026-000123",
  "issued": "2026-03-02T10:15:00+01:00",
  "insurer": "SSA01",
  "benefit": "sickness",
  "patient": {"nir": "184127512345678", "family": "DURAND", "given": "Camille", "birth_date": "1984-12-03"},
  "practitioner": {"id": "123456782", "family": "MARTIN", "given": "Alix", "specialty": "01"},
  "visit_date": "2026-03-02",
  "diagnosis": {"system": "http://hl7.org/fhir/sid/icd-10", "code": "J11.1", "text": "Grippe"},
  "incapacity": {"from": "2026-03-02", "to": "2026-03-08", "kind": "initial"}
}`

func TestHandWrittenExample(t *testing.T) {
	nirOK := "184127512345678"
	k, _ := nir.Key(nirOK[:13])
	nirOK = fmt.Sprintf("%s%02d", nirOK[:13], k)
	doc := strings.Replace(handJSON, "184127512345678", nirOK, 1)
	r := validate(t, []byte(doc))
	if !r.Valid {
		t.Fatalf("%v", r.Errors)
	}
	c := r.Certificate
	if c.Incapacity.Days() != 7 || c.Benefit != BenefitSickness || c.Issued.UTC().Hour() != 9 {
		t.Fatalf("%+v", c)
	}

	// Seven faults at once, each reported at its path, nothing personal echoed.
	bad := strings.NewReplacer(
		`"SSA01"`, `"ssa 01"`,
		`"123456782"`, `"123456789"`,
		`"1984-12-03"`, `"2026-03-05"`,
		`"J11.1"`, `"J11."`,
		`"to": "2026-03-08"`, `"to": "2026-02-08"`,
		`"kind": "initial"`, `"kind": "initial", "extends": "AT-1"`,
		`"given": "Camille",`, `"given": "Camille", "sex": "F",`,
	).Replace(handJSON)
	r = validate(t, []byte(bad))
	want := map[string]fixed.Code{
		"insurer":            ErrInsurer,
		"practitioner.id":    ErrPractitioner,
		"patient.birth_date": ErrDateOrder,
		"diagnosis.code":     ErrDiagnosis,
		"incapacity.to":      ErrIncapacity,
		"incapacity.extends": ErrExtension,
		"patient.sex":        ErrUnknownField,
		"patient.nir":        nir.ErrKey,
	}
	got := map[string]fixed.Code{}
	for _, e := range r.Errors {
		got[e.Field] = e.Code
		msg := e.Error()
		for _, secret := range []string{"184127512345678", "1841275123456", "DURAND", "Camille", "Grippe", "1984", "2026-03-05"} {
			if strings.Contains(msg, secret) {
				t.Errorf("finding echoes personal data: %s", msg)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v", r.Errors)
	}
	for f, c := range want {
		if got[f] != c {
			t.Errorf("%s: got %q, want %s (all: %v)", f, got[f], c, r.Errors)
		}
	}
}

func mustCert(t *testing.T, mod func(c *Certificate)) *Report {
	t.Helper()
	c := GenCertificate(GenOptions{Seed: 7, Benefit: BenefitWorkAccident, IncapacityDays: 10})
	c.Incapacity.Kind, c.Incapacity.Extends = KindInitial, ""
	mod(c)
	b, err := MarshalJSON(c)
	if err != nil {
		t.Fatal(err)
	}
	return validate(t, b)
}

func TestDateAndBenefitRules(t *testing.T) {
	day := func(s string, d int) string {
		x, _ := parseDate(s)
		return x.AddDate(0, 0, d).Format(time.DateOnly)
	}
	cases := []struct {
		name string
		mod  func(c *Certificate)
		want []fixed.Code // nil = valid
	}{
		{"as generated", func(c *Certificate) {}, nil},
		{"backdated by the tolerance", func(c *Certificate) { c.Incapacity.From = day(c.VisitDate, -BackdateDays) }, nil},
		{"backdated beyond", func(c *Certificate) { c.Incapacity.From = day(c.VisitDate, -BackdateDays-1) }, []fixed.Code{ErrDateOrder}},
		{"visit a day after issue", func(c *Certificate) {
			c.VisitDate = day(c.VisitDate, 1)
			c.Incapacity.From, c.AccidentDate = c.VisitDate, c.VisitDate
		}, nil},
		{"visit two days after issue", func(c *Certificate) {
			c.VisitDate = day(c.VisitDate, 2)
			c.Incapacity.From, c.AccidentDate = c.VisitDate, c.VisitDate
		}, []fixed.Code{ErrDateOrder}},
		{"365 days", func(c *Certificate) { c.Incapacity.To = day(c.Incapacity.From, MaxIncapacityDays-1) }, nil},
		{"366 days", func(c *Certificate) { c.Incapacity.To = day(c.Incapacity.From, MaxIncapacityDays) }, []fixed.Code{ErrIncapacity}},
		{"one day", func(c *Certificate) { c.Incapacity.To = c.Incapacity.From }, nil},
		{"reversed", func(c *Certificate) { c.Incapacity.To = day(c.Incapacity.From, -1) }, []fixed.Code{ErrIncapacity}},
		{"extension names its certificate", func(c *Certificate) { c.Incapacity.Kind, c.Incapacity.Extends = KindExtension, "AT-2025-1" }, nil},
		{"extension of itself", func(c *Certificate) { c.Incapacity.Kind, c.Incapacity.Extends = KindExtension, c.ID }, []fixed.Code{ErrExtension}},
		{"work accident without period", func(c *Certificate) { c.Incapacity = nil }, []fixed.Code{ErrRequired}},
		{"work accident without accident date", func(c *Certificate) { c.AccidentDate = "" }, []fixed.Code{ErrRequired}},
		{"accident after visit", func(c *Certificate) { c.AccidentDate = day(c.VisitDate, 1) }, []fixed.Code{ErrDateOrder}},
		{"accident too old", func(c *Certificate) { c.AccidentDate = day(c.VisitDate, -MaxAccidentAge-1) }, []fixed.Code{ErrDateOrder}},
		{"invalidity with period", func(c *Certificate) { c.Benefit, c.AccidentDate = BenefitInvalidity, "" }, []fixed.Code{ErrForbidden}},
		{"invalidity without period", func(c *Certificate) { c.Benefit, c.AccidentDate, c.Incapacity = BenefitInvalidity, "", nil }, nil},
		{"maternity without diagnosis or period", func(c *Certificate) {
			c.Benefit, c.AccidentDate, c.Incapacity, c.Diagnosis = BenefitMaternity, "", nil, Diagnosis{}
		}, nil},
		{"sickness without diagnosis", func(c *Certificate) { c.Benefit, c.AccidentDate, c.Diagnosis = BenefitSickness, "", Diagnosis{} }, []fixed.Code{ErrRequired}},
		{"diagnosis without system", func(c *Certificate) { c.Diagnosis.System = "" }, []fixed.Code{ErrRequired}},
		{"icd-10 three characters", func(c *Certificate) { c.Diagnosis.Code = "G35" }, nil},
		{"icd-10 lower case", func(c *Certificate) { c.Diagnosis.Code = "j11.1" }, []fixed.Code{ErrDiagnosis}},
		{"born on the visit day", func(c *Certificate) { c.Patient.BirthDate = c.VisitDate }, []fixed.Code{ErrDateOrder}},
		{"Corsican NIR", func(c *Certificate) {
			n := c.Patient.NIR[:5] + "2A" + c.Patient.NIR[7:13]
			k, _ := nir.Key(n)
			c.Patient.NIR = fmt.Sprintf("%s%02d", n, k)
		}, nil},
		{"NIR with blanks", func(c *Certificate) {
			n := c.Patient.NIR
			c.Patient.NIR = n[:1] + " " + n[1:3] + " " + n[3:5] + " " + n[5:7] + " " + n[7:10] + " " + n[10:13] + " " + n[13:]
		}, nil},
		{"long name", func(c *Certificate) { c.Patient.Family = strings.Repeat("É", MaxNameLen) }, []fixed.Code{ErrFieldTooLong}},
		{"bad visit number", func(c *Certificate) { c.VisitNumber = "V 1" }, []fixed.Code{ErrID}},
		{"no issue time", func(c *Certificate) { c.Issued = time.Time{} }, []fixed.Code{ErrRequired}},
	}
	for _, tc := range cases {
		r := mustCert(t, tc.mod)
		if got := codes(r); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v", tc.name, r.Errors)
		}
	}
}

func TestNotACertificate(t *testing.T) {
	jpeg := append([]byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"), bytes.Repeat([]byte{0x80, 0x00, 0xff}, 100)...)
	for name, in := range map[string][]byte{
		"jpeg": jpeg, "empty": nil, "array": []byte(`[1,2]`), "string": []byte(`"x"`),
		"two objects": []byte(`{} {}`), "utf-16 bom": []byte("\xff\xfe{\x00}\x00"),
	} {
		r := validate(t, in)
		if r.Valid || len(r.Errors) != 1 || r.Errors[0].Code != ErrJSONSyntax || r.Certificate != nil || r.Encoding != "" {
			t.Errorf("%s: %+v", name, r)
		}
	}
	r := validate(t, []byte(`{"resourceType":"Patient"}`))
	if got := codes(r); !slices.Equal(got, []fixed.Code{ErrEncoding}) {
		t.Errorf("patient: %v", r.Errors)
	}
	r = validate(t, []byte(`{}`))
	if r.Valid || r.Encoding != EncodingJSON || !r.Has(ErrVersion) || !r.Has(ErrRequired) {
		t.Errorf("{}: %+v", r)
	}
	r = validate(t, []byte(`{"resourceType":"Bundle","type":"document","entry":[]}`))
	if r.Valid || r.Encoding != EncodingFHIR || !r.Has(ErrFHIR) {
		t.Errorf("empty bundle: %+v", r)
	}
}

func TestErrorCapAndSize(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"version":"oct-cert/1"`)
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, `,"x%d":1`, i)
	}
	b.WriteString(`}`)
	r, err := Validate(strings.NewReader(b.String()), Options{MaxErrors: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Errors) != 10 || r.Dropped == 0 || r.Valid {
		t.Fatalf("%d errors, %d dropped", len(r.Errors), r.Dropped)
	}
	small := Generate(GenOptions{Seed: 1})
	r, _ = Validate(bytes.NewReader(small), Options{MaxBytes: int64(len(small) - 1)})
	if !slices.Equal(codes(r), []fixed.Code{ErrTooLarge}) {
		t.Fatalf("%v", r.Errors)
	}
	r, _ = Validate(bytes.NewReader(small), Options{MaxBytes: int64(len(small))})
	if !r.Valid {
		t.Fatalf("at the limit: %v", r.Errors)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestIOErrorIsTheOnlyError(t *testing.T) {
	if _, err := Validate(failingReader{}, Options{}); err == nil {
		t.Fatal("I/O error swallowed")
	}
}

func TestFindingsAreFixedErrors(t *testing.T) {
	r := validate(t, Generate(GenOptions{Seed: 2, Fault: nir.ErrKey}))
	e := r.Errors[0]
	if !errors.Is(&e, nir.ErrKey) || errors.Is(&e, nir.ErrSyntax) {
		t.Fatal("errors.Is on a finding")
	}
}
