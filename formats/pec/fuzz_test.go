package pec

import (
	"bytes"
	"testing"
)

func FuzzValidate(f *testing.F) {
	for _, k := range Kinds {
		f.Add(Generate(GenOptions{Seed: 1, Kind: k}))
	}
	for _, c := range Faults {
		if c != ErrTooLarge {
			f.Add(Generate(GenOptions{Seed: 2, Fault: c}))
		}
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"version":"oct-pec/1","kind":"answer","answer":{"status":"refusal"}}`))
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
		// A valid message survives encode → validate unchanged.
		out, err := Marshal(r.Message)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := Validate(bytes.NewReader(out), Options{})
		if err != nil || !r2.Valid {
			t.Fatalf("re-encoded message invalid: %v\n%s", r2.Errors, out)
		}
		out2, _ := Marshal(r2.Message)
		if !bytes.Equal(out, out2) {
			t.Fatalf("encoding not stable:\n%s\n%s", out, out2)
		}
	})
}
