package noemie

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// expected fills what Read derives from the batches: the invoices' context
// fields, payment indexes, record numbers and reject warnings.
func expected(batches []PaymentBatch, f *File) []Invoice {
	var out []Invoice
	for pi, b := range batches {
		for _, inv := range b.Invoices {
			inv.Mandataire, inv.Destinataire = b.Payment.Mandataire, b.Payment.Destinataire
			inv.AccountingDate, inv.PaymentRef, inv.Payment = b.Payment.AccountingDate, b.Payment.Ref, pi
			inv.Rejects = append([]Reject(nil), inv.Rejects...)
			for i := range inv.Rejects {
				inv.Rejects[i].Warning = inv.warningFor(&inv.Rejects[i])
			}
			if len(inv.Rejects) == 0 {
				inv.Rejects = nil
			}
			inv.Record = f.Invoices[len(out)].Record
			out = append(out, inv)
		}
	}
	return out
}

func TestRoundTripTypedAndBytes(t *testing.T) {
	forms := []WriteOptions{{}, {LineBreaks: true}, {LengthPrefix: true}, {LengthPrefix: true, LineBreaks: true},
		{ZeroSums: true}, {LengthPrefix: true, ZeroSums: true}}
	for _, form := range forms {
		in := sampleBatches()
		var buf bytes.Buffer
		if err := Write(&buf, sampleHeader, in, form); err != nil {
			t.Fatalf("%+v: %v", form, err)
		}
		f, err := Read(bytes.NewReader(buf.Bytes()), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !f.Valid || len(f.Errors) != 0 {
			t.Fatalf("%+v: not valid: %v", form, f.Errors)
		}
		if f.Form != form {
			t.Errorf("form read %+v, written %+v", f.Form, form)
		}
		if f.Header != sampleHeader {
			t.Errorf("header %+v", f.Header)
		}
		if f.Stats != (Stats{Records: 29, Lots: 1, Invoices: 3}) {
			t.Errorf("stats %+v", f.Stats)
		}
		if got, want := f.Invoices, expected(in, f); !reflect.DeepEqual(got, want) {
			t.Errorf("%+v: invoices\n got %+v\nwant %+v", form, got, want)
		}
		pays := f.Batches()
		for i := range pays {
			if pays[i].Payment.Record == 0 {
				t.Errorf("payment %d without record", i)
			}
			pays[i].Payment.Record = 0
			if pays[i].Payment != in[i].Payment {
				t.Errorf("payment %d: %+v", i, pays[i].Payment)
			}
		}
		var again bytes.Buffer
		if err := Write(&again, f.Header, f.Batches(), f.WriteOptions()); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), buf.Bytes()) {
			t.Errorf("%+v: write(read(b)) != b\n%s\n%s", form, again.Bytes(), buf.Bytes())
		}
	}
}

// TestWriteRefuses: values that cannot be written as given are errors,
// never truncated or silently reshaped.
func TestWriteRefuses(t *testing.T) {
	cases := map[string]func(b []PaymentBatch){
		"short mandataire":  func(b []PaymentBatch) { b[0].Payment.Mandataire = "123" },
		"label too long":    func(b []PaymentBatch) { b[0].Payment.Ref = strings.Repeat("X", 33) },
		"at sign in label":  func(b []PaymentBatch) { b[0].Payment.Label2 = "A@B" },
		"accent":            func(b []PaymentBatch) { b[0].Payment.Payer = "CAF\xc9" },
		"trailing blank":    func(b []PaymentBatch) { b[0].Invoices[0].Number = "12 " },
		"return type":       func(b []PaymentBatch) { b[0].Invoices[0].ReturnType = "1" },
		"lot number":        func(b []PaymentBatch) { b[0].Invoices[0].LotNumber = 1000 },
		"negative request":  func(b []PaymentBatch) { b[0].Invoices[0].AMO.Requested = -1 },
		"paid too large":    func(b []PaymentBatch) { b[0].Invoices[0].AMO.Paid = 1e8 },
		"AMC number on AMO": func(b []PaymentBatch) { b[0].Invoices[0].AMO.AMCNumber = "0000000001" },
		"reject entity":     func(b []PaymentBatch) { b[0].Invoices[1].Rejects[0].Entity = "291" },
		"290 with level A": func(b []PaymentBatch) {
			b[1].Invoices[0].Rejects[0].Level = 'A'
		},
		"290 line": func(b []PaymentBatch) { b[1].Invoices[0].Rejects[0].Line = 100 },
		"state":    func(b []PaymentBatch) { b[0].Invoices[0].AMO.State = 0xff },
	}
	for name, mutate := range cases {
		b := sampleBatches()
		mutate(b)
		if err := Write(&bytes.Buffer{}, sampleHeader, b, WriteOptions{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	h := sampleHeader
	h.Message = "CAF\xc9"
	if err := Write(&bytes.Buffer{}, h, sampleBatches(), WriteOptions{}); err == nil {
		t.Error("header accent accepted")
	}
}
