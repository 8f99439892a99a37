package certificate

import (
	"bytes"
	"testing"
)

func FuzzValidate(f *testing.F) {
	for _, fhir := range []bool{false, true} {
		for i, b := range Benefits {
			f.Add(Generate(GenOptions{Seed: uint64(i), FHIR: fhir, Benefit: b}))
		}
		for i, c := range Faults {
			if c != ErrTooLarge {
				f.Add(Generate(GenOptions{Seed: uint64(i), FHIR: fhir, Fault: c}))
			}
		}
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"resourceType":"Bundle"}`))
	f.Add([]byte("\xff\xd8\xff\xe0\x00\x10JFIF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Validate(bytes.NewReader(b), Options{MaxErrors: 50})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Errors) > 50 {
			t.Fatalf("%d errors", len(r.Errors))
		}
		if !r.Valid {
			return
		}
		// A valid certificate survives both encodings unchanged.
		j, err := MarshalJSON(r.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		rj, _ := Validate(bytes.NewReader(j), Options{})
		if !rj.Valid || !equalCert(r.Certificate, rj.Certificate) {
			t.Fatalf("JSON re-encoding: %v\n%s", rj.Errors, j)
		}
		fh, err := MarshalFHIR(r.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		rf, _ := Validate(bytes.NewReader(fh), Options{})
		if !rf.Valid || !equalCert(r.Certificate, rf.Certificate) {
			t.Fatalf("FHIR re-encoding: %v\n%+v\n%+v", rf.Errors, r.Certificate, rf.Certificate)
		}
	})
}
