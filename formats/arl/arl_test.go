package arl

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
)

func day(y, m, d int) fixed.Day { return fixed.Day{Year: y, Month: time.Month(m), Dom: d} }

var sampleHeader = envelope.Info{SenderType: "CT", Sender: "00000001422422", ReceiverType: "OT",
	Receiver: "00000123456789", Application: "TR", FileID: "A00007", Created: day(2026, 3, 3), Norm: NormV1, Version: VersionV1}

func sampleARLs() []ARL {
	return []ARL{
		{Header: sampleHeader, Emitter: "00000123456789", FileID: "F00012", LotNumber: 12, LotDate: day(2026, 3, 2), Positive: true, Received: day(2026, 3, 3)},
		{Header: sampleHeader, Emitter: "00000123456789", FileID: "F00013", LotNumber: 13, LotDate: day(2026, 3, 2), Received: day(2026, 3, 3),
			Reasons: []Reason{{Code: "nir-key", Label: "CLE NIR INVALIDE", Record: 4}, {Code: "record-count", Label: "NOMBRE D ENREGISTREMENTS FAUX"}}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, lb := range []bool{false, true} {
		in := sampleARLs()
		var buf bytes.Buffer
		if err := WriteWith(&buf, WriteOptions{LineBreaks: lb}, in...); err != nil {
			t.Fatal(err)
		}
		if want := 6 * (RecordLen + map[bool]int{true: 2}[lb]); buf.Len() != want {
			t.Fatalf("%d bytes, want %d", buf.Len(), want)
		}
		f, err := DefaultRegistry().Decode(bytes.NewReader(buf.Bytes()), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !f.Valid || f.Layout != "oct-arl-v1" || f.Records != 6 || f.LineBreaks != lb {
			t.Fatalf("file %+v", f)
		}
		in[0].Record, in[1].Record = 2, 3
		if !reflect.DeepEqual(f.ARLs, in) {
			t.Fatalf("got %+v\nwant %+v", f.ARLs, in)
		}
		var again bytes.Buffer
		if err := WriteWith(&again, WriteOptions{LineBreaks: f.LineBreaks}, f.ARLs...); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), buf.Bytes()) {
			t.Fatal("write(read(b)) != b")
		}
	}
}

func TestWriteRefuses(t *testing.T) {
	bad := map[string][]ARL{
		"none":                     nil,
		"long file id":             {{FileID: "TOOLONG"}},
		"lower case ok but accent": {{Emitter: "caf\xe9"}},
		"trailing blank":           {{Reasons: []Reason{{Code: "X "}}}},
		"two headers":              {{Header: sampleHeader}, {Header: envelope.Info{Sender: "X"}}},
		"lot":                      {{LotNumber: 1000}},
	}
	for name, a := range bad {
		if err := Write(&bytes.Buffer{}, a...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func lines(t *testing.T) []string {
	var buf bytes.Buffer
	if err := Write(&buf, sampleARLs()...); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(buf.String(), "\r\n"), "\r\n")
}

func splice(s string, pos int, repl string) string { return s[:pos-1] + repl + s[pos-1+len(repl):] }

func TestDetect(t *testing.T) {
	l := lines(t)
	if !(OCTv1{}).Detect([]byte(l[0])) || !(OCTv1{}).Detect([]byte("\r\n"+l[0])) {
		t.Fatal("OCT-ARL v1 not detected")
	}
	for _, h := range []string{splice(l[0], 62, "580 "), splice(l[0], 62, "CP  "), "", "000", l[1]} {
		if (OCTv1{}).Detect([]byte(h)) {
			t.Errorf("detected %q", h)
		}
	}
}

// other is a stand-in for a second layout, to show the registry order.
type other struct{}

func (other) Name() string            { return "other" }
func (other) Detect(head []byte) bool { return bytes.HasPrefix(head, []byte("ARL")) }
func (other) Decode(r io.Reader, opt Options) (*File, error) {
	return &File{Layout: "other", Valid: true}, nil
}

func TestRegistry(t *testing.T) {
	g := NewRegistry(other{}, OCTv1{})
	f, err := g.Decode(strings.NewReader("ARL whatever"), Options{})
	if err != nil || f.Layout != "other" {
		t.Fatalf("%+v %v", f, err)
	}
	f, err = g.Decode(strings.NewReader(strings.Join(lines(t), "\r\n")), Options{})
	if err != nil || f.Layout != "oct-arl-v1" || !f.Valid {
		t.Fatalf("%+v %v", f, err)
	}
	f, err = DefaultRegistry().Decode(strings.NewReader("ARL whatever"), Options{})
	if err != nil || f.Valid || len(f.Errors) != 1 || !errors.Is(&f.Errors[0], ErrUnknownLayout) {
		t.Fatalf("%+v %v", f, err)
	}
	if n := len(g.Decoders()); n != 2 {
		t.Fatal(n)
	}
}

func TestErrorCodes(t *testing.T) {
	type mut func(l []string) []string
	set := func(i, pos int, repl string) mut {
		return func(l []string) []string { l[i] = splice(l[i], pos, repl); return l }
	}
	cases := []struct {
		name   string
		code   fixed.Code
		mutate mut
		opt    Options
		join   string
		want   string
		record int64
	}{
		{"short record", ErrRecordLength, func(l []string) []string { l[2] = l[2][:100]; return l }, Options{}, "\r\n", "record-length", 3},
		{"long record", ErrRecordLength, func(l []string) []string { l[3] += "XX"; return l }, Options{}, "\r\n", "record-length", 4},
		{"cut file", ErrRecordLength, func(l []string) []string { l[5] = l[5][:50]; return l }, Options{}, "", "missing-trailer,record-length", 6},
		{"record type", ErrRecordType, set(2, 1, "120"), Options{}, "\r\n", "record-type", 3},
		{"reason first", ErrRecordOrder, func(l []string) []string { return append([]string{l[0], l[3]}, l[1:]...) }, Options{}, "\r\n", "record-count,record-order", 2},
		{"reason sequence", ErrRecordOrder, set(4, 4, "003"), Options{}, "\r\n", "record-order", 5},
		{"norm", ErrHeader, set(0, 62, "OCTB"), Options{}, "\r\n", "header", 1},
		{"no header", ErrHeader, func(l []string) []string { return l[1:] }, Options{}, "\r\n", "header,record-count", 1},
		{"trailer ident", ErrHeaderMismatch, set(5, 50, "A00008"), Options{}, "\r\n", "header-mismatch", 6},
		{"record count", ErrRecordCount, set(5, 56, "00000007"), Options{}, "\r\n", "record-count", 6},
		{"lot count", ErrLotCount, set(5, 83, "003"), Options{}, "\r\n", "lot-count", 6},
		{"reason count", ErrReasonCount, set(2, 40, "003"), Options{}, "\r\n", "reason-count", 3},
		{"negative without reason", ErrMissingReason, func(l []string) []string {
			l[2] = splice(l[2], 40, "000")
			l[5] = splice(l[5], 56, "00000004")
			return append(l[:3], l[5])
		}, Options{}, "\r\n", "missing-reason", 3},
		{"missing trailer", ErrMissingTrailer, func(l []string) []string { return l[:5] }, Options{}, "\r\n", "missing-trailer", 0},
		{"date", ErrFieldFormat, set(1, 27, "260230"), Options{}, "\r\n", "field-format", 2},
		{"status", ErrFieldFormat, set(1, 33, "X"), Options{}, "\r\n", "field-format", 2},
		{"digits", ErrFieldFormat, set(3, 27, "0000000X"), Options{}, "\r\n", "field-format", 4},
		{"charset", ErrCharset, set(3, 40, "\xe9"), Options{}, "\r\n", "charset", 4},
		{"trailing", ErrTrailingData, func(l []string) []string { return append(l, "X") }, Options{}, "\r\n", "trailing-data", 6},
		{"byte limit", ErrLimitBytes, nil, Options{MaxBytes: 300}, "\r\n", "limit-bytes", 0},
		{"record limit", ErrLimitRecords, nil, Options{MaxRecords: 2}, "\r\n", "limit-records", 3},
		{"error limit", ErrLimitErrors, func(l []string) []string {
			l[1] = splice(l[1], 33, "X")
			l[3] = splice(l[3], 40, "\xe9")
			return l
		}, Options{MaxErrors: 1}, "\r\n", "field-format,limit-errors", 2},
	}
	seen := map[fixed.Code]bool{ErrUnknownLayout: true} // TestRegistry
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := lines(t)
			if c.mutate != nil {
				l = c.mutate(l)
			}
			f, err := OCTv1{}.Decode(strings.NewReader(strings.Join(l, c.join)), c.opt)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range f.Errors {
				got = append(got, string(e.Code))
			}
			sort.Strings(got)
			if strings.Join(got, ",") != c.want {
				t.Fatalf("codes %v, want %s: %v", got, c.want, f.Errors)
			}
			if f.Valid {
				t.Fatal("valid")
			}
			found := false
			for i := range f.Errors {
				found = found || errors.Is(&f.Errors[i], c.code)
			}
			if !found {
				t.Fatalf("errors.Is(%s) false", c.code)
			}
			if f.Errors[0].Record != c.record {
				t.Fatalf("record %d want %d: %v", f.Errors[0].Record, c.record, f.Errors)
			}
			seen[c.code] = true
		})
	}
	for _, c := range Codes {
		if !seen[c] {
			t.Errorf("code %s has no test", c)
		}
	}
}

// TestLayouts: each OCT-ARL v1 record type covers its 128 bytes exactly,
// at the positions docs/formats/arl.md gives.
func TestLayouts(t *testing.T) {
	want := map[*fixed.Layout]string{
		Lot:          "type 1 3, emitter 4 14, file_id 18 6, lot 24 3, lot_date 27 6, status 33 1, received 34 6, reasons 40 3, filler 43 86",
		ReasonLayout: "type 1 3, seq 4 3, code 7 20, record 27 8, label 35 80, filler 115 14",
	}
	for l, w := range want {
		var parts []string
		next := 1
		for _, f := range l.Fields() {
			if f.Pos != next {
				t.Errorf("%s: gap before %s", l.Name, f.Name)
			}
			next = f.Pos + f.Len
			parts = append(parts, f.Name+" "+strconv.Itoa(f.Pos)+" "+strconv.Itoa(f.Len))
		}
		if next != RecordLen+1 || strings.Join(parts, ", ") != w {
			t.Errorf("%s: %s", l.Name, strings.Join(parts, ", "))
		}
	}
}
