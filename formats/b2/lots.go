package b2

import (
	"bytes"

	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
)

// ErrBadArgument is returned by ExtractLot/RebuildLot for an argument out of
// range (a lot number that does not fit 3 digits...).
const ErrBadArgument fixed.Code = "bad-argument"

// span is one record of an in-memory file: data and terminator are slices
// of the file.
type span struct {
	data, term []byte
	kind       Kind
}

type fileLot struct {
	first, last int // indexes in spans, type 1 .. type 6 inclusive
	variant     *variant
}

type parsed struct {
	spans   []span
	header  int // index of the 000, -1 if none
	trailer int // index of the 999, -1 if none
	lots    []fileLot
	framing Framing
}

// parse cuts a whole file into records and lots. It relies on the same
// framing and type rules as the validator but does not validate: callers
// work on files that Validate accepted.
func parse(file []byte) (*parsed, error) {
	rd := NewReader(bytes.NewReader(file))
	p := &parsed{header: -1, trailer: -1}
	open := -1 // index in p.lots of the lot being read
	var prev Kind
	for {
		rec, err := rd.Next()
		if err != nil {
			break // io.EOF, or a line too long: keep what was read
		}
		off := int(rec.Offset)
		sp := span{data: file[off : off+len(rec.Data)], term: file[off+len(rec.Data) : off+len(rec.Data)+len(rec.Term)]}
		if len(sp.data) == 0 {
			if len(p.spans) > 0 { // attach stray CR/LF to the previous record
				last := &p.spans[len(p.spans)-1]
				last.term = file[off-len(last.term) : off+len(sp.term)]
			}
			continue
		}
		ps := open >= 0 && !p.lots[open].variant.full
		k, _, ok := classify(sp.data, ps)
		if !ok {
			k = Kind{}
		}
		if k.Type == '1' && (prev.Type == '1') && len(sp.data) > letterAt39 && isUpper(sp.data[letterAt39]) {
			k.Letter = sp.data[letterAt39]
		}
		sp.kind = k
		i := len(p.spans)
		p.spans = append(p.spans, sp)
		switch {
		case k.Type == '0' && p.header < 0:
			p.header = i
		case k.Type == '9':
			if open >= 0 {
				p.lots[open].last = i - 1
				open = -1
			}
			p.trailer = i
		case k.Type == '1' && k.Letter == 0:
			if open >= 0 {
				p.lots[open].last = i - 1
			}
			v := variantCP
			if len(sp.data) >= 80 {
				v = variantOf(sp.data[78:80])
			}
			p.lots = append(p.lots, fileLot{first: i, last: i, variant: v})
			open = len(p.lots) - 1
		case k.Type == '6' && open >= 0:
			p.lots[open].last = i
			open = -1
		}
		if ok {
			prev = k
		}
	}
	if open >= 0 {
		p.lots[open].last = len(p.spans) - 1
		if p.trailer > p.lots[open].first {
			p.lots[open].last = p.trailer - 1
		}
	}
	p.framing = rd.Framing()
	if p.header != 0 {
		return nil, fixed.Errorf(ErrNotB2, 1, "", "the file does not start with a 000 header")
	}
	return p, nil
}

func (p *parsed) lot(i int) (fileLot, error) {
	if i < 0 || i >= len(p.lots) {
		return fileLot{}, fixed.Errorf(ErrLotNotFound, 0, "", "lot index %d: the file has %d lots", i, len(p.lots))
	}
	return p.lots[i], nil
}

// termFor is the terminator to put after a rebuilt record: the one the
// original record had, else the file's framing.
func (p *parsed) termFor(i int) []byte {
	if i >= 0 && i < len(p.spans) {
		return p.spans[i].term
	}
	return []byte(p.framing.Terminator())
}

// buildTrailer builds the 999 of a one-lot file: the original 999 when there is
// one (unknown zones kept) with the record count, the lot count 1 and, when
// the original file amount was the sum of the type-6 amounts, the new sum.
func (p *parsed) buildTrailer(records int64, lotAmount int64, haveAmount bool) ([]byte, error) {
	hdr := p.spans[p.header].data
	if len(hdr) != RecordLength {
		return nil, fixed.Errorf(ErrRecordLength, 1, "", "000 header is %d characters", len(hdr))
	}
	if p.trailer < 0 || len(p.spans[p.trailer].data) != RecordLength {
		return envelope.EncodeTrailer(hdr, records, 1, -1)
	}
	tr := append([]byte(nil), p.spans[p.trailer].data...)
	if err := envelope.TRecordCount.SetInt(tr, records); err != nil {
		return nil, err
	}
	if err := envelope.TLotCount.SetInt(tr, 1); err != nil {
		return nil, err
	}
	if old, ok := envelope.TAmount.Int(tr); ok && haveAmount {
		var all int64
		for _, l := range p.lots {
			if t6 := p.spans[l.last].data; p.spans[l.last].kind.Type == '6' && len(t6) == RecordLength {
				v, _ := t6Amount1.Int(t6)
				all += v
			}
		}
		if old == all {
			if err := envelope.TAmount.SetInt(tr, lotAmount); err != nil {
				return nil, err
			}
		}
	}
	return tr, nil
}

func lotAmount(sp span) (int64, bool) {
	if sp.kind.Type != '6' || len(sp.data) != RecordLength {
		return 0, false
	}
	return t6Amount1.Int(sp.data)
}

// ExtractLot returns a complete file holding the lot of 0-based index lot
// (Report.Lots[lot].Index): the 000 header, the lot's records unchanged,
// and a 999 with the record count (000 and 999 included) and a lot count of
// 1. Records keep their own terminators, so the framing is the input's.
func ExtractLot(file []byte, lot int) ([]byte, error) {
	p, err := parse(file)
	if err != nil {
		return nil, err
	}
	l, err := p.lot(lot)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	h := p.spans[p.header]
	out.Write(h.data)
	out.Write(h.term)
	for i := l.first; i <= l.last; i++ {
		out.Write(p.spans[i].data)
		out.Write(p.spans[i].term)
	}
	amount, ok := lotAmount(p.spans[l.last])
	tr, err := p.buildTrailer(int64(l.last-l.first+1)+2, amount, ok)
	if err != nil {
		return nil, err
	}
	out.Write(tr)
	out.Write(p.termFor(p.trailer))
	return out.Bytes(), nil
}

// RebuildLot returns a one-lot file like ExtractLot, without the invoices
// whose numbers are in drop, under the lot number newNumber (types 1 and
// 6). The type 6 counts are recomputed; its amounts are recomputed when
// they were the sum of the billed amounts (Σ type-3 total expense + Σ
// type-4 fees) and kept otherwise (their labels are unknown, §8.10); the 999
// is rebuilt as in ExtractLot. An invoice number of drop that is not in the
// lot gives ErrInvoiceNotFound; dropping every invoice gives ErrEmptyLot.
// Invoice numbers match exactly, or by value when both are digits.
func RebuildLot(file []byte, lot int, drop []string, newNumber int) ([]byte, error) {
	if newNumber < 0 || newNumber > 999 {
		return nil, fixed.Errorf(ErrBadArgument, 0, "lot_number", "lot number %d does not fit 3 digits", newNumber)
	}
	p, err := parse(file)
	if err != nil {
		return nil, err
	}
	l, err := p.lot(lot)
	if err != nil {
		return nil, err
	}
	v := l.variant
	// Cut the lot into head (type 1 and complements), invoices and tail.
	type inv struct {
		first, last int
		number      []byte
		lines       int64
		billed      int64
		dropped     bool
	}
	var invs []inv
	headEnd := l.last + 1
	tail := -1
	for i := l.first; i <= l.last; i++ {
		sp := p.spans[i]
		switch sp.kind.Type {
		case '2':
			if sp.kind.Letter == 0 {
				if headEnd > i {
					headEnd = i
				}
				var number []byte
				if len(sp.data) == RecordLength {
					number = v.invoice.Bytes(sp.data)
				}
				invs = append(invs, inv{first: i, last: i, number: number})
				continue
			}
		case '6':
			tail = i
			continue
		}
		if len(invs) == 0 || tail >= 0 {
			continue
		}
		cur := &invs[len(invs)-1]
		cur.last = i
		if sp.kind.Type == '3' || sp.kind.Type == '4' {
			cur.lines++
			if sp.kind.Letter == 0 && len(sp.data) == RecordLength {
				switch {
				case sp.kind.Type == '3' && v.full:
					t, _ := t3Total.Int(sp.data)
					cur.billed += t
				case sp.kind.Type == '4':
					f, _ := v.t4Fees.Int(sp.data)
					cur.billed += f
				}
			}
		}
	}
	if headEnd > l.last+1 {
		headEnd = l.last + 1
	}
	for _, d := range drop {
		found := false
		for j := range invs {
			if sameInvoice(invs[j].number, d) {
				invs[j].dropped = true
				found = true
			}
		}
		if !found {
			return nil, fixed.Errorf(ErrInvoiceNotFound, 0, "invoice", "invoice %q is not in lot %d", d, lot)
		}
	}
	var kept, lines, billed, allBilled int64
	for _, in := range invs {
		allBilled += in.billed
		if !in.dropped {
			kept++
			lines += in.lines
			billed += in.billed
		}
	}
	if kept == 0 {
		return nil, fixed.Errorf(ErrEmptyLot, 0, "", "no invoice would remain in lot %d", lot)
	}
	var out bytes.Buffer
	var records int64 = 2
	write := func(data, term []byte) {
		out.Write(data)
		out.Write(term)
		records++
	}
	h := p.spans[p.header]
	out.Write(h.data)
	out.Write(h.term)
	for i := l.first; i < headEnd; i++ {
		sp := p.spans[i]
		if i == l.first && len(sp.data) == RecordLength {
			t1 := append([]byte(nil), sp.data...)
			if err := t1Lot.SetInt(t1, int64(newNumber)); err != nil {
				return nil, err
			}
			write(t1, sp.term)
			continue
		}
		write(sp.data, sp.term)
	}
	for _, in := range invs {
		if in.dropped {
			continue
		}
		for i := in.first; i <= in.last; i++ {
			write(p.spans[i].data, p.spans[i].term)
		}
	}
	var amount int64
	haveAmount := false
	if tail >= 0 && len(p.spans[tail].data) == RecordLength {
		t6 := append([]byte(nil), p.spans[tail].data...)
		for _, r := range []fixed.Ref{t6Invoices, t6Invoices2, t6Invoices3} {
			if err := r.SetInt(t6, kept); err != nil {
				return nil, err
			}
		}
		if err := t6Lines.SetInt(t6, lines); err != nil {
			return nil, err
		}
		for _, r := range []fixed.Ref{t6Amount1, Type6.Ref("amount2")} {
			if old, ok := r.Int(t6); ok && old == allBilled {
				if err := r.SetInt(t6, billed); err != nil {
					return nil, err
				}
			}
		}
		if err := t6Lot.SetInt(t6, int64(newNumber)); err != nil {
			return nil, err
		}
		amount, haveAmount = t6Amount1.Int(t6)
		write(t6, p.spans[tail].term)
	}
	tr, err := p.buildTrailer(records, amount, haveAmount)
	if err != nil {
		return nil, err
	}
	out.Write(tr)
	out.Write(p.termFor(p.trailer))
	return out.Bytes(), nil
}

func sameInvoice(field []byte, want string) bool {
	if field == nil {
		return false
	}
	if string(bytes.TrimRight(field, " ")) == want {
		return true
	}
	a, ok1 := fixed.ParseUint(field)
	b, ok2 := fixed.ParseUint([]byte(want))
	return ok1 && ok2 && a == b
}
