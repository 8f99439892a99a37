package b2

import (
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/nir"
)

// GenOptions drive Generate.
type GenOptions struct {
	Seed     int64
	Lots     int        // lots in the file; 0 means 1
	Invoices int        // invoices per lot; 0 means 3
	Fault    fixed.Code // "" for a valid file, else one of GenFaults()
	LotDate  fixed.Day  // zero means DefaultLotDate
	Emitter  string     // 9 digits; "" means DefaultEmitter
	Variant  string     // "CP" (default), "ES", or anything else for the PS layout
	Test     bool       // type de flux T in the 000 header
	Framing  Framing
}

// Generator defaults (fixed so that output is deterministic).
var DefaultLotDate = fixed.Day{Year: 2026, Month: time.March, Dom: 2}

const DefaultEmitter = "750000001"

// ErrGenOptions is returned by Generate for options it cannot honour.
const ErrGenOptions fixed.Code = "gen-options"

var genFaults = []fixed.Code{
	ErrRecordLength, ErrCharset, ErrRecordType, ErrRecordOrder, ErrNumericField, ErrDate,
	ErrNIRKey, ErrInvoiceKeys, ErrInvoiceLineCount, ErrInvoiceTotal, ErrDuplicateInvoice,
	ErrLotNumber, ErrLotCounts, ErrLotCount, ErrRecordCount, ErrHeaderMismatch,
	ErrMissingTrailer, ErrBillingDelay, ErrNotB2,
}

// GenFaults lists the codes Generate can inject. Validating a file
// generated with one of them reports that code and no other. In the PS
// variant invoice-total cannot be injected (its type 5 layout is unknown)
// and invoice-line-count is injected as an invoice without lines.
func GenFaults() []fixed.Code { return append([]fixed.Code(nil), genFaults...) }

// Generate writes a deterministic, realistic B2 file: valid NIR keys,
// consistent totals, type 3 and 4 lines with complements (2S, 2P, 2B, 3S,
// 3E, 3F, 4S, 4E, 4M), optionally with exactly one fault.
func Generate(w io.Writer, opt GenOptions) error {
	g, err := newGen(opt)
	if err != nil {
		return err
	}
	bw := NewWriter(w, opt.Framing)
	if err := g.run(bw); err != nil {
		return err
	}
	return bw.Flush()
}

type gen struct {
	opt     GenOptions
	rng     *rand.Rand
	v       *variant
	arena   []byte
	recs    []int // offsets of the current lot's records in arena
	err     error
	header  []byte
	count   int64 // physical records written
	lotDate fixed.Day
	invNo   int64
}

func newGen(opt GenOptions) (*gen, error) {
	if opt.Lots == 0 {
		opt.Lots = 1
	}
	if opt.Invoices == 0 {
		opt.Invoices = 3
	}
	if opt.LotDate.IsZero() {
		opt.LotDate = DefaultLotDate
	}
	if opt.Emitter == "" {
		opt.Emitter = DefaultEmitter
	}
	if opt.Variant == "" {
		opt.Variant = "CP"
	}
	switch {
	case opt.Lots < 0 || opt.Lots > 999 || opt.Invoices < 0 || opt.Invoices > 999:
		return nil, fixed.Errorf(ErrGenOptions, 0, "", "lots and invoices must be 1..999")
	case len(opt.Emitter) != 9 || !fixed.AllDigits([]byte(opt.Emitter)):
		return nil, fixed.Errorf(ErrGenOptions, 0, "", "emitter must be 9 digits")
	case len(opt.Variant) != 2 || fixed.UpperAlnum.FirstBad([]byte(opt.Variant)) >= 0:
		return nil, fixed.Errorf(ErrGenOptions, 0, "", "variant must be 2 upper-case characters")
	case opt.Framing > FramingCRLF:
		return nil, fixed.Errorf(ErrGenOptions, 0, "", "unknown framing")
	}
	if opt.Fault != "" {
		known := false
		for _, c := range genFaults {
			known = known || c == opt.Fault
		}
		if !known {
			return nil, fixed.Errorf(ErrGenOptions, 0, "", "fault %q cannot be injected", opt.Fault)
		}
	}
	if opt.Fault == ErrInvoiceTotal && !variantOf([]byte(opt.Variant)).full {
		return nil, fixed.Errorf(ErrGenOptions, 0, "", "invoice-total cannot be injected in the %s variant: its type 5 layout is unknown", opt.Variant)
	}
	if opt.Fault == ErrDuplicateInvoice && opt.Invoices < 2 {
		opt.Invoices = 2
	}
	return &gen{
		opt:     opt,
		rng:     rand.New(rand.NewPCG(uint64(opt.Seed), 0x4f43542d4232)),
		v:       variantOf([]byte(opt.Variant)),
		lotDate: opt.LotDate,
		arena:   make([]byte, 0, 64*RecordLength),
	}, nil
}

func (g *gen) fault(c fixed.Code) bool { return g.opt.Fault == c }

// newRec appends a blank record to the current lot and returns its index.
func (g *gen) newRec() int {
	off := len(g.arena)
	for i := 0; i < RecordLength; i++ {
		g.arena = append(g.arena, ' ')
	}
	g.recs = append(g.recs, off)
	return len(g.recs) - 1
}

func (g *gen) rec(i int) []byte { return g.arena[g.recs[i] : g.recs[i]+RecordLength] }

func (g *gen) check(err error) {
	if err != nil && g.err == nil {
		g.err = err
	}
}

func (g *gen) setInt(i int, r fixed.Ref, v int64)     { g.check(r.SetInt(g.rec(i), v)) }
func (g *gen) setStr(i int, r fixed.Ref, s string)    { g.check(r.SetString(g.rec(i), s)) }
func (g *gen) setDay(i int, r fixed.Ref, d fixed.Day) { g.check(r.SetDate(g.rec(i), d)) }

// zeroNumeric fills every Numeric, Amount and Date field of a record with
// zeros (optional numeric fields are zero-filled, §1.2).
func (g *gen) zeroNumeric(i int, l *fixed.Layout) {
	rec := g.rec(i)
	for _, r := range l.Refs() {
		if r.Kind == fixed.Numeric || r.Kind == fixed.Amount || r.Kind == fixed.Date {
			b := r.Bytes(rec)
			for j := range b {
				b[j] = '0'
			}
		}
	}
}

func (g *gen) daysBefore(d fixed.Day, n int) fixed.Day {
	return fixed.DayOf(d.Time().AddDate(0, 0, -n))
}

func (g *gen) run(w *Writer) error {
	o := g.opt
	info := envelope.Info{
		SenderType: "TE", Sender: "00000" + o.Emitter, ReceiverType: "CT", Receiver: "00000001422422",
		Application: "TR", FileID: fmt.Sprintf("F%05d", uint64(o.Seed)%100000), Created: g.lotDate,
		Norm: o.Variant, Version: "B2", Test: o.Test,
	}
	hdr, err := envelope.Encode(info)
	if err != nil {
		return err
	}
	g.header = hdr
	out := hdr
	if g.fault(ErrNotB2) {
		out = append([]byte(nil), hdr...)
		copy(out, "XYZ")
	}
	if err := w.Write(out); err != nil {
		return err
	}
	g.count = 1
	for l := 0; l < o.Lots; l++ {
		g.arena, g.recs = g.arena[:0], g.recs[:0]
		g.lot(l)
		if g.err != nil {
			return g.err
		}
		if err := g.flushLot(w, l); err != nil {
			return err
		}
	}
	if g.fault(ErrMissingTrailer) {
		return nil
	}
	lots := int64(o.Lots)
	if g.fault(ErrLotCount) {
		lots++
	}
	records := g.count + 1
	if g.fault(ErrRecordCount) {
		records++
	}
	tr, err := envelope.EncodeTrailer(hdr, records, lots, -1)
	if err != nil {
		return err
	}
	if g.fault(ErrHeaderMismatch) {
		copy(envelope.HFileID.Bytes(tr), "ZZZZZZ")
	}
	if g.fault(ErrRecordLength) && o.Framing == FramingNone {
		tr = tr[:RecordLength-1] // a short last record
		_, err := w.w.Write(tr)
		return err
	}
	return w.Write(tr)
}

// flushLot writes the current lot, applying the faults that change the
// physical layout.
func (g *gen) flushLot(w *Writer, l int) error {
	for i := range g.recs {
		rec := g.rec(i)
		if l == 0 && i == 2 && g.fault(ErrRecordLength) && g.opt.Framing != FramingNone {
			rec = rec[:RecordLength-1]
			if _, err := w.w.Write(rec); err != nil {
				return err
			}
			if _, err := w.w.WriteString(w.term); err != nil {
				return err
			}
			g.count++
			continue
		}
		if err := w.Write(rec); err != nil {
			return err
		}
		g.count++
	}
	return nil
}

// lot builds one lot in the arena.
func (g *gen) lot(l int) {
	o := g.opt
	number := int64(l+1) % 1000
	h := g.newRec()
	g.zeroNumeric(h, Type1)
	g.setInt(h, t1Emitter, 0)
	g.check(t1Emitter.SetString(g.rec(h), o.Emitter))
	g.setStr(h, Type1.Ref("type"), "1")
	g.setInt(h, t1Caisse, 422)
	g.setInt(h, t1Lot, number)
	g.setStr(h, Type1.Ref("category"), "189")
	g.setStr(h, Type1.Ref("legal_status"), "60")
	g.setStr(h, Type1.Ref("pricing_mode"), "05")
	name := "CLINIQUE DU PARC"
	if g.fault(ErrCharset) && l == 0 {
		name = "CLINIQUE DU PARc"
	}
	g.setStr(h, Type1.Ref("sender_name"), name)
	g.setStr(h, Type1.Ref("norm"), "B2")
	g.setDay(h, t1Date, g.lotDate)
	g.setStr(h, t1Variant, o.Variant)
	g.setStr(h, Type1.Ref("norm_version"), "062007")
	g.setStr(h, Type1.Ref("currency"), "U")

	var lines, invoices, billed int64
	for k := 0; k < o.Invoices; k++ {
		n, b := g.invoice(l, k)
		lines += n
		billed += b
		invoices++
		if l == 0 && k == 0 && g.fault(ErrRecordType) {
			j := g.newRec()
			copy(g.rec(j), "8 UNKNOWN RECORD TYPE")
		}
	}
	t := g.newRec()
	g.zeroNumeric(t, Type6)
	g.setStr(t, Type6.Ref("type"), "6")
	g.check(t6Emitter.SetString(g.rec(t), o.Emitter))
	g.setInt(t, t6Invoices, invoices)
	if g.fault(ErrLotCounts) && l == 0 {
		lines++
	}
	g.setInt(t, t6Lines, lines)
	g.setInt(t, t6Invoices2, invoices)
	g.setInt(t, t6Invoices3, invoices)
	g.setInt(t, t6Amount1, billed)
	g.setInt(t, Type6.Ref("amount2"), billed)
	g.setStr(t, Type6.Ref("zeros"), "000000000")
	if g.fault(ErrLotNumber) && l == 0 {
		number = (number + 1) % 1000
	}
	g.setInt(t, t6Lot, number)
}

// makeNIR returns a random NIR (13 characters) and its key.
func (g *gen) makeNIR() (string, int) {
	sex := 1 + g.rng.IntN(2)
	yy := g.rng.IntN(100)
	mm := 1 + g.rng.IntN(12)
	var dept string
	switch r := g.rng.IntN(40); {
	case r == 0:
		dept = "2A"
	case r == 1:
		dept = "2B"
	default:
		dept = fmt.Sprintf("%02d", 1+g.rng.IntN(95))
		if dept == "20" {
			dept = "21"
		}
	}
	s := fmt.Sprintf("%d%02d%02d%s%03d%03d", sex, yy, mm, dept, 1+g.rng.IntN(999), 1+g.rng.IntN(999))
	k, _ := nir.KeyOf([]byte(s))
	return s, k
}

// keys writes the invoice keys (cols 2-38, or the col-36 head) into rec i.
func (g *gen) keys(i int, nirS string, key int, number int64, head36 bool) {
	rec := g.rec(i)
	copy(rec[1:10], g.opt.Emitter)
	copy(rec[11:24], nirS)
	rec[24], rec[25] = byte('0'+key/10), byte('0'+key%10)
	if head36 || !g.v.full && rec[0] == '2' || !g.v.full && rec[0] == '5' {
		g.check(Comp3F.Ref("invoice").SetInt(rec, number))
		return
	}
	copy(rec[26:29], "000")
	g.check(Type2.Ref("invoice").SetInt(rec, number))
}

// invoice builds one invoice; it returns its 3x/4x record count and its
// billed amount.
func (g *gen) invoice(l, k int) (int64, int64) {
	g.invNo++
	number := g.invNo
	if g.fault(ErrDuplicateInvoice) && l == 0 && k == 1 {
		number = g.invNo - 1
	}
	faulty := l == 0 && k == 0
	nirS, key := g.makeNIR()
	if g.fault(ErrNIRKey) && faulty {
		key = key%97 + 1
	}
	v := g.v
	t2 := v.t2.L
	h := g.newRec()
	rec := g.rec(h)
	rec[0] = '2'
	g.zeroNumeric(h, t2)
	rec[0] = '2'
	g.keys(h, nirS, key, number, false)
	amc := fmt.Sprintf("%08d", 10000000+g.rng.IntN(90000000))
	g.setStr(h, t2.Ref("amc"), amc)
	if v.full {
		g.setInt(h, Type2.Ref("operation"), 1)
		g.setInt(h, Type2.Ref("entry_number"), int64(g.rng.IntN(1000000)))
		if g.fault(ErrNumericField) && faulty {
			copy(Type2.Ref("entry_number").Bytes(g.rec(h))[3:], "12A456")
		}
		g.setInt(h, t2Regime, 1)
		g.setInt(h, t2Caisse, 422)
		g.setInt(h, Type2.Ref("centre"), 1)
		g.setInt(h, Type2.Ref("insurance_nature"), 10)
		g.setStr(h, Type2.Ref("exemption"), "0")
		g.setInt(h, Type2.Ref("birth_date"), int64(g.rng.IntN(991231)))
		g.setInt(h, Type2.Ref("contract"), 0)
		entryDate := g.daysBefore(g.lotDate, 20+g.rng.IntN(30))
		g.setDay(h, Type2.Ref("entry_date"), entryDate)
		if g.fault(ErrDate) && faulty {
			copy(Type2.Ref("exit_date").Bytes(g.rec(h)), "260230")
		} else {
			g.setDay(h, Type2.Ref("exit_date"), g.daysBefore(entryDate, -3))
		}
	} else {
		g.setDay(h, Type2PS.Ref("invoice_date"), g.lotDate)
		g.setStr(h, Type2PS.Ref("invoice_type"), "F")
		g.setInt(h, Type2PS.Ref("birth_date"), int64(g.rng.IntN(991231)))
		g.setInt(h, Type2PS.Ref("birth_rank"), 1)
		if g.fault(ErrNumericField) && faulty {
			copy(Type2PS.Ref("birth_rank").Bytes(g.rec(h)), "X")
		}
		if g.fault(ErrDate) && faulty {
			copy(Type2PS.Ref("invoice_date").Bytes(g.rec(h)), "260230")
		}
	}
	// Invoice complements (CP/ES layouts: letter at 39 / 36).
	withS := v.full && (g.rng.IntN(2) == 0 || faulty)
	withP := v.full && (g.rng.IntN(3) == 0 || faulty)
	comp := func(l *fixed.Layout, letter string) int {
		j := g.newRec()
		g.rec(j)[0] = '2'
		g.zeroNumeric(j, l)
		g.rec(j)[0] = '2'
		g.keys(j, nirS, key, number, l == Comp2X)
		g.setStr(j, l.Ref("letter"), letter)
		return j
	}
	emitS := func() {
		j := comp(Comp2S, "S")
		g.setInt(j, Comp2S.Ref("seq"), 1)
		g.setStr(j, Comp2S.Ref("gp_declared"), "O")
		g.setStr(j, Comp2S.Ref("gp_surname"), "MARTIN")
		g.setStr(j, Comp2S.Ref("ips"), "O")
	}
	emitP := func() {
		j := comp(Comp2P, "P")
		g.setInt(j, Comp2P.Ref("seq"), 1)
		g.setStr(j, Comp2P.Ref("specialty"), "64")
		g.setStr(j, c2PPEC, fmt.Sprintf("PEC%013d", number))
	}
	if g.fault(ErrRecordOrder) && faulty && v.full {
		emitP()
		emitS()
	} else {
		if withS {
			emitS()
		}
		if withP {
			emitP()
		}
	}
	if v.full && g.rng.IntN(4) == 0 {
		j := comp(Comp2B, "B")
		g.setInt(j, Comp2B.Ref("seq"), 1)
		g.setStr(j, Comp2B.Ref("surname"), "DUPONT")
		g.setStr(j, Comp2B.Ref("firstname"), "JEANNE")
	}

	var sums [8]int64
	var lines int64
	nLines := 1 + g.rng.IntN(3)
	if faulty && g.fault(ErrInvoiceLineCount) && !v.full {
		nLines = 0 // the PS trailer layout is unknown: inject an empty invoice
	}
	for li := 0; li < nLines; li++ {
		if v.full && (li == 0 || g.rng.IntN(2) == 0) && !(faulty && li == nLines-1 && g.fault(ErrBillingDelay)) {
			lines += g.line3(nirS, key, number, &sums)
		} else {
			lines += g.line4(nirS, key, number, &sums, faulty && li == nLines-1)
		}
	}
	t := g.newRec()
	g.rec(t)[0] = '5'
	g.zeroNumeric(t, v.t5.L)
	g.rec(t)[0] = '5'
	tNumber := number
	if g.fault(ErrInvoiceKeys) && faulty {
		tNumber = number + 500000
	}
	g.keys(t, nirS, key, tNumber, false)
	if v.full {
		count := lines
		if g.fault(ErrInvoiceLineCount) && faulty {
			count++
		}
		g.setInt(t, t5Count, count)
		if g.fault(ErrInvoiceTotal) && faulty {
			sums[sFees] += 100
		}
		for i, r := range t5Totals {
			g.setInt(t, r, sums[i])
		}
	}
	return lines, sums[sBilled] + sums[sFees]
}

func (g *gen) lineHead(kind byte, l *fixed.Layout, nirS string, key int, number int64, head36 bool) int {
	j := g.newRec()
	g.rec(j)[0] = kind
	g.zeroNumeric(j, l)
	g.rec(j)[0] = kind
	g.keys(j, nirS, key, number, head36)
	return j
}

// line3 writes a type-3 line with 3S, sometimes 3E and 3F; returns the
// record count.
func (g *gen) line3(nirS string, key int, number int64, sums *[8]int64) int64 {
	j := g.lineHead('3', Type3, nirS, key, number, false)
	r := Type3
	qty := int64(1 + g.rng.IntN(5))
	price := int64(5000 + g.rng.IntN(90000))
	total := qty * price
	amo := total * 80 / 100
	amc := total - amo
	end := g.daysBefore(g.lotDate, 1+g.rng.IntN(40))
	g.setInt(j, r.Ref("mt"), 3)
	g.setInt(j, r.Ref("dmt"), 100+int64(g.rng.IntN(800)))
	g.setDay(j, t3Start, g.daysBefore(end, int(qty)))
	g.setDay(j, t3End, end)
	g.setStr(j, r.Ref("act_code"), "PJ")
	g.setInt(j, r.Ref("quantity"), qty)
	g.setStr(j, r.Ref("exemption"), "0")
	g.setInt(j, r.Ref("coefficient"), 100)
	g.setInt(j, r.Ref("unit_price"), price)
	g.setInt(j, t3Base, total)
	g.setInt(j, r.Ref("rate"), 80)
	g.setInt(j, t3AMO, amo)
	g.setInt(j, t3Total, total)
	g.setInt(j, t3AMC, amc)
	sums[sBase] += total
	sums[sAMOServices] += amo
	sums[sPatient] += total - amo
	sums[sAMCServices] += amc
	sums[sBilled] += total
	n := int64(1)
	s := g.lineHead('3', Comp3S, nirS, key, number, false)
	g.setStr(s, Comp3S.Ref("letter"), "S")
	g.setInt(s, Comp3S.Ref("seq"), 1)
	g.setInt(s, Comp3S.Ref("prescriber"), 751000001)
	g.setDay(s, Comp3S.Ref("prescription_date"), g.daysBefore(end, 10))
	n++
	if g.rng.IntN(2) == 0 {
		e := g.lineHead('3', Comp3E, nirS, key, number, false)
		g.setStr(e, Comp3E.Ref("letter"), "E")
		g.setInt(e, Comp3E.Ref("seq"), 1)
		g.setInt(e, Comp3E.Ref("rpps"), 10000000000+int64(g.rng.IntN(1000000000)))
		n++
	}
	if g.rng.IntN(3) == 0 {
		for q := 1; q <= 1+g.rng.IntN(2); q++ {
			f := g.lineHead('3', Comp3F, nirS, key, number, true)
			g.setStr(f, Comp3F.Ref("letter"), "F")
			g.setInt(f, seq37Ref, int64(q))
			g.setStr(f, Comp3F.Ref("lpp_code"), fmt.Sprintf("%07d", 1000000+g.rng.IntN(9000000)))
			g.setInt(f, Comp3F.Ref("quantity"), 1)
			n++
		}
	}
	return n
}

// line4 writes a type-4 line with 4S, sometimes 4E and 4M.
func (g *gen) line4(nirS string, key int, number int64, sums *[8]int64, faulty bool) int64 {
	late := faulty && g.fault(ErrBillingDelay)
	noS := faulty && g.fault(ErrRecordOrder) && !g.v.full
	v := g.v
	l := v.t4.L
	j := g.lineHead('4', l, nirS, key, number, false)
	qty := int64(1 + g.rng.IntN(2))
	price := int64(2500 + g.rng.IntN(5000))
	fees := qty * price
	amo := fees * 70 / 100
	care := g.daysBefore(g.lotDate, 1+g.rng.IntN(60))
	if late {
		care = g.daysBefore(g.lotDate, 400)
	}
	g.setInt(j, l.Ref("mt"), 3)
	g.setInt(j, l.Ref("dmt"), 100+int64(g.rng.IntN(800)))
	g.setInt(j, l.Ref("executant"), 751000002)
	g.setInt(j, l.Ref("executant_specialty"), 1)
	g.setStr(j, l.Ref("exemption"), "0")
	g.setDay(j, v.careDate, care)
	g.setStr(j, l.Ref("act_code"), "G")
	g.setInt(j, l.Ref("quantity"), qty)
	g.setInt(j, l.Ref("coefficient"), 100)
	g.setInt(j, l.Ref("count"), 1)
	g.setInt(j, l.Ref("unit_price"), price)
	g.setInt(j, l.Ref("base"), fees)
	g.setInt(j, l.Ref("rate"), 70)
	g.setInt(j, v.t4AMO, amo)
	g.setInt(j, v.t4Fees, fees)
	sums[sFees] += fees
	sums[sAMOFees] += amo
	sums[sPatient] += fees - amo
	if v.full {
		amc := fees - amo
		g.setInt(j, t4AMC, amc)
		sums[sAMCFees] += amc
	}
	n := int64(1)
	if !noS {
		s := g.lineHead('4', Comp4S, nirS, key, number, true)
		g.setStr(s, Comp4S.Ref("letter"), "S")
		g.setInt(s, seq37Ref, 1)
		g.setStr(s, Comp4S.Ref("domain"), "1")
		n++
	}
	if g.rng.IntN(2) == 0 || noS {
		e := g.lineHead('4', Comp4E, nirS, key, number, true)
		g.setStr(e, Comp4E.Ref("letter"), "E")
		g.setInt(e, seq37Ref, 1)
		g.setInt(e, Comp4E.Ref("rpps_executant"), 10000000000+int64(g.rng.IntN(1000000000)))
		n++
	}
	if g.rng.IntN(2) == 0 && !noS {
		for q := 1; q <= 1+g.rng.IntN(3); q++ {
			m := g.lineHead('4', Comp4M, nirS, key, number, true)
			g.setStr(m, Comp4M.Ref("letter"), "M")
			g.setInt(m, seq37Ref, int64(q))
			g.setStr(m, Comp4M.Ref("ccam_code"), fmt.Sprintf("HBQK%03d", 1+g.rng.IntN(500)))
			g.setStr(m, Comp4M.Ref("activity"), "1")
			g.setStr(m, Comp4M.Ref("phase"), "0")
			g.setDay(m, Comp4M.Ref("session_date"), care)
			n++
		}
	}
	return n
}
