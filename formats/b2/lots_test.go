package b2

import (
	"bytes"
	"errors"
	"testing"
)

func TestExtractLot(t *testing.T) {
	for _, fr := range []Framing{FramingNone, FramingLF, FramingCRLF} {
		data := genFile(t, GenOptions{Seed: 7, Lots: 3, Invoices: 4, Framing: fr})
		full, _ := Validate(bytes.NewReader(data), Options{Summaries: true})
		for i := 0; i < 3; i++ {
			out, err := ExtractLot(data, i)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Validate(bytes.NewReader(out), Options{Summaries: true})
			if err != nil || !rep.Valid {
				t.Fatalf("%s lot %d: %v %v", fr, i, err, rep.Errors)
			}
			if rep.Stats.Lots != 1 || rep.Lots[0].Number != full.Lots[i].Number || len(rep.Lots[0].Invoices) != 4 || rep.Framing != fr {
				t.Fatalf("%s lot %d: %+v", fr, i, rep.Lots[0])
			}
			if rep.Lots[0].Invoices[2] != full.Lots[i].Invoices[2] {
				// FirstRecord differs; compare the rest
				a, b := rep.Lots[0].Invoices[2], full.Lots[i].Invoices[2]
				a.FirstRecord, b.FirstRecord = 0, 0
				if a != b {
					t.Fatalf("invoice summary %+v != %+v", a, b)
				}
			}
		}
		if _, err := ExtractLot(data, 3); !errors.Is(err, ErrLotNotFound) {
			t.Fatalf("lot 3: %v", err)
		}
	}
}

func TestRebuildLot(t *testing.T) {
	for _, variant := range []string{"CP", "PS"} {
		for _, fr := range []Framing{FramingNone, FramingLF, FramingCRLF} {
			data := genFile(t, GenOptions{Seed: 3, Lots: 2, Invoices: 5, Framing: fr, Variant: variant})
			full, _ := Validate(bytes.NewReader(data), Options{Summaries: true})
			invs := full.Lots[1].Invoices
			drop := []string{invs[1].Number, invs[3].Number}
			out, err := RebuildLot(data, 1, drop, 42)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Validate(bytes.NewReader(out), Options{Summaries: true})
			if err != nil || !rep.Valid {
				t.Fatalf("%s/%s: %v %v", variant, fr, err, rep.Errors)
			}
			l := rep.Lots[0]
			if l.Number != 42 || len(l.Invoices) != 3 || l.Invoices[0].Number != invs[0].Number || l.Invoices[1].Number != invs[2].Number {
				t.Fatalf("%+v", l)
			}
			var billed int64
			for _, in := range l.Invoices {
				billed += in.Billed
			}
			recs := bytes.Split(out, []byte(fr.Terminator()))
			if fr == FramingNone {
				recs = nil
				for i := 0; i+RecordLength <= len(out); i += RecordLength {
					recs = append(recs, out[i:i+RecordLength])
				}
			}
			t6 := recs[len(recs)-2]
			if fr != FramingNone {
				t6 = recs[len(recs)-3] // split leaves an empty tail
			}
			if a, _ := t6Amount1.Int(t6); t6[0] != '6' || a != billed {
				t.Fatalf("%s/%s: type 6 amount %d, kept invoices bill %d (%q)", variant, fr, a, billed, t6[:20])
			}
			if _, err := RebuildLot(data, 1, []string{"999999999"}, 42); !errors.Is(err, ErrInvoiceNotFound) {
				t.Fatalf("missing invoice: %v", err)
			}
			all := []string{}
			for _, in := range invs {
				all = append(all, in.Number)
			}
			if _, err := RebuildLot(data, 1, all, 42); !errors.Is(err, ErrEmptyLot) {
				t.Fatalf("empty: %v", err)
			}
			if _, err := RebuildLot(data, 1, nil, 1000); !errors.Is(err, ErrBadArgument) {
				t.Fatalf("bad number: %v", err)
			}
			if _, err := RebuildLot(data, 5, nil, 1); !errors.Is(err, ErrLotNotFound) {
				t.Fatalf("bad lot: %v", err)
			}
		}
	}
}
