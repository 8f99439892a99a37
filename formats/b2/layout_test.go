package b2

import (
	"bytes"
	"io"
	"testing"

	"github.com/octgw/oct/formats/fixed"
)

var allLayouts = []*fixed.Layout{
	Type1, Comp1, Type2, Type2PS, Comp2S, Comp2B, Comp2P, Comp2X, Type3, Type3PS, Comp3S, Comp3E, Comp3F, Comp3H,
	Type4, Type4PS, Comp4S, Comp4E, Comp4B, Comp4H, Comp4M, Type5, Type5PS, Type6, Comp36Unknown, Comp39Unknown,
	Header, Trailer,
}

// Every layout describes all 128 columns: unknown zones are explicit Raw
// fields, so nothing is silently skipped.
func TestLayoutsCoverEveryColumn(t *testing.T) {
	for _, l := range allLayouts {
		var seen [RecordLength]int
		for _, f := range l.Fields() {
			for i := f.Pos - 1; i < f.Pos-1+f.Len; i++ {
				seen[i]++
			}
		}
		for i, n := range seen {
			if n != 1 {
				t.Errorf("%s: column %d covered %d times", l.Name, i+1, n)
			}
		}
		if l.Length != RecordLength {
			t.Errorf("%s: length %d", l.Name, l.Length)
		}
	}
}

// Spot checks of the positions of docs/formats.md §1.4, one or more per
// record type.
func TestLayoutPositions(t *testing.T) {
	cases := []struct {
		l        *fixed.Layout
		field    string
		pos, len int
	}{
		{Type1, "emitter", 2, 9}, {Type1, "lot_number", 20, 3}, {Type1, "lot_date", 72, 6}, {Type1, "variant", 79, 2},
		{Type2, "nir", 12, 13}, {Type2, "invoice", 30, 9}, {Type2, "grand_regime", 49, 2}, {Type2, "amc", 119, 10},
		{Type2PS, "invoice", 27, 9}, {Type2PS, "invoice_date", 40, 6},
		{Comp2S, "letter", 39, 1}, {Comp2S, "individual_nir", 50, 13}, {Comp2S, "ips", 121, 1},
		{Comp2B, "surname", 43, 25}, {Comp2P, "pec", 83, 16}, {Comp2X, "letter", 36, 1}, {Comp2X, "reception_date", 37, 8},
		{Type3, "base", 83, 8}, {Type3, "amo", 94, 8}, {Type3, "total", 102, 8}, {Type3, "amc", 122, 7},
		{Comp3S, "prescriber", 42, 9}, {Comp3E, "rpps", 42, 11}, {Comp3F, "letter", 36, 1}, {Comp3F, "lpp_code", 43, 13},
		{Comp3H, "ucd", 49, 7}, {Comp3H, "total_billed", 91, 7},
		{Type4, "care_date", 70, 6}, {Type4, "amo", 108, 7}, {Type4, "fees", 115, 7}, {Type4, "amc", 123, 6},
		{Type4PS, "executant", 55, 9}, {Type4PS, "care_date", 68, 6}, {Type4PS, "fees", 113, 7},
		{Comp4S, "domain", 124, 1}, {Comp4E, "rpps_executant", 64, 11}, {Comp4M, "ccam_code", 43, 13}, {Comp4M, "teeth", 71, 32},
		{Type5, "line_count", 39, 3}, {Type5, "patient_share", 74, 8}, {Type5, "billed_services", 115, 8},
		{Type6, "invoices", 11, 3}, {Type6, "lines", 14, 4}, {Type6, "lot_number", 52, 3},
	}
	for _, c := range cases {
		p, n := c.l.Ref(c.field).Pos()
		if p != c.pos || n != c.len {
			t.Errorf("%s.%s at %d+%d, want %d+%d", c.l.Name, c.field, p, n, c.pos, c.len)
		}
	}
}

func rec(prefix string, at map[int]string) []byte {
	b := bytes.Repeat([]byte("0"), RecordLength)
	copy(b, prefix)
	for pos, s := range at {
		copy(b[pos-1:], s)
	}
	return b
}

// One row per record type: classification and the layout chosen.
func TestClassifyEveryRecordType(t *testing.T) {
	cases := []struct {
		r      []byte
		ps     bool
		want   string
		layout *fixed.Layout
	}{
		{rec("000", nil), false, "000", nil},
		{rec("999", nil), false, "999", nil},
		{rec("1", nil), false, "1", nil},
		{rec("2", nil), false, "2", nil},
		{rec("2", map[int]string{39: "S"}), false, "2S", Comp2S},
		{rec("2", map[int]string{39: "B"}), false, "2B", Comp2B},
		{rec("2", map[int]string{39: "P"}), false, "2P", Comp2P},
		{rec("2", map[int]string{36: "X"}), false, "2X", Comp2X},
		{rec("2", map[int]string{39: "C"}), false, "2C", Comp39Unknown},
		{rec("2", map[int]string{39: "S"}), true, "2", nil}, // PS: letter at 36 only
		{rec("2", map[int]string{36: "B"}), true, "2B", Comp36Unknown},
		{rec("3", nil), false, "3", nil},
		{rec("3", map[int]string{39: "S"}), false, "3S", Comp3S},
		{rec("3", map[int]string{39: "E"}), false, "3E", Comp3E},
		{rec("3", map[int]string{36: "F", 39: "AB"}), false, "3F", Comp3F},
		{rec("3", map[int]string{36: "H"}), false, "3H", Comp3H},
		{rec("4", nil), false, "4", nil},
		{rec("4", map[int]string{36: "S"}), false, "4S", Comp4S},
		{rec("4", map[int]string{36: "E"}), false, "4E", Comp4E},
		{rec("4", map[int]string{36: "B"}), false, "4B", Comp4B},
		{rec("4", map[int]string{36: "H"}), false, "4H", Comp4H},
		{rec("4", map[int]string{36: "M"}), false, "4M", Comp4M},
		{rec("4", map[int]string{36: "D"}), false, "4D", Comp36Unknown},
		{rec("4", map[int]string{39: "S"}), false, "4", nil}, // type 4: letter at 36 only
		{rec("5", nil), false, "5", nil},
		{rec("6", nil), false, "6", nil},
	}
	for _, c := range cases {
		k, pos, ok := classify(c.r, c.ps)
		if !ok || k.String() != c.want {
			t.Errorf("%q: %s %v, want %s", c.r[:40], k, ok, c.want)
			continue
		}
		if c.layout != nil && complementLayout(k, pos).L != c.layout {
			t.Errorf("%s: layout %s, want %s", c.want, complementLayout(k, pos).L.Name, c.layout.Name)
		}
	}
	for _, bad := range []string{"7", "8", "0", "00", "09", "99", "X", ""} {
		if _, _, ok := classify([]byte(bad), false); ok {
			t.Errorf("%q classified", bad)
		}
	}
}

// Unknown complement letters (and type-1 complements) are accepted, kept
// byte for byte, counted as lines (3x/4x), and carried by ExtractLot.
func TestUnknownComplementsPassThrough(t *testing.T) {
	r := baseRecs(t)
	i4 := find(t, r, "4S", 0)
	x := append([]byte(nil), r[i4]...)
	x[35] = 'X'
	copy(x[36:], "01 ANY UNKNOWN CONTENT 42")
	r = insert(r, i4+1, x)
	c1 := append([]byte(nil), r[1]...)
	c1[38] = 'V'
	copy(c1[39:], "TYPE 1 COMPLEMENT")
	r = insert(r, 2, c1)
	i2 := find(t, r, "2", 0)
	c2 := append([]byte(nil), r[i2]...)
	copy(c2[38:], "C01UNKNOWN INVOICE COMPLEMENT")
	r = fixup(insert(r, i2+1, c2))
	data := joinLF(r)
	rep, err := Validate(bytes.NewReader(data), Options{Summaries: true})
	if err != nil || !rep.Valid {
		t.Fatalf("%v %v", err, rep.Errors)
	}
	out, err := ExtractLot(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]byte{x, c1, c2} {
		if !bytes.Contains(out, want) {
			t.Fatalf("complement %q lost", want[:40])
		}
	}
	if got := roundTrip(t, data, func(b []byte) io.Reader { return bytes.NewReader(b) }); !bytes.Equal(got, data) {
		t.Fatal("round trip")
	}
}
