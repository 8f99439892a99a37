package pec

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/octgw/oct/formats/fixed"
)

func validate(t *testing.T, b []byte) *Report {
	t.Helper()
	r, err := Validate(bytes.NewReader(b), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestGeneratedValid(t *testing.T) {
	cases := []GenOptions{{Kind: KindRequest}, {Kind: KindStatus}, {Kind: KindCancel}}
	for _, s := range Statuses {
		cases = append(cases, GenOptions{Kind: KindAnswer, Status: s})
	}
	for _, o := range cases {
		for seed := uint64(0); seed < 50; seed++ {
			o.Seed = seed
			b := Generate(o)
			r := validate(t, b)
			if !r.Valid {
				t.Fatalf("%+v: %v\n%s", o, r.Errors, b)
			}
			if r.Kind != GenMessage(o).Kind {
				t.Fatalf("kind %q", r.Kind)
			}
			// round trip: decode → encode gives the same bytes
			again, err := Marshal(r.Message)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("round trip differs:\n%s\n%s", b, again)
			}
			if !reflect.DeepEqual(r.Message, GenMessage(o)) {
				t.Fatalf("decoded message differs")
			}
		}
	}
	if !bytes.Equal(Generate(GenOptions{Seed: 7}), Generate(GenOptions{Seed: 7})) {
		t.Fatal("not deterministic")
	}
}

func TestFaults(t *testing.T) {
	for _, f := range Faults {
		t.Run(string(f), func(t *testing.T) {
			for seed := uint64(0); seed < 20; seed++ {
				r := validate(t, Generate(GenOptions{Seed: seed, Fault: f}))
				if r.Valid || !r.Has(f) {
					t.Fatalf("seed %d: want %s, got %v", seed, f, r.Errors)
				}
				for _, e := range r.Errors {
					if e.Code != f {
						t.Fatalf("seed %d: extra finding %v", seed, &e)
					}
					if !errors.Is(&e, f) {
						t.Fatal("errors.Is")
					}
				}
			}
		})
	}
}

func TestCollectsAll(t *testing.T) {
	b := []byte(`{"version":"oct-pec/1","kind":"request","request":{
	"pec_id":"Q1","created":"2026-01-01T10:00:00Z","amc":"123","member_id":"M1",
	"beneficiary":{"birth_date":"1980-13-01","rank":1,"nir_hash":"1841275123456"},
	"practitioner":{"id":"123456789","id_type":"am","specialty":"64"},
	"quote_date":"2026-01-01",
	"lines":[{"code":"A1","label":"X","quantity":2,"unit_price_cents":100,"total_cents":150},
	         {"code":"A2","label":"Y","quantity":1,"unit_price_cents":-5,"total_cents":0, "extra": true}],
	"totals":{"total_cents":150,"amo_cents":0,"amc_requested_cents":100,"patient_cents":50}}}`)
	r := validate(t, b)
	want := map[string]fixed.Code{
		"request.amc":                       ErrAMCNumber,
		"request.beneficiary.birth_date":    ErrDate,
		"request.beneficiary.nir_hash":      ErrNIRNotHashed,
		"request.practitioner.id":           ErrPractitioner,
		"request.lines[0].total_cents":      ErrLineTotal,
		"request.lines[1].unit_price_cents": ErrAmount,
		"request.lines[1].extra":            ErrUnknownField,
	}
	got := map[string]fixed.Code{}
	for _, e := range r.Errors {
		got[e.Field] = e.Code
		if strings.Contains(e.Message, "1841275123456") {
			t.Fatal("NIR echoed in a message")
		}
	}
	for f, c := range want {
		if got[f] != c {
			t.Errorf("%s: want %s, got %q (all: %v)", f, c, got[f], r.Errors)
		}
	}
	for _, e := range r.Errors {
		if e.Field == "request.lines[0].total_cents" && e.Record != 1 {
			t.Errorf("record %d", e.Record)
		}
	}
}

func TestPECNumberAndLinkKey(t *testing.T) {
	for _, c := range []struct {
		in   string
		key  string
		ok   bool
		used bool
	}{
		{"PEC0000000012345", "PEC0000000012345", true, true},
		{"pec0000000012345", "PEC0000000012345", true, false},
		{"  PEC0000000012345 ", "PEC0000000012345", true, false},
		{"                ", "", false, false},
		{"0000000000000000", "", false, false},
		{"PEC000000001234", "", false, false},
		{"PEC00000000123-5", "", false, false},
		{"", "", false, false},
	} {
		k, ok := LinkKey(c.in)
		if k != c.key || ok != c.ok {
			t.Errorf("LinkKey(%q) = %q %v", c.in, k, ok)
		}
		if PECNumberValid(c.in) != c.used {
			t.Errorf("PECNumberValid(%q)", c.in)
		}
	}
}

func TestPractitionerID(t *testing.T) {
	if !PractitionerIDValid("750000010") && !PractitionerIDValid("750000011") {
		t.Skip()
	}
	if PractitionerIDValid("12345678") || PractitionerIDValid("12345678A") {
		t.Fatal("shape")
	}
	if !PractitionerIDValid("2A0000010") {
		t.Fatal("corsica")
	}
	id := "12345678"
	if !PractitionerIDValid(id + string(luhnKey(id))) {
		t.Fatal("luhn")
	}
}

func TestTooLargeStopsEarly(t *testing.T) {
	r, err := Validate(strings.NewReader(strings.Repeat(" ", 100)), Options{MaxBytes: 10})
	if err != nil || !r.Has(ErrTooLarge) || len(r.Errors) != 1 {
		t.Fatal(r.Errors, err)
	}
}
