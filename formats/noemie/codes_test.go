package noemie

import (
	"bytes"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/octgw/oct/formats/fixed"
)

// sampleLines returns the sample file one record per line (no CR/LF).
func sampleLines(t testing.TB, form WriteOptions) []string {
	t.Helper()
	var buf bytes.Buffer
	form.LineBreaks = true
	if err := Write(&buf, sampleHeader, sampleBatches(), form); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(buf.String(), "\r\n"), "\r\n")
}

// Line indexes of the sample (see TestSampleShape).
const (
	l000, l020, l040, l071, l081, l102, l103, l198, l199, l990inv = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
	l294, l290, l999                                              = 13, 22, 28
)

func TestSampleShape(t *testing.T) {
	got := ""
	for _, l := range sampleLines(t, WriteOptions{}) {
		got += l[:3] + " "
	}
	want := "000 020 040 071 081 102 103 198 199 990 102 103 198 294 990 990 990 071 081 102 103 198 290 990 990 990 990 990 999 "
	if got != want {
		t.Fatalf("shape %s", got)
	}
}

func splice(s string, pos int, repl string) string { return s[:pos-1] + repl + s[pos-1+len(repl):] }

func codesOf(errs []fixed.Error) []string {
	var out []string
	for _, e := range errs {
		out = append(out, string(e.Code))
	}
	sort.Strings(out)
	return out
}

// TestErrorCodes injects one fault per case and checks the exact findings:
// the code is reported (errors.Is works on it) and nothing cascades.
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
		prefix bool
		want   []string // exact codes, sorted
		record int64    // record of the first finding
	}{
		{"unknown entity", ErrEntityUnknown, set(l290, 1, "297"), Options{}, false, []string{"entity-unknown"}, 23},
		{"short entity", ErrEntityLength, func(l []string) []string { l[l103] = l[l103][:40] + l[l103][41:]; return l }, Options{}, false, []string{"entity-length"}, 7},
		{"long entity", ErrEntityLength, func(l []string) []string { l[l294] = l[l294][:40] + "X" + l[l294][40:]; return l }, Options{}, false, []string{"entity-length"}, 14},
		{"truncated entity", ErrEntityLength, func(l []string) []string { return append(l[:l102], l[l102][:20]) }, Options{}, false, []string{"entity-length", "missing-trailer"}, 6},
		{"break level", ErrHierarchy, set(l081, 4, "02"), Options{}, false, []string{"hierarchy"}, 5},
		{"missing 081", ErrHierarchy, func(l []string) []string { return append(l[:l081], l[l081+1:]...) }, Options{}, false, []string{"hierarchy", "record-count"}, 5},
		{"detail outside invoice", ErrHierarchy, func(l []string) []string {
			l = append(l[:l990inv+1], l[l990inv:]...) // duplicate the invoice's 990
			return l
		}, Options{}, false, []string{"hierarchy", "record-count"}, 11},
		{"control count", ErrControlCount, set(l990inv, 23, "00000004"), Options{}, false, []string{"control-count"}, 10},
		{"control amount", ErrControlAmount, set(l990inv, 31, "00000002501"), Options{}, false, []string{"control-amount"}, 10},
		{"control amount zero accepted", "", set(l990inv, 31, "00000000000"), Options{}, false, nil, 0},
		{"control ident", ErrControlIdent, set(l990inv, 6, "000000109"), Options{}, false, []string{"control-ident"}, 10},
		{"record count", ErrRecordCount, set(l999, 56, "00000030"), Options{}, false, []string{"record-count"}, 29},
		{"lot count", ErrLotCount, set(l999, 83, "002"), Options{}, false, []string{"lot-count"}, 29},
		{"file amount", ErrControlAmount, set(l999, 86, "00000002299"), Options{}, false, []string{"control-amount"}, 29},
		{"missing trailer", ErrMissingTrailer, func(l []string) []string { return l[:l999] }, Options{}, false, []string{"missing-trailer"}, 0},
		{"norm", ErrHeader, set(l000, 62, "576 "), Options{}, false, []string{"header"}, 1},
		{"no header", ErrHeader, func(l []string) []string { return l[1:] }, Options{}, false, []string{"header", "record-count"}, 1},
		{"trailer ident", ErrHeaderMismatch, set(l999, 50, "R00043"), Options{}, false, []string{"header-mismatch"}, 29},
		{"amount digits", ErrFieldFormat, set(l198, 6, "0000250X"), Options{}, false, []string{"field-format"}, 8},
		{"bad date", ErrFieldFormat, set(l102, 31, "260230"), Options{}, false, []string{"field-format"}, 6},
		{"bad sign", ErrFieldFormat, set(l198, 23, "X"), Options{}, false, []string{"field-format"}, 8},
		{"charset", ErrCharset, set(l071, 20, "\xe9"), Options{}, false, []string{"charset"}, 4},
		{"at sign inside", ErrCharset, set(l071, 20, "@"), Options{}, false, []string{"charset"}, 4},
		{"line prefix", ErrLineLength, set(l020, 1, "0022"), Options{}, true, []string{"line-length"}, 2},
		{"line without prefix", ErrLineLength, func(l []string) []string { l[l040] = l[l040][4:]; return l }, Options{}, true, []string{"line-length"}, 3},
		{"trailing data", ErrTrailingData, func(l []string) []string { return append(l, "X") }, Options{}, false, []string{"trailing-data"}, 29},
		{"byte limit", ErrLimitBytes, nil, Options{MaxBytes: 200}, false, []string{"limit-bytes"}, 0},
		{"entity limit", ErrLimitEntities, nil, Options{MaxEntities: 5}, false, []string{"limit-entities"}, 6},
		{"error limit", ErrLimitErrors, func(l []string) []string {
			l[l990inv] = splice(l[l990inv], 23, "00000004")
			l[l071] = splice(l[l071], 20, "\xe9")
			return l
		}, Options{MaxErrors: 1}, false, []string{"charset", "limit-errors"}, 4},
	}
	seen := map[fixed.Code]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines := sampleLines(t, WriteOptions{LengthPrefix: c.prefix})
			if c.mutate != nil {
				lines = c.mutate(lines)
			}
			data := strings.Join(lines, "\r\n")
			f, err := Read(strings.NewReader(data), c.opt)
			if err != nil {
				t.Fatal(err)
			}
			got := codesOf(f.Errors)
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Fatalf("codes %v, want %v: %v", got, c.want, f.Errors)
			}
			if f.Valid != (len(c.want) == 0) {
				t.Fatalf("valid %v", f.Valid)
			}
			if c.code == "" {
				return
			}
			found := false
			for i := range f.Errors {
				if errors.Is(&f.Errors[i], c.code) {
					found = true
				}
			}
			if !found {
				t.Fatalf("errors.Is(%s) false", c.code)
			}
			if f.Errors[0].Record != c.record {
				t.Fatalf("record %d, want %d (%v)", f.Errors[0].Record, c.record, f.Errors[0])
			}
			if c.code == ErrLimitErrors && f.Dropped != 1 {
				t.Fatalf("dropped %d", f.Dropped)
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
