package b2

import (
	"bytes"
	"io"
	"testing"
)

// fuzzSeeds are small generated files in every framing and with every
// fault, plus odd inputs. The same seeds are committed under
// testdata/fuzz (TestWriteFuzzCorpus).
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	for i, fr := range []Framing{FramingNone, FramingLF, FramingCRLF} {
		for _, v := range []string{"CP", "PS"} {
			var b bytes.Buffer
			_ = Generate(&b, GenOptions{Seed: int64(i), Lots: 2, Invoices: 2, Framing: fr, Variant: v})
			seeds = append(seeds, b.Bytes())
		}
	}
	for i, c := range GenFaults() {
		var b bytes.Buffer
		_ = Generate(&b, GenOptions{Seed: int64(i), Invoices: 2, Framing: Framing(i % 3), Fault: c})
		seeds = append(seeds, b.Bytes())
	}
	seeds = append(seeds, nil, []byte("000"), []byte("\r\n\r\n"), bytes.Repeat([]byte("1"), 300))
	return seeds
}

// FuzzReader: the reader never panics, and writing back what it read gives
// the input byte for byte (whatever the input).
func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rd := NewReader(bytes.NewReader(data))
		var out bytes.Buffer
		w := NewWriter(&out, FramingNone)
		for n := 0; ; n++ {
			rec, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err == ErrLineTooLong {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n > len(data) {
				t.Fatal("more records than bytes")
			}
			if len(rec.Data) == 0 && len(rec.Term) == 0 {
				t.Fatal("empty record")
			}
			if err := w.WriteRecord(rec); err != nil {
				t.Fatal(err)
			}
		}
		_ = w.Flush()
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("round trip differs:\n%q\n%q", out.Bytes(), data)
		}
	})
}

// FuzzValidate: Validate never panics and keeps its bounds; a file it
// accepts round-trips, and its lots extract and rebuild into valid files.
func FuzzValidate(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := Validate(bytes.NewReader(data), Options{Summaries: true, Limits: Limits{MaxBytes: 1 << 20, MaxErrors: 50}})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Errors) > 50 || rep.Valid != (len(rep.Errors) == 0 && rep.Dropped == 0) {
			t.Fatalf("bounds: %d errors, valid %v", len(rep.Errors), rep.Valid)
		}
		for _, e := range rep.Errors {
			if e.Code == "" || e.Record < 0 || e.Record > rep.Stats.Records+1 {
				t.Fatalf("bad error %+v (records %d)", e, rep.Stats.Records)
			}
		}
		if !rep.Valid {
			// The lot helpers must not panic on what they are given.
			_, _ = ExtractLot(data, 0)
			_, _ = RebuildLot(data, 0, []string{"1"}, 1)
			return
		}
		var out bytes.Buffer
		rd := NewReader(bytes.NewReader(data))
		w := NewWriter(&out, FramingNone)
		for {
			rec, err := rd.Next()
			if err != nil {
				break
			}
			_ = w.WriteRecord(rec)
		}
		_ = w.Flush()
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatal("valid input does not round-trip")
		}
		for i, l := range rep.Lots {
			one, err := ExtractLot(data, i)
			if err != nil {
				t.Fatalf("extract %d: %v", i, err)
			}
			r1, _ := Validate(bytes.NewReader(one), Options{})
			if !r1.Valid {
				t.Fatalf("extracted lot %d invalid: %v", i, r1.Errors)
			}
			if len(l.Invoices) > 1 {
				re, err := RebuildLot(data, i, []string{l.Invoices[0].Number}, (l.Number+1)%1000)
				if err != nil {
					t.Fatalf("rebuild %d: %v", i, err)
				}
				r2, _ := Validate(bytes.NewReader(re), Options{})
				if !r2.Valid {
					t.Fatalf("rebuilt lot %d invalid: %v", i, r2.Errors)
				}
			}
		}
	})
}
