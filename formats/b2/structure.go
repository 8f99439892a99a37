package b2

import (
	"bytes"
	"strings"

	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/nir"
)

// structure applies the hierarchy of §1.3 and the checks of §1.5 to one
// record of known kind. full is false for a record of the wrong length: it
// keeps its place in the structure but none of its fields is read.
func (s *state) structure(k Kind, lpos int, data []byte, num int64, full bool) {
	switch k.Type {
	case '0':
		s.header0(data, num, full)
	case '9':
		s.trailer999(data, num, full)
	case '1':
		s.lotHeader(data, num, full)
	case '2':
		if k.Letter != 0 {
			s.invoiceComplement(k, lpos, data, num, full)
		} else {
			s.invoiceHeader(data, num, full)
		}
	case '3', '4':
		s.line(k, lpos, data, num, full)
	case '5':
		s.invoiceTrailer(data, num, full)
	case '6':
		s.lotTrailer(data, num, full)
	}
}

// orphanf reports the first record that belongs to nothing (a line outside
// an invoice, an invoice outside a lot...) and stays silent on the records
// that follow it until the structure resumes.
func (s *state) orphanf(num int64, format string, args ...any) {
	if s.orphan {
		return
	}
	s.orphan = true
	s.addf(ErrRecordOrder, num, "", format, args...)
}

func (s *state) header0(data []byte, num int64, full bool) {
	if num != 1 {
		s.addf(ErrRecordOrder, num, "", "second 000 header in the file")
		return
	}
	s.pos = posFile
	if !full {
		return
	}
	s.fields(cHeader, data, num)
	if v, ok := envelope.HRecordLength.Int(data); ok && v != RecordLength {
		s.addf(ErrRecordLength, num, envelope.HRecordLength.Name, "header declares records of %d characters, B2 records are %d", v, RecordLength)
	}
	copy(s.header[:], data)
	s.hdrOK = true
	s.rep.Header = envelope.Decode(data)
}

// closeOpen closes an open invoice and lot before a record that cannot be
// inside them, with a single error for what is missing.
func (s *state) closeOpen(num int64, what string) {
	switch {
	case s.inInv:
		s.addf(ErrRecordOrder, num, "", "%s before the type 5 and type 6 closing invoice %s and lot %d", what, s.invNumber(), s.lot.number)
		s.closeInvoice()
		s.closeLot()
	case s.inLot:
		s.addf(ErrRecordOrder, num, "", "%s before the type 6 closing lot %d", what, s.lot.number)
		s.closeLot()
	}
}

func (s *state) invNumber() string {
	return string(s.inv.keys[29:38])
}

func (s *state) trailer999(data []byte, num int64, full bool) {
	s.closeOpen(num, "999 trailer")
	s.orphan = false
	s.pos = posDone
	s.sawEnd = true
	if !full || !s.fields(cTrailer, data, num) {
		return
	}
	if s.hdrOK && !envelope.SameIdent(s.header[:], data) {
		field := "ident"
		for i := 3; i < envelope.IdentLen; i++ {
			if s.header[i] != data[i] {
				field = cHeader.fieldName(i)
				break
			}
		}
		s.addf(ErrHeaderMismatch, num, field, "999 identification differs from the 000 header (field %s)", field)
	}
	if v, ok := envelope.TRecordCount.Int(data); ok && v != num {
		s.addf(ErrRecordCount, num, envelope.TRecordCount.Name, "999 announces %d records, the file has %d (000 and 999 included)", v, num)
	}
	if v, ok := envelope.TLotCount.Int(data); ok && v != s.lotCount {
		s.addf(ErrLotCount, num, envelope.TLotCount.Name, "999 announces %d lots, the file has %d", v, s.lotCount)
	}
}

func (s *state) lotHeader(data []byte, num int64, full bool) {
	if s.inLot && s.pos == posLot && len(data) > letterAt39 && isUpper(data[letterAt39]) {
		// Type-1 complement (V, W...: meaning unknown, passed through).
		if full {
			s.fields(cComp1, data, num)
		}
		return
	}
	if s.pos == posStart || s.pos == posDone {
		return
	}
	s.closeOpen(num, "lot header")
	s.orphan = false
	s.lotCount++
	s.inLot = true
	s.pos = posLot
	clear(s.dup)
	l := &s.lot
	*l = lotState{v: variantCP, first: num, errBase: s.errCount(), linesOK: true, summaryIdx: -1}
	if len(data) >= 80 {
		l.v = variantOf(data[78:80])
	}
	if full {
		s.fields(cType1, data, num)
		copy(l.emitter[:], t1Emitter.Bytes(data))
		l.number, l.numberOK = t1Lot.Int(data)
		l.date, l.dateOK = t1Date.Date(data)
		if l.dateOK && l.date.IsZero() {
			l.dateOK = false
			s.addf(ErrDate, num, t1Date.Name, "the lot creation date is missing")
		}
	} else {
		l.linesOK = false
		if len(data) >= 10 {
			copy(l.emitter[:], data[1:10])
		}
	}
	if s.opt.Summaries {
		lt := Lot{Index: len(s.rep.Lots), FirstRecord: num, Variant: l.v.name}
		if full {
			lt.Emitter = t1Emitter.String(data)
			lt.Number = int(l.number)
			lt.Date = l.date
			lt.Variant = t1Variant.String(data)
			lt.DestCaisse = t1Caisse.String(data)
		}
		s.rep.Lots = append(s.rep.Lots, lt)
		l.summaryIdx = lt.Index
	}
}

func (s *state) closeLot() {
	if !s.inLot {
		return
	}
	if s.inInv {
		s.closeInvoice()
	}
	if i := s.lot.summaryIdx; i >= 0 {
		lt := &s.rep.Lots[i]
		lt.Records = s.records - lt.FirstRecord + 1
		lt.Valid = s.errCount() == s.lot.errBase
	}
	s.inLot = false
}

func (s *state) lotTrailer(data []byte, num int64, full bool) {
	if !s.inLot {
		s.orphanf(num, "type 6 lot trailer outside a lot")
		return
	}
	if s.inInv {
		s.addf(ErrRecordOrder, num, "", "type 6 before the type 5 closing invoice %s", s.invNumber())
		s.closeInvoice()
	}
	s.orphan = false
	s.pos = posFile
	if full && s.fields(cType6, data, num) {
		l := &s.lot
		if v, _ := t6Lot.Int(data); l.numberOK && v != l.number {
			s.addf(ErrLotNumber, num, t6Lot.Name, "type 6 lot number %03d differs from type 1 lot number %03d", v, l.number)
		}
		if l.linesOK {
			checks := [...]struct {
				r    fixed.Ref
				want int64
			}{{t6Invoices, l.invoices}, {t6Lines, l.lines}, {t6Invoices2, l.invoices}, {t6Invoices3, l.invoices}}
			for _, c := range checks {
				if v, _ := c.r.Int(data); v != c.want {
					s.addf(ErrLotCounts, num, c.r.Name, "type 6 announces %d, the lot has %d", v, c.want)
					break
				}
			}
		}
	}
	s.closeLot()
}

func (s *state) invoiceHeader(data []byte, num int64, full bool) {
	if !s.inLot {
		s.orphanf(num, "invoice header outside a lot")
		return
	}
	if s.inInv {
		s.addf(ErrRecordOrder, num, "", "invoice %s has no type 5 trailer", s.invNumber())
		s.closeInvoice()
	}
	s.orphan = false
	s.invCount++
	s.lot.invoices++
	s.inInv = true
	s.pos = posInvHead
	v := s.lot.v
	in := &s.inv
	in.keysOK = full
	in.number = -1
	in.lines = 0
	in.countOK = true
	in.sumsOK = full
	in.sums = [8]int64{}
	in.prev = Kind{Type: '2'}
	in.line = 0
	in.first = num
	in.errBase = s.errCount()
	copy(in.keys[:], data)
	if full && fixed.AllDigits(data[1:10]) {
		copy(s.partner[:], data[1:10])
		s.havePartner = true
	}
	in.summaryOn = s.opt.Summaries && s.lot.summaryIdx >= 0
	if in.summaryOn {
		in.summary = Invoice{FirstRecord: num}
	}
	if !full {
		return
	}
	fieldsOK := s.fields(v.t2, data, num)
	if err := nir.CheckBytes(v.nir.Bytes(data), v.nirKey.Bytes(data)); err != nil {
		field := v.nirKey.Name
		if err == nir.ErrSyntax {
			field = v.nir.Name
		}
		s.addf(ErrNIRKey, num, field, "%s", nirMessage(err))
	}
	if nb, ok := v.invoice.Int(data); ok {
		in.number = nb
		if nb == 0 {
			s.addf(ErrNumericField, num, v.invoice.Name, "the invoice number must not be 0")
		} else if s.seen(nb) {
			s.addf(ErrDuplicateInvoice, num, v.invoice.Name, "invoice number %09d already used in this lot", nb)
		}
	}
	amc := t2AMC.Bytes(data)
	if s.opt.KnownAMC != nil && !t2AMC.IsBlank(data) && !s.knownAMC(bytes.TrimRight(amc, " ")) {
		s.addf(ErrUnknownAMC, num, t2AMC.Name, "AMC %q is not in the referential", bytes.TrimRight(amc, " "))
	}
	if in.summaryOn {
		sm := &in.summary
		sm.Number = v.invoice.String(data)
		sm.NIR = string(data[11:26])
		sm.AMC = t2AMC.String(data)
		if v.full && fieldsOK {
			sm.GrandRegime = t2Regime.String(data)
			sm.Caisse = t2Caisse.String(data)
		}
	}
}

// seen reports whether the invoice number is in the lot's set, and adds it
// while the set is below maxDupSet (one map operation when it grows).
func (s *state) seen(nb int64) bool {
	if n := len(s.dup); n < maxDupSet {
		s.dup[nb] = struct{}{}
		return len(s.dup) == n
	}
	_, dup := s.dup[nb]
	return dup
}

func nirMessage(err error) string {
	if err == nir.ErrSyntax {
		return "the NIR or its key is not well formed"
	}
	return "the NIR key does not match the NIR"
}

func (s *state) knownAMC(b []byte) bool {
	if ok, hit := s.amc[string(b)]; hit {
		return ok
	}
	ok := s.opt.KnownAMC(string(b))
	if len(s.amc) < 4096 {
		s.amc[string(b)] = ok
	}
	return ok
}

func (s *state) invoiceComplement(k Kind, lpos int, data []byte, num int64, full bool) {
	if !s.inInv {
		if !s.inLot {
			s.orphanf(num, "record %s outside a lot", k)
		} else {
			s.orphanf(num, "record %s outside an invoice", k)
		}
		return
	}
	in := &s.inv
	switch {
	case s.pos != posInvHead:
		s.addf(ErrRecordOrder, num, "letter", "%s after the lines of invoice %s (invoice complements follow the type 2)", k, s.invNumber())
	case k.Letter == 'S' && in.prev != Kind{Type: '2'}:
		s.addf(ErrRecordOrder, num, "letter", "2S must directly follow the type 2 (it follows %s)", in.prev)
	}
	if knownComplement(k, lpos) {
		in.prev = k // unknown letters are passed through, not ordered
	}
	if !full {
		return
	}
	c := complementLayout(k, lpos)
	if !s.fields(c, data, num) {
		return
	}
	switch c {
	case complements[0][1]['S'-'A']:
		if !c2SNIR.IsBlank(data) && !c2SNIR.IsZero(data) {
			if err := nir.CheckBytes(c2SNIR.Bytes(data), c2SKey.Bytes(data)); err != nil {
				s.addf(ErrNIRKey, num, c2SNIR.Name, "individual %s", nirMessage(err))
			}
		}
	case complements[0][1]['P'-'A']:
		if in.summaryOn {
			in.summary.PEC = c2PPEC.String(data)
		}
	}
}

// seqMax gives, for a complement with a sequence number, the largest value
// allowed (§1.3); 0 for complements without a checked sequence.
func seqMax(k Kind) int64 {
	switch {
	case k.Type == '3' && (k.Letter == 'F' || k.Letter == 'H'):
		return 10
	case k.Type == '4' && (k.Letter == 'B' || k.Letter == 'H'):
		return 10
	case k.Type == '4' && k.Letter == 'M':
		return 26
	}
	return 0
}

// complementFollows says whether complement k may follow prev (the last
// main line or known complement of the invoice), §1.3.
func complementFollows(prev, k Kind) bool {
	if prev.Type != k.Type {
		return false
	}
	p := prev.Letter
	switch k.Type {
	case '3':
		switch k.Letter {
		case 'S':
			return p == 0
		case 'E':
			return p == 0 || p == 'S'
		case 'F', 'H':
			return p == 'S' || p == 'E' || p == 'F' || p == 'H'
		}
	case '4':
		switch k.Letter {
		case 'S':
			return p == 0
		case 'E':
			return p == 'S'
		case 'B', 'H', 'M':
			return p == 'S' || p == 'E' || p == 'B' || p == 'H' || p == 'M'
		}
	}
	return true
}

func knownLineLetter(k Kind) bool {
	switch k.Type {
	case '3':
		return k.Letter == 'S' || k.Letter == 'E' || k.Letter == 'F' || k.Letter == 'H'
	case '4':
		return k.Letter == 'S' || k.Letter == 'E' || k.Letter == 'B' || k.Letter == 'H' || k.Letter == 'M'
	}
	return false
}

func (s *state) line(k Kind, lpos int, data []byte, num int64, full bool) {
	if !s.inInv {
		if !s.inLot {
			s.orphanf(num, "record %s outside a lot", k)
		} else {
			s.orphanf(num, "record %s outside an invoice", k)
		}
		return
	}
	in := &s.inv
	in.lines++
	s.lot.lines++
	if !full {
		in.sumsOK = false
		if k.Letter == 0 {
			in.line, in.prev, in.seq = k.Type, k, [26]uint8{}
		}
		s.pos = posLines
		return
	}
	v := s.lot.v
	if k.Letter == 0 {
		in.line, in.prev, in.seq = k.Type, k, [26]uint8{}
		s.pos = posLines
		var c *compiled
		if k.Type == '3' {
			c = v.t3
		} else {
			c = v.t4
		}
		if !s.fields(c, data, num) {
			in.sumsOK = false
			return
		}
		var care fixed.Day
		if k.Type == '3' {
			if v.full {
				base := t3BaseN.get(data)
				amo := t3AMON.get(data)
				total := t3TotalN.get(data)
				amc := t3AMCN.get(data)
				in.sums[sBase] += base
				in.sums[sAMOServices] += amo
				in.sums[sPatient] += total - amo
				in.sums[sAMCServices] += amc
				in.sums[sBilled] += total
				if in.summaryOn {
					in.summary.Billed += total
					in.summary.AMO += amo
					in.summary.AMCAmount += amc
				}
				care = dayOf(t3End.Bytes(data))
				if care.IsZero() {
					care = dayOf(t3Start.Bytes(data))
				}
			}
		} else {
			fees := v.t4FeesN.get(data)
			amo := v.t4AMON.get(data)
			in.sums[sFees] += fees
			in.sums[sAMOFees] += amo
			in.sums[sPatient] += fees - amo
			var amc int64
			if v.full {
				amc = t4AMCN.get(data)
				in.sums[sAMCFees] += amc
			}
			if in.summaryOn {
				in.summary.Billed += fees
				in.summary.AMO += amo
				in.summary.AMCAmount += amc
			}
			care = dayOf(v.careDate.Bytes(data))
		}
		if s.lot.dateOK && !care.IsZero() && tooLate(care, s.lot.date) {
			field := v.careDate.Name
			if k.Type == '3' {
				field = t3End.Name
				if d, _ := t3End.Date(data); d.IsZero() {
					field = t3Start.Name
				}
			}
			s.addf(ErrBillingDelay, num, field, "date of care %s is more than one year before the lot date %s", care, s.lot.date)
		}
		return
	}
	// Complement of a line.
	known := knownLineLetter(k)
	switch {
	case s.pos != posLines:
		s.addf(ErrRecordOrder, num, "letter", "%s before any line of invoice %s", k, s.invNumber())
	case known && !complementFollows(in.prev, k):
		s.addf(ErrRecordOrder, num, "letter", "%s cannot follow %s", k, in.prev)
	case !known && in.line != k.Type:
		s.addf(ErrRecordOrder, num, "letter", "%s cannot follow a type %c line", k, in.line)
	}
	if known {
		in.prev = k
	}
	s.pos = posLines
	if !s.fields(complementLayout(k, lpos), data, num) {
		return
	}
	if max := seqMax(k); max > 0 && lpos == letterAt36 {
		sq := seq37N.get(data)
		last := int64(in.seq[k.Letter-'A'])
		if sq < 1 || sq > max || sq <= last {
			s.addf(ErrRecordOrder, num, seq37Ref.Name, "%s sequence %02d: expected %02d to %02d in increasing order", k, sq, last+1, max)
		}
		in.seq[k.Letter-'A'] = uint8(sq) // 2 digits
	}
}

// tooLate applies the billing-delay convention (formats.md §8.9): an error
// when the date of care is more than 365 days (366 across 29 February)
// before the lot creation date, i.e. when the care date's anniversary one
// year later (29 February → 1 March) is before the lot date.
func tooLate(care, lot fixed.Day) bool {
	y, m, d := care.Year+1, int(care.Month), care.Dom
	if m == 2 && d == 29 {
		m, d = 3, 1
	}
	return y*10000+m*100+d < lot.Year*10000+int(lot.Month)*100+lot.Dom
}

func (s *state) invoiceTrailer(data []byte, num int64, full bool) {
	if !s.inInv {
		s.orphanf(num, "type 5 invoice trailer without its type 2")
		return
	}
	in := &s.inv
	v := s.lot.v
	s.orphan = false
	defer func() {
		s.closeInvoice()
		s.pos = posAfterInv
	}()
	countMsg := ""
	if in.countOK && (in.lines < 1 || in.lines > MaxLines) {
		countMsg = "an invoice holds 1 to 999 lines"
	}
	if !full {
		if countMsg != "" {
			s.addf(ErrInvoiceLineCount, num, "", "invoice %s has %d lines: %s", s.invNumber(), in.lines, countMsg)
		}
		return
	}
	fieldsOK := s.fields(v.t5, data, num)
	if in.keysOK && string(data[1:v.keyEnd]) != string(in.keys[1:v.keyEnd]) {
		field := ""
		for i := 1; i < v.keyEnd; i++ {
			if data[i] != in.keys[i] {
				field = v.t5.fieldName(i)
				break
			}
		}
		s.addf(ErrInvoiceKeys, num, field, "type 5 keys differ from the type 2 of record %d (field %s)", in.first, field)
	}
	if !v.full {
		if countMsg != "" {
			s.addf(ErrInvoiceLineCount, num, "", "invoice %s has %d lines: %s", s.invNumber(), in.lines, countMsg)
		}
		return
	}
	if cnt, ok := t5Count.Int(data); ok && in.countOK && (cnt != in.lines || countMsg != "") {
		if countMsg == "" {
			countMsg = "counts all 3x/4x records, complements included"
		}
		s.addf(ErrInvoiceLineCount, num, t5Count.Name, "type 5 announces %d lines, the invoice has %d (%s)", cnt, in.lines, countMsg)
	}
	if !fieldsOK || !in.sumsOK {
		return
	}
	var bad []string
	for i, n := range t5TotalsN {
		if n.get(data) != in.sums[i] {
			bad = append(bad, t5Totals[i].Name)
		}
	}
	if bad != nil {
		r := Type5.Ref(bad[0])
		got, _ := r.Int(data)
		i := 0
		for j, t := range t5Totals {
			if t.Name == bad[0] {
				i = j
			}
		}
		more := ""
		if len(bad) > 1 {
			more = " (also " + strings.Join(bad[1:], ", ") + ")"
		}
		s.addf(ErrInvoiceTotal, num, r.Name, "type 5 total %d differs from the sum of the lines %d%s", got, in.sums[i], more)
	}
}

func (s *state) closeInvoice() {
	if !s.inInv {
		return
	}
	s.inInv = false
	in := &s.inv
	if in.summaryOn && s.lot.summaryIdx >= 0 {
		in.summary.Lines = int(in.lines)
		in.summary.Valid = s.errCount() == in.errBase
		lt := &s.rep.Lots[s.lot.summaryIdx]
		lt.Invoices = append(lt.Invoices, in.summary)
	}
}

// finish closes what the end of input leaves open.
func (s *state) finish() {
	if s.stop {
		if s.inLot {
			s.closeLot()
		}
		return
	}
	if s.records == 0 {
		s.addf(ErrNotB2, 0, "", "empty input")
		return
	}
	if s.pos != posDone {
		s.addf(ErrMissingTrailer, 0, "", "the file ends after record %d without its 999 trailer", s.records)
		s.closeLot()
	}
}
