package noemie

import (
	"bytes"
	"reflect"
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
