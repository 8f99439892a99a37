package b2

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
)

// split cuts a line-framed file into copies of its records.
func split(data []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n")) {
		out = append(out, append([]byte(nil), l...))
	}
	return out
}

func joinLF(recs [][]byte) []byte {
	var b bytes.Buffer
	for _, r := range recs {
		b.Write(r)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// kindAt names record i as the validator classifies it (CP variant).
func kindAt(recs [][]byte, i int) string {
	k, _, ok := classify(recs[i], false)
	if !ok {
		return "?"
	}
	return k.String()
}

// find returns the index of the n-th (0-based) record of a kind.
func find(t *testing.T, recs [][]byte, kind string, n int) int {
	t.Helper()
	for i := range recs {
		if kindAt(recs, i) == kind {
			if n == 0 {
				return i
			}
			n--
		}
	}
	t.Fatalf("no record %s", kind)
	return -1
}

// findAfter returns the first record of kind at or after index from.
func findAfter(t *testing.T, recs [][]byte, kind string, from int) int {
	t.Helper()
	for i := from; i < len(recs); i++ {
		if kindAt(recs, i) == kind {
			return i
		}
	}
	t.Fatalf("no record %s after %d", kind, from)
	return -1
}

// fixup recomputes the counts a structural edit changes (type 5 line count,
// type 6 counts, 999 record and lot counts); totals are left alone.
func fixup(recs [][]byte) [][]byte {
	var lines, lotLines, invoices, lots int64
	for i, r := range recs {
		if len(r) != RecordLength {
			continue
		}
		switch k, _, _ := classify(r, false); {
		case k.Type == '1' && i > 0 && recs[i-1][0] == '1' && isUpper(r[letterAt39]):
			// type-1 complement
		case k.Type == '1' && k.Letter == 0:
			lots++
			lotLines, invoices = 0, 0
		case k.Type == '2' && k.Letter == 0:
			invoices++
			lines = 0
		case k.Type == '3' || k.Type == '4':
			lines++
			lotLines++
		case k.Type == '5':
			_ = t5Count.SetInt(r, lines)
		case k.Type == '6':
			_ = t6Invoices.SetInt(r, invoices)
			_ = t6Invoices2.SetInt(r, invoices)
			_ = t6Invoices3.SetInt(r, invoices)
			_ = t6Lines.SetInt(r, lotLines)
		case k.Type == '9':
			_ = envelope.TRecordCount.SetInt(r, int64(len(recs)))
			_ = envelope.TLotCount.SetInt(r, lots)
		}
	}
	return recs
}

func remove(recs [][]byte, i int) [][]byte {
	return append(recs[:i:i], recs[i+1:]...)
}

func insert(recs [][]byte, i int, r []byte) [][]byte {
	out := append(recs[:i:i], r)
	return append(out, recs[i:]...)
}

// setInvoice rewrites the invoice number in every record of the invoice
// starting at index i (type 2) up to its type 5.
func setInvoice(recs [][]byte, i int, number int64) {
	for j := i; j < len(recs); j++ {
		r := recs[j]
		if _, pos, _ := classify(r, false); pos == letterAt36 {
			_ = Comp3F.Ref("invoice").SetInt(r, number)
		} else {
			_ = Type2.Ref("invoice").SetInt(r, number)
		}
		if r[0] == '5' {
			return
		}
	}
}

// setNIRKey rewrites the NIR key (cols 25-26) of the invoice starting at i.
func setNIRKey(recs [][]byte, i int, key string) {
	for j := i; j < len(recs); j++ {
		copy(recs[j][24:26], key)
		if recs[j][0] == '5' {
			return
		}
	}
}

type want struct {
	code   fixed.Code
	record int // 1-based; -1 = do not check
	field  string
}

func baseRecs(t *testing.T) [][]byte {
	return split(genFile(t, GenOptions{Seed: 0, Lots: 2, Invoices: 4, Framing: FramingLF}))
}

// TestErrorCodes: one table row per code (and per way to get it), each a
// precise edit of a valid file; the validator must report exactly the
// expected errors with their record numbers and fields.
func TestErrorCodes(t *testing.T) {
	type tc struct {
		name string
		edit func(t *testing.T, r [][]byte) ([][]byte, []want)
		opt  Options
	}
	cases := []tc{
		{"record-length short", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "3", 0)
			r[i] = r[i][:100]
			return r, []want{{ErrRecordLength, i + 1, ""}}
		}, Options{}},
		{"record-length long", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "4", 1)
			r[i] = append(r[i], "EXTRA"...)
			return r, []want{{ErrRecordLength, i + 1, ""}}
		}, Options{}},
		{"record-length declared in 000", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			copy(envelope.HRecordLength.Bytes(r[0]), "120")
			return r, []want{{ErrRecordLength, 1, "record_length"}}
		}, Options{}},
		{"charset lower case", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			copy(Type1.Ref("sender_name").Bytes(r[1]), "Clinique")
			return r, []want{{ErrCharset, 2, "sender_name"}}
		}, Options{}},
		{"charset accent (UTF-8)", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "1", 1)
			copy(Type1.Ref("sender_name").Bytes(r[i]), "CLINIQUE \xc3\x89")
			return r, []want{{ErrCharset, i + 1, "sender_name"}}
		}, Options{}},
		{"charset byte > 0x7F in a reserved zone", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "6", 0)
			r[i][100] = 0xFF
			return r, []want{{ErrCharset, i + 1, "filler1"}}
		}, Options{}},
		{"charset apostrophe", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "2S", 0)
			copy(Comp2S.Ref("gp_surname").Bytes(r[i]), "D'ARC")
			return r, []want{{ErrCharset, i + 1, "gp_surname"}}
		}, Options{}},
		{"charset hyphen in a numeric field", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "2", 0)
			copy(Type2.Ref("centre").Bytes(r[i]), "00-1")
			return r, []want{{ErrCharset, i + 1, "centre"}}
		}, Options{}},
		{"record-type", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "6", 0) + 1
			junk := bytes.Repeat([]byte(" "), RecordLength)
			junk[0] = '8'
			r = fixup(insert(r, i, junk))
			return r, []want{{ErrRecordType, i + 1, "type"}}
		}, Options{}},
		{"record-order 2S after 2P", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "2S", 0)
			if kindAt(r, i+1) != "2P" {
				t.Fatal("the generated layout changed: adapt the test")
			}
			r[i], r[i+1] = r[i+1], r[i]
			return r, []want{{ErrRecordOrder, i + 2, "letter"}}
		}, Options{}},
		{"record-order 3S twice", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "3S", 0)
			r = fixup(insert(r, i+1, append([]byte(nil), r[i]...)))
			return r, []want{{ErrRecordOrder, i + 2, "letter"}}
		}, Options{}},
		{"record-order 4E without 4S", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "4E", 0)
			if kindAt(r, i-1) != "4S" {
				t.Fatal("the generated layout changed: adapt the test")
			}
			r = fixup(remove(r, i-1))
			return r, []want{{ErrRecordOrder, i, "letter"}}
		}, Options{}},
		{"record-order 4M sequence", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "4M", 0)
			r = fixup(insert(r, i+1, append([]byte(nil), r[i]...))) // same sequence twice
			return r, []want{{ErrRecordOrder, i + 2, "seq"}}
		}, Options{}},
		{"record-order 3F sequence above 10", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "3F", 0)
			copy(seq37Ref.Bytes(r[i]), "11")
			return r, []want{{ErrRecordOrder, i + 1, "seq"}}
		}, Options{}},
		{"record-order missing type 5", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "5", 0)
			r = fixup(remove(r, i))
			return r, []want{{ErrRecordOrder, i + 1, ""}}
		}, Options{}},
		{"record-order missing type 6", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "6", 0)
			r = fixup(remove(r, i))
			return r, []want{{ErrRecordOrder, i + 1, ""}}
		}, Options{}},
		{"record-order missing type 1", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			r = fixup(remove(r, 1))
			return r, []want{{ErrRecordOrder, 2, ""}}
		}, Options{}},
		{"record-order second 000", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "6", 0) + 1
			r = fixup(insert(r, i, append([]byte(nil), r[0]...)))
			return r, []want{{ErrRecordOrder, i + 1, ""}}
		}, Options{}},
		{"record-order after 999", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			r = append(r, append([]byte(nil), r[1]...))
			return r, []want{{ErrRecordOrder, len(r), ""}}
		}, Options{}},
		{"numeric-field", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "3", 1)
			copy(Type3.Ref("quantity").Bytes(r[i]), "0A1")
			return r, []want{{ErrNumericField, i + 1, "quantity"}}
		}, Options{}},
		{"numeric-field blank amount", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "5", 0)
			copy(Type5.Ref("amc_fees").Bytes(r[i]), "        ")
			return r, []want{{ErrNumericField, i + 1, "amc_fees"}}
		}, Options{}},
		{"numeric-field invoice number 0", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "2", 1)
			setInvoice(r, i, 0)
			return r, []want{{ErrNumericField, i + 1, "invoice"}}
		}, Options{}},
		{"date impossible", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "2", 0)
			copy(Type2.Ref("entry_date").Bytes(r[i]), "260230")
			return r, []want{{ErrDate, i + 1, "entry_date"}}
		}, Options{}},
		{"date not digits", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "3S", 0)
			copy(Comp3S.Ref("prescription_date").Bytes(r[i]), "26AB01")
			return r, []want{{ErrDate, i + 1, "prescription_date"}}
		}, Options{}},
		{"date 29 February of a non-leap year", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			copy(envelope.HCreated.Bytes(r[0]), "250229")
			return r, []want{{ErrDate, 1, "created"}}
		}, Options{}},
		{"date lot date missing", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			copy(t1Date.Bytes(r[1]), "000000")
			return r, []want{{ErrDate, 2, "lot_date"}}
		}, Options{}},
		{"nir-key", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "2", 2)
			k := string(r[i][24:26])
			nk := "01"
			if k == nk {
				nk = "02"
			}
			setNIRKey(r, i, nk)
			return r, []want{{ErrNIRKey, i + 1, "nir_key"}}
		}, Options{}},
		{"nir-key NIR syntax", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "2", 0)
			for j := i; ; j++ {
				r[j][13] = 'X'
				if r[j][0] == '5' {
					break
				}
			}
			return r, []want{{ErrNIRKey, i + 1, "nir"}}
		}, Options{}},
		{"nir-key individual NIR of 2S", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "2S", 0)
			copy(c2SNIR.Bytes(r[i]), r[i][11:24])
			copy(c2SKey.Bytes(r[i]), "00")
			return r, []want{{ErrNIRKey, i + 1, "individual_nir"}}
		}, Options{}},
		{"invoice-keys", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "5", 1)
			copy(Type5.Ref("rank").Bytes(r[i]), "001")
			return r, []want{{ErrInvoiceKeys, i + 1, "rank"}}
		}, Options{}},
		{"invoice-line-count", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "5", 2)
			n, _ := t5Count.Int(r[i])
			_ = t5Count.SetInt(r[i], n+1)
			return r, []want{{ErrInvoiceLineCount, i + 1, "line_count"}}
		}, Options{}},
		{"invoice-line-count no line", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "2", 1)
			j := findAfter(t, r, "5", i)
			// keep the type 2 and its complements, drop the lines, zero the totals
			var out [][]byte
			for k := range r {
				kd := kindAt(r, k)
				if k > i && k < j && (kd[0] == '3' || kd[0] == '4') {
					continue
				}
				out = append(out, r[k])
			}
			t5 := out[len(out)-(len(r)-j)]
			for _, ref := range t5Totals {
				_ = ref.SetInt(t5, 0)
			}
			out = fixup(out)
			return out, []want{{ErrInvoiceLineCount, len(out) - (len(r) - j) + 1, "line_count"}}
		}, Options{}},
		{"invoice-total", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "5", 3)
			v, _ := Type5.Ref("amc_fees").Int(r[i])
			_ = Type5.Ref("amc_fees").SetInt(r[i], v+1)
			return r, []want{{ErrInvoiceTotal, i + 1, "amc_fees"}}
		}, Options{}},
		{"duplicate-invoice", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			a, b := find(t, r, "2", 0), find(t, r, "2", 2)
			n, _ := Type2.Ref("invoice").Int(r[a])
			setInvoice(r, b, n)
			return r, []want{{ErrDuplicateInvoice, b + 1, "invoice"}}
		}, Options{}},
		{"same invoice number in two lots is fine", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			a, b := find(t, r, "2", 0), find(t, r, "2", 5)
			n, _ := Type2.Ref("invoice").Int(r[a])
			setInvoice(r, b, n)
			return r, nil
		}, Options{}},
		{"lot-number", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "6", 1)
			copy(t6Lot.Bytes(r[i]), "777")
			return r, []want{{ErrLotNumber, i + 1, "lot_number"}}
		}, Options{}},
		{"lot-counts", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "6", 0)
			copy(t6Invoices2.Bytes(r[i]), "0009")
			return r, []want{{ErrLotCounts, i + 1, "invoices2"}}
		}, Options{}},
		{"lot-count", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			copy(envelope.TLotCount.Bytes(r[len(r)-1]), "003")
			return r, []want{{ErrLotCount, len(r), "lot_count"}}
		}, Options{}},
		{"record-count", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			n, _ := envelope.TRecordCount.Int(r[len(r)-1])
			_ = envelope.TRecordCount.SetInt(r[len(r)-1], n-1)
			return r, []want{{ErrRecordCount, len(r), "record_count"}}
		}, Options{}},
		{"header-mismatch", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			copy(r[len(r)-1][27:41], "00000001999999")
			return r, []want{{ErrHeaderMismatch, len(r), "receiver"}}
		}, Options{}},
		{"missing-trailer", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			return r[:len(r)-1], []want{{ErrMissingTrailer, 0, ""}}
		}, Options{}},
		{"billing-delay", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "4", 0)
			copy(Type4.Ref("care_date").Bytes(r[i]), "250301") // lot date 260302: 366 days, no 29 Feb
			return r, []want{{ErrBillingDelay, i + 1, "care_date"}}
		}, Options{}},
		{"billing-delay exactly one year is fine", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "4", 0)
			copy(Type4.Ref("care_date").Bytes(r[i]), "250302")
			return r, nil
		}, Options{}},
		{"billing-delay type 3 stay", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "3", 0)
			copy(t3Start.Bytes(r[i]), "240101")
			copy(t3End.Bytes(r[i]), "240110")
			return r, []want{{ErrBillingDelay, i + 1, "stay_end"}}
		}, Options{}},
		{"unknown-amc", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			i := find(t, r, "2", 1)
			copy(t2AMC.Bytes(r[i]), "99999999  ")
			return r, []want{{ErrUnknownAMC, i + 1, "amc"}}
		}, Options{KnownAMC: func(a string) bool { return a != "99999999" }}},
		{"not-b2 first record", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			r[0][0] = 'X'
			return r, []want{{ErrNotB2, 1, ""}}
		}, Options{}},
		{"not-b2 NOEMIE norm", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			copy(envelope.HNorm.Bytes(r[0]), "580 ")
			return r, []want{{ErrNotB2, 1, "norm"}}
		}, Options{}},
		{"not-b2 junk after the header", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			out := [][]byte{r[0]}
			for i := 0; i < 100; i++ {
				out = append(out, []byte("THIS IS NOT A B2 RECORD"))
			}
			var w []want
			for i := 0; i < MaxJunkRun; i++ {
				w = append(w, want{ErrRecordLength, i + 2, ""})
			}
			return out, append(w, want{ErrNotB2, MaxJunkRun + 1, ""})
		}, Options{}},
		{"file-too-large", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			return r, []want{{ErrFileTooLarge, 16, ""}}
		}, Options{Limits: Limits{MaxBytes: 15*129 + 100}}},
		{"too-many-records", func(t *testing.T, r [][]byte) ([][]byte, []want) {
			return r, []want{{ErrTooManyRecords, 11, ""}}
		}, Options{Limits: Limits{MaxRecords: 10}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recs, ws := c.edit(t, baseRecs(t))
			rep, err := Validate(bytes.NewReader(joinLF(recs)), c.opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Errors) != len(ws) || rep.Valid != (len(ws) == 0) {
				t.Fatalf("got %d errors %v, want %v", len(rep.Errors), rep.Errors, ws)
			}
			for i, w := range ws {
				e := rep.Errors[i]
				if e.Code != w.code || (w.record >= 0 && e.Record != int64(w.record)) || e.Field != w.field {
					t.Fatalf("error %d: got %s rec %d field %q (%s), want %s rec %d field %q", i, e.Code, e.Record, e.Field, e.Message, w.code, w.record, w.field)
				}
				if !errors.Is(&e, w.code) || e.Message == "" {
					t.Fatal("errors.Is / message")
				}
			}
		})
	}
}

// Every exported code is documented, and every validation code has a row
// above (checked by name so that a new code without test fails here).
func TestEveryCodeDocumentedAndTested(t *testing.T) {
	doc, err := readDoc()
	if err != nil {
		t.Skip(err)
	}
	for _, c := range Codes() {
		if !strings.Contains(doc, "`"+string(c)+"`") {
			t.Errorf("code %s not in docs/formats/validation.md", c)
		}
	}
}

func TestTooLate(t *testing.T) {
	d := func(y, m, dd int) fixed.Day { return fixed.Day{Year: y, Month: timeMonth(m), Dom: dd} }
	cases := []struct {
		care, lot fixed.Day
		late      bool
	}{
		{d(2025, 3, 2), d(2026, 3, 2), false}, // 365 days
		{d(2025, 3, 1), d(2026, 3, 2), true},  // 366 days, no 29 February
		{d(2023, 3, 1), d(2024, 3, 1), false}, // 366 days across 29 February
		{d(2023, 3, 1), d(2024, 3, 2), true},
		{d(2024, 2, 29), d(2025, 3, 1), false},
		{d(2024, 2, 29), d(2025, 3, 2), true},
		{d(2026, 3, 10), d(2026, 3, 2), false}, // after the lot date: not this check
	}
	for _, c := range cases {
		if got := tooLate(c.care, c.lot); got != c.late {
			t.Errorf("%s → %s: %v", c.care, c.lot, got)
		}
	}
}

// Reading stops early on junk: a 10 MB stream that is not B2 is refused
// after the first record, without reading the rest.
func TestJunkRefusedEarly(t *testing.T) {
	cr := &countReader{r: io.LimitReader(zeroes{}, 10<<20)}
	rep, err := Validate(cr, Options{})
	if err != nil || rep.Valid || rep.Errors[0].Code != ErrNotB2 {
		t.Fatalf("%v %v", err, rep)
	}
	if cr.n > 256<<10 {
		t.Fatalf("read %d bytes of junk", cr.n)
	}
	rep, _ = Validate(strings.NewReader(""), Options{})
	if rep.Valid || rep.Errors[0].Code != ErrNotB2 {
		t.Fatalf("empty: %v", rep.Errors)
	}
}

type zeroes struct{}

func (zeroes) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'Z'
	}
	return len(p), nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestMaxErrorsDropped(t *testing.T) {
	r := baseRecs(t)
	for i := range r {
		if r[i][0] == '3' && kindAt(r, i) == "3" {
			copy(Type3.Ref("dmt").Bytes(r[i]), "ABC")
		}
	}
	rep, _ := Validate(bytes.NewReader(joinLF(r)), Options{Limits: Limits{MaxErrors: 2}})
	if len(rep.Errors) != 2 || rep.Dropped == 0 || rep.Valid {
		t.Fatalf("%d kept, %d dropped", len(rep.Errors), rep.Dropped)
	}
}
