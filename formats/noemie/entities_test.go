package noemie

import (
	"errors"
	"strings"
	"testing"

	"github.com/octgw/oct/formats/fixed"
)

// The lengths of formats.md §3.4 (code, break level and '@' included).
var wantLength = map[string]int{"010": 14, "020": 21, "040": 21, "070": 12, "071": 86, "080": 15, "081": 22,
	"100": 15, "102": 40, "103": 152, "110": 88, "120": 57, "150": 8, "160": 23, "198": 24, "199": 49,
	"210": 118, "220": 118, "250": 47, "261": 19, "262": 134, "290": 98, "294": 153, "295": 135, "990": 43}

// Positions quoted in formats.md §3.4 for the fields the reader uses.
var wantPos = []struct {
	e        *Entity
	field    string
	pos, len int
}{
	{E020, "number", 6, 15}, {E040, "number", 6, 15}, {E070, "date", 6, 6},
	{E071, "date", 6, 6}, {E071, "label1", 12, 32}, {E071, "label2", 44, 32}, {E071, "payer", 76, 10},
	{E080, "lot_date", 6, 6}, {E080, "lot", 12, 3}, {E081, "return_type", 6, 2}, {E081, "place", 8, 14},
	{E102, "invoice", 6, 9}, {E102, "complement", 15, 6}, {E102, "lot", 21, 3}, {E102, "lot_date", 24, 6},
	{E102, "invoice_type", 30, 1}, {E102, "invoice_date", 31, 6}, {E102, "amc_processing", 37, 1}, {E102, "nature", 38, 2},
	{E103, "nir", 6, 13}, {E103, "birth_date", 101, 6}, {E103, "birth_rank", 107, 1}, {E103, "unit", 148, 4},
	{E198, "requested", 6, 8}, {E198, "state", 14, 1}, {E198, "paid", 15, 8}, {E198, "sign", 23, 1},
	{E199, "amc", 24, 10}, {E199, "member", 34, 15},
	{E250, "debt", 8, 10}, {E290, "line", 6, 2}, {E290, "reject_code", 8, 10}, {E290, "label", 18, 80},
	{E294, "reject_code", 6, 4}, {E294, "label", 10, 86}, {E294, "reject_level", 96, 1}, {E294, "part", 97, 1},
	{E294, "service", 98, 5}, {E294, "info", 123, 30}, {E295, "comment_code", 6, 1}, {E295, "text", 7, 128},
	{E990, "ident", 6, 17}, {E990, "count", 23, 8}, {E990, "sum", 31, 11}, {E990, "sign", 42, 1},
}

func TestDictionary(t *testing.T) {
	if len(Dictionary) != len(wantLength) {
		t.Fatalf("%d entities, %d expected", len(Dictionary), len(wantLength))
	}
	max := 0
	for _, e := range Dictionary {
		if e.Layout.Length != wantLength[e.Code] {
			t.Errorf("%s: length %d, want %d", e.Code, e.Layout.Length, wantLength[e.Code])
		}
		max = maxInt(max, e.Layout.Length)
		if Lookup([]byte(e.Code)) != e {
			t.Errorf("%s: lookup", e.Code)
		}
		// Every byte belongs to exactly one field: the tables are complete.
		covered := make([]int, e.Layout.Length)
		for _, f := range e.Layout.Fields() {
			for i := f.Pos - 1; i < f.Pos-1+f.Len; i++ {
				covered[i]++
			}
		}
		for i, n := range covered {
			if n != 1 {
				t.Errorf("%s: byte %d in %d fields", e.Code, i+1, n)
			}
		}
		if pos, n := e.Layout.Ref("end").Pos(); pos != e.Layout.Length || n != 1 {
			t.Errorf("%s: delimiter at %d", e.Code, pos)
		}
	}
	if max != MaxEntityLen {
		t.Errorf("MaxEntityLen %d, longest %d", MaxEntityLen, max)
	}
	for _, w := range wantPos {
		if pos, n := w.e.Layout.Ref(w.field).Pos(); pos != w.pos || n != w.len {
			t.Errorf("%s %s at %d:%d, want %d:%d", w.e.Code, w.field, pos, n, w.pos, w.len)
		}
	}
	for _, c := range []string{"000", "999", "777", "12", "1a2", ""} {
		if Lookup([]byte(c)) != nil {
			t.Errorf("lookup %q", c)
		}
	}
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// insertDetail puts ent inside the first invoice of the sample, before its
// 990, fixing that 990's count.
func insertDetail(t *testing.T, ent string) []string {
	l := sampleLines(t, WriteOptions{})
	l[l990inv] = splice(l[l990inv], 23, "00000004")
	l[l999] = splice(l[l999], 56, "00000030")
	return append(l[:l990inv], append([]string{ent}, l[l990inv:]...)...)
}

// TestEachDetailEntity: every detail entity of the dictionary, blank as the
// writer makes it, is accepted inside an invoice and counted by its 990;
// outside an invoice it is a hierarchy finding; a bad numeric field in it is
// a field-format finding naming the field.
func TestEachDetailEntity(t *testing.T) {
	for _, e := range Dictionary {
		if e.Role != RoleDetail || e == E198 || e == E199 || e == E103 {
			continue // parts and the insured are in the sample already
		}
		b := newEntity(e, 99)
		if e == E294 {
			r294Level.Bytes(b)[0] = 'F'
		}
		ent := string(b)
		f, err := Read(strings.NewReader(strings.Join(insertDetail(t, ent), "")), Options{})
		if err != nil || !f.Valid {
			t.Errorf("%s inside an invoice: %v %v", e.Code, err, f.Errors)
			continue
		}
		rejects := len(f.Invoices[0].Rejects)
		if (e == E290 || e == E294) != (rejects == 1) {
			t.Errorf("%s: %d rejects", e.Code, rejects)
		}
		l := sampleLines(t, WriteOptions{})
		l = append(l[:l990inv+1], append([]string{ent}, l[l990inv+1:]...)...)
		l[l999+1] = splice(l[l999+1], 56, "00000030")
		f, _ = Read(strings.NewReader(strings.Join(l, "")), Options{})
		if len(f.Errors) != 1 || !errors.Is(&f.Errors[0], ErrHierarchy) || f.Errors[0].Record != 11 {
			t.Errorf("%s outside an invoice: %v", e.Code, f.Errors)
		}
		for _, r := range e.Layout.Refs() {
			if r.Kind != fixed.Numeric && r.Kind != fixed.Amount && r.Kind != fixed.Date || r.Name == "code" || r.Name == "level" {
				continue
			}
			bad := []byte(ent)
			r.Bytes(bad)[0] = 'X'
			f, _ := Read(strings.NewReader(strings.Join(insertDetail(t, string(bad)), "")), Options{})
			if len(f.Errors) != 1 || !errors.Is(&f.Errors[0], ErrFieldFormat) || f.Errors[0].Field != r.Name {
				t.Errorf("%s %s: %v", e.Code, r.Name, f.Errors)
			}
		}
	}
}

// TestOpeners: each opener checks its break level; 070 may stand for 071.
func TestOpeners(t *testing.T) {
	for _, c := range []struct {
		line  int
		level string
	}{{l020, "02"}, {l040, "01"}, {l071, "02"}, {l081, "05"}, {l102, "99"}} {
		l := sampleLines(t, WriteOptions{})
		l[c.line] = splice(l[c.line], 4, c.level)
		f, _ := Read(strings.NewReader(strings.Join(l, "\n")), Options{})
		if len(f.Errors) != 1 || !errors.Is(&f.Errors[0], ErrHierarchy) || f.Errors[0].Field != "level" {
			t.Errorf("%s with level %s: %v", l[c.line][:3], c.level, f.Errors)
		}
	}
	l := sampleLines(t, WriteOptions{})
	l[l071] = "07003260227@"
	f, _ := Read(strings.NewReader(strings.Join(l, "\n")), Options{})
	if !f.Valid || f.Payments[0].AccountingDate != day(2026, 2, 27) || f.Payments[0].Ref != "" || f.Invoices[0].Payment != 0 {
		t.Fatalf("070: %v %+v", f.Errors, f.Payments)
	}
}

func TestDetect(t *testing.T) {
	for _, form := range []WriteOptions{{}, {LengthPrefix: true}, {LineBreaks: true, LengthPrefix: true}} {
		var b strings.Builder
		Write(&b, sampleHeader, sampleBatches(), form)
		if !Detect([]byte(b.String())) || !Detect([]byte("\r\n"+b.String()[:200])) {
			t.Errorf("%+v not detected", form)
		}
	}
	l := sampleLines(t, WriteOptions{})
	for _, h := range []string{splice(l[0], 62, "576 "), splice(l[0], 62, "CP  "), "", "0128", l[0][:60], l[1]} {
		if Detect([]byte(h)) {
			t.Errorf("detected %q", h)
		}
	}
}
