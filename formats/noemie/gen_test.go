package noemie

import (
	"bytes"
	"errors"
	"testing"
)

func TestGenerateValidAndDeterministic(t *testing.T) {
	opt := GenOptions{Seed: 7, Lots: 3, Invoices: 20, RejectRate: 0.2}
	var a, b, c bytes.Buffer
	if err := Generate(&a, opt); err != nil {
		t.Fatal(err)
	}
	Generate(&b, opt)
	opt.Seed = 8
	Generate(&c, opt)
	if !bytes.Equal(a.Bytes(), b.Bytes()) || bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Fatal("generator not deterministic per seed")
	}
	f, err := Read(bytes.NewReader(a.Bytes()), Options{})
	if err != nil || !f.Valid {
		t.Fatalf("%v %v", err, f.Errors)
	}
	if f.Stats.Invoices != 60 || len(f.Payments) != 3 || f.Stats.Lots != 1 {
		t.Fatalf("stats %+v payments %d", f.Stats, len(f.Payments))
	}
	rejected, warned := 0, 0
	for _, inv := range f.Invoices {
		if inv.Rejected() {
			rejected++
			if len(inv.Rejects) != 1 || inv.Rejects[0].Warning {
				t.Fatalf("rejected invoice %s without a reject", inv.Number)
			}
		} else if len(inv.Rejects) > 0 {
			warned++
			if !inv.Rejects[0].Warning {
				t.Fatalf("paid invoice %s with a non-warning", inv.Number)
			}
		}
	}
	if rejected == 0 || rejected > 25 || warned == 0 {
		t.Fatalf("rejected %d warned %d", rejected, warned)
	}
	var again bytes.Buffer
	if err := Write(&again, f.Header, f.Batches(), f.Form); err != nil || !bytes.Equal(again.Bytes(), a.Bytes()) {
		t.Fatalf("write(read(gen)) != gen: %v", err)
	}
}

// TestGenerateFaults: each injectable code comes out alone (no cascade), in
// two physical forms.
func TestGenerateFaults(t *testing.T) {
	for _, form := range []WriteOptions{{}, {LengthPrefix: true, LineBreaks: true}, {ZeroSums: true, LineBreaks: true}} {
		for _, code := range Faults {
			var buf bytes.Buffer
			if err := Generate(&buf, GenOptions{Seed: 3, Lots: 2, Invoices: 4, RejectRate: 0.3, Fault: code, Form: form}); err != nil {
				t.Fatal(err)
			}
			f, err := Read(bytes.NewReader(buf.Bytes()), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if f.Valid || len(f.Errors) != 1 || !errors.Is(&f.Errors[0], code) {
				t.Errorf("%+v %s: %v", form, code, f.Errors)
			}
		}
	}
	if err := Generate(&bytes.Buffer{}, GenOptions{Fault: ErrLimitBytes}); err == nil {
		t.Fatal("limit fault accepted")
	}
}
