package b2

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// roundTrip reads every record and writes it back.
func roundTrip(t testing.TB, in []byte, src func([]byte) io.Reader) []byte {
	t.Helper()
	rd := NewReader(src(in))
	var out bytes.Buffer
	w := NewWriter(&out, FramingNone)
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteRecord(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestReaderFramingsRoundTrip(t *testing.T) {
	srcs := map[string]func([]byte) io.Reader{
		"plain":    func(b []byte) io.Reader { return bytes.NewReader(b) },
		"one-byte": func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		"half":     func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
	}
	for _, fr := range []Framing{FramingNone, FramingLF, FramingCRLF} {
		data := genFile(t, GenOptions{Seed: 5, Lots: 3, Invoices: 30, Framing: fr})
		for name, src := range srcs {
			if got := roundTrip(t, data, src); !bytes.Equal(got, data) {
				t.Fatalf("%s/%s: round trip differs", fr, name)
			}
		}
		rd := NewReader(bytes.NewReader(data))
		n := int64(0)
		for {
			rec, err := rd.Next()
			if err == io.EOF {
				break
			}
			n++
			if len(rec.Data) != RecordLength || rec.Num != n || string(rec.Term) != fr.Terminator() {
				t.Fatalf("%s: record %d: %d bytes, term %q", fr, rec.Num, len(rec.Data), rec.Term)
			}
		}
		if rd.Framing() != fr {
			t.Fatalf("framing %v, want %v", rd.Framing(), fr)
		}
	}
}

func TestReaderOddTerminators(t *testing.T) {
	rec := strings.Repeat("A", RecordLength)
	cases := map[string]struct {
		in      string
		lengths []int
	}{
		"mixed":          {rec + "\n" + rec + "\r\n" + rec, []int{128, 128, 128}},
		"blank lines":    {rec + "\n\n\n" + rec + "\n", []int{128, 128}},
		"leading CRLF":   {"\r\n" + rec + "\n" + rec, []int{0, 128, 128}},
		"short line":     {rec + "\n" + rec[:50] + "\n" + rec + "\n", []int{128, 50, 128}},
		"long line":      {rec + "\n" + rec + "XYZ\n" + rec + "\n", []int{128, 131, 128}},
		"CR only":        {rec + "\r" + rec + "\r", []int{128, 128}},
		"stray LF later": {rec + rec + rec + "\n" + rec + rec[:10], []int{128, 128, 128, 128, 10}},
	}
	for name, c := range cases {
		var got []int
		rd := NewReader(strings.NewReader(c.in))
		for {
			r, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, len(r.Data))
		}
		if len(got) != len(c.lengths) {
			t.Errorf("%s: %v, want %v", name, got, c.lengths)
			continue
		}
		for i := range got {
			if got[i] != c.lengths[i] {
				t.Errorf("%s: %v, want %v", name, got, c.lengths)
			}
		}
		if out := roundTrip(t, []byte(c.in), func(b []byte) io.Reader { return bytes.NewReader(b) }); string(out) != c.in {
			t.Errorf("%s: round trip", name)
		}
	}
}

func TestReaderLineTooLong(t *testing.T) {
	in := strings.Repeat("A", RecordLength) + "\n" + strings.Repeat("B", 100<<10)
	rd := NewReader(strings.NewReader(in))
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := rd.Next(); err != ErrLineTooLong {
		t.Fatalf("got %v", err)
	}
}

func TestReaderIOError(t *testing.T) {
	data := genFile(t, GenOptions{Seed: 1})
	r := io.MultiReader(bytes.NewReader(data[:300]), iotest.ErrReader(io.ErrUnexpectedEOF))
	if _, err := Validate(r, Options{}); err != io.ErrUnexpectedEOF {
		t.Fatalf("got %v", err)
	}
}

// One bad record length in a line-framed file gives one error, and one in a
// back-to-back file is found again by realignment.
func TestNoCascade(t *testing.T) {
	for _, fr := range []Framing{FramingLF, FramingCRLF, FramingNone} {
		data := genFile(t, GenOptions{Seed: 9, Lots: 2, Invoices: 10, Framing: fr})
		step := RecordLength + len(fr.Terminator())
		for _, cut := range []int{1, 5, 40} {
			// Remove cut bytes from the middle of record 20 (a line or so).
			at := 19*step + 60
			bad := append(append([]byte(nil), data[:at]...), data[at+cut:]...)
			rep, err := Validate(bytes.NewReader(bad), Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := codes(rep)
			if fr != FramingNone {
				// Line framing: exactly one error, nothing else.
				if len(rep.Errors) != 1 || got[ErrRecordLength] != 1 || rep.Errors[0].Record != 20 {
					t.Errorf("%s cut %d: %v", fr, cut, rep.Errors)
				}
				continue
			}
			// Back to back: the boundary is found again from the record
			// keys; the damage stays local (a few errors, not one per
			// following record).
			if got[ErrRecordLength] == 0 || len(rep.Errors) > 4 || got[ErrMissingTrailer] > 0 {
				t.Errorf("%s cut %d: %v", fr, cut, rep.Errors)
			}
		}
	}
}

// A missing type 5 is one error, not one per following record.
func TestMissingType5OneError(t *testing.T) {
	r := baseRecs(t)
	var out [][]byte
	for i := range r {
		if kindAt(r, i) != "5" {
			out = append(out, r[i])
		}
	}
	out = fixup(out)
	rep, _ := Validate(bytes.NewReader(joinLF(out)), Options{})
	// one per invoice (8 invoices, every type 5 removed)
	if len(rep.Errors) != 8 || codes(rep)[ErrRecordOrder] != 8 {
		t.Fatalf("%v", rep.Errors)
	}
}
