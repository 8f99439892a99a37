package noemie

import (
	"bufio"
	"fmt"
	"io"

	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
)

// WriteOptions selects the physical form Write produces.
type WriteOptions struct {
	LengthPrefix bool // each record and entity on its own line, prefixed by its length on 4 digits
	LineBreaks   bool // CR LF after each record and entity
	// ZeroSums writes every 990 and 999 sum as zero ("not provided",
	// formats.md §8.5), the way production writers do. Otherwise the sums
	// are the paid amounts (198 + 199) under each level.
	ZeroSums bool
}

// WriteOptions returns the form f was read in, for Write.
func (f *File) WriteOptions() WriteOptions { return f.Form }

// Write produces a NOEMIE 580 file: the 000 header from hdr (norm forced to
// 580), then for each batch its 020/040 (consecutive batches with the same
// mandataire or destinataire share them), one 071, one 081 per run of
// invoices with the same return type and place, each invoice as 102, 103,
// 198 (when AMO is not the zero Part), 199 (same for AMC), its rejects
// (290 or 294 per Reject.Entity, 294 by default) and a 990; every level is
// closed by its 990 and the file by a 999 with the counts of §8.4.
//
// Values are written as given, never truncated or padded into something
// else: a field that does not fit, a numeric string that is not all digits
// of the field's width, or text with bytes outside printable ASCII, an '@'
// or trailing blanks is an error (nothing is then guaranteed to have been
// written completely).
func Write(w io.Writer, hdr envelope.Info, batches []PaymentBatch, opt WriteOptions) error {
	return write(w, hdr, batches, opt, nil)
}

// hook lets the generator alter a record before it is written (faults).
type hook func(code string, rec int64, b []byte) []byte

type writer struct {
	bw    *bufio.Writer
	opt   WriteOptions
	rec   int64
	lots  int64
	err   error
	hook  hook
	field string // context for errors
	// skewPrefix is a record whose length prefix is written one too long
	// (generator fault).
	skewPrefix int64
}

func write(out io.Writer, hdr envelope.Info, batches []PaymentBatch, opt WriteOptions, h hook) error {
	return (&writer{bw: bufio.NewWriterSize(out, 32<<10), opt: opt, hook: h}).file(hdr, batches)
}

func (w *writer) file(hdr envelope.Info, batches []PaymentBatch) error {
	opt := w.opt
	hdr.Norm = Norm
	head, err := envelope.Encode(hdr)
	if err != nil {
		return err
	}
	if i := allowed.FirstBad(head); i >= 0 {
		return fmt.Errorf("noemie: header byte 0x%02x at position %d is not printable ASCII", head[i], i+1)
	}
	w.emit("000", head)
	var total int64
	for i := 0; i < len(batches) && w.err == nil; {
		// One 020 per run of batches with the same mandataire.
		j := i
		for j < len(batches) && batches[j].Payment.Mandataire == batches[i].Payment.Mandataire {
			j++
		}
		total += w.mandataire(batches[i:j])
		i = j
	}
	if w.err != nil {
		return w.err
	}
	amount, sign := total, byte('P')
	if amount < 0 {
		amount, sign = -amount, 'N'
	}
	if opt.ZeroSums {
		amount, sign = 0, 'P'
	}
	w.rec++
	tr, err := envelope.EncodeTrailer(head, w.rec, w.lots, amount)
	if err != nil {
		return err
	}
	envelope.TSign.Bytes(tr)[0] = sign
	w.rec--
	w.emit("999", tr)
	if w.err != nil {
		return w.err
	}
	return w.bw.Flush()
}

// emit writes one record or entity in the chosen framing.
func (w *writer) emit(code string, b []byte) {
	if w.err != nil {
		return
	}
	w.rec++
	if w.hook != nil {
		if b = w.hook(code, w.rec, b); b == nil {
			return
		}
	}
	if w.opt.LengthPrefix {
		n := len(b)
		if w.rec == w.skewPrefix {
			n++
		}
		w.bw.Write([]byte{byte('0' + n/1000%10), byte('0' + n/100%10), byte('0' + n/10%10), byte('0' + n%10)})
	}
	w.bw.Write(b)
	if w.opt.LineBreaks {
		w.bw.WriteString("\r\n")
	}
}

func (w *writer) fail(err error) {
	if w.err == nil && err != nil {
		w.err = fmt.Errorf("noemie: write %s: %w", w.field, err)
	}
}

// newEntity returns a blank entity: numeric zones zero-filled, text blank.
func newEntity(e *Entity, level int) []byte {
	b := make([]byte, e.Layout.Length)
	for _, r := range e.Layout.Refs() {
		fill := byte(' ')
		if r.Kind == fixed.Numeric || r.Kind == fixed.Amount || r.Kind == fixed.Date {
			fill = '0'
		}
		pos, n := r.Pos()
		for i := pos - 1; i < pos-1+n; i++ {
			b[i] = fill
		}
	}
	copy(b, e.Code)
	b[3], b[4] = byte('0'+level/10), byte('0'+level%10)
	b[len(b)-1] = '@'
	return b
}

// text writes s left-aligned; it must be printable, without '@' and without
// trailing blanks (the reader trims them).
func (w *writer) text(b []byte, r fixed.Ref, s string) {
	if i := allowed.FirstBad([]byte(s)); i >= 0 {
		w.fail(fixed.Errorf(fixed.ErrFieldOverflow, w.rec+1, r.Name, "byte 0x%02x is not allowed", s[i]))
		return
	}
	if len(s) > 0 && s[len(s)-1] == ' ' {
		w.fail(fixed.Errorf(fixed.ErrFieldOverflow, w.rec+1, r.Name, "trailing blank"))
		return
	}
	w.fail(r.SetString(b, s))
}

// digits writes s, which must be empty (left blank) or all digits of the
// field's width.
func (w *writer) digits(b []byte, r fixed.Ref, s string) {
	_, n := r.Pos()
	if s == "" {
		w.fail(r.SetString(b, ""))
		return
	}
	if len(s) != n || !fixed.AllDigits([]byte(s)) {
		w.fail(fixed.Errorf(fixed.ErrFieldOverflow, w.rec+1, r.Name, "%d digits expected", n))
		return
	}
	w.fail(r.SetString(b, s))
}

func (w *writer) char(b []byte, r fixed.Ref, c byte) {
	if c == 0 {
		c = ' '
	}
	if !allowed[c] {
		w.fail(fixed.Errorf(fixed.ErrFieldOverflow, w.rec+1, r.Name, "byte 0x%02x is not allowed", c))
		return
	}
	r.Bytes(b)[0] = c
}

func (w *writer) signed(b []byte, amt, sign fixed.Ref, v int64) {
	s := byte('P')
	if v < 0 {
		v, s = -v, 'N'
	}
	w.fail(amt.SetInt(b, v))
	sign.Bytes(b)[0] = s
}

// control writes a 990 closing level with its identification.
func (w *writer) control(level int, ident []byte, count, sum int64) {
	b := newEntity(E990, level)
	copy(r990Ident.Bytes(b), ident)
	w.fail(r990Count.SetInt(b, count))
	if w.opt.ZeroSums {
		sum = 0
	}
	w.signed(b, r990Sum, r990Sign, sum)
	w.field = "990"
	w.emit("990", b)
}

func (w *writer) mandataire(batches []PaymentBatch) (paid int64) {
	w.field = "020 mandataire"
	b := newEntity(E020, 1)
	w.digits(b, r020Number, batches[0].Payment.Mandataire)
	ident := append([]byte(nil), r020Number.Bytes(b)...)
	w.emit("020", b)
	w.lots++
	var n int64
	for i := 0; i < len(batches) && w.err == nil; {
		j := i
		for j < len(batches) && batches[j].Payment.Destinataire == batches[i].Payment.Destinataire {
			j++
		}
		paid += w.destinataire(batches[i:j])
		n++
		i = j
	}
	w.control(1, ident, n, paid)
	return paid
}

func (w *writer) destinataire(batches []PaymentBatch) (paid int64) {
	w.field = "040 destinataire"
	b := newEntity(E040, 2)
	w.digits(b, r040Number, batches[0].Payment.Destinataire)
	ident := append([]byte(nil), r040Number.Bytes(b)...)
	w.emit("040", b)
	for i := range batches {
		paid += w.payment(&batches[i])
	}
	w.control(2, ident, int64(len(batches)), paid)
	return paid
}

func (w *writer) payment(pb *PaymentBatch) (paid int64) {
	w.field = "071 payment"
	b := newEntity(E071, 3)
	w.fail(r071Date.SetDate(b, pb.Payment.AccountingDate))
	w.text(b, r071Label1, pb.Payment.Ref)
	w.text(b, r071Label2, pb.Payment.Label2)
	w.text(b, r071Payer, pb.Payment.Payer)
	ident := append([]byte(nil), r071Date.Bytes(b)...)
	w.emit("071", b)
	var n int64
	inv := pb.Invoices
	for i := 0; i < len(inv) && w.err == nil; {
		j := i
		for j < len(inv) && inv[j].ReturnType == inv[i].ReturnType && inv[j].ExecPlace == inv[i].ExecPlace {
			j++
		}
		paid += w.returnType(inv[i:j])
		n++
		i = j
	}
	w.control(3, ident, n, paid)
	return paid
}

func (w *writer) returnType(inv []Invoice) (paid int64) {
	w.field = "081 return type"
	b := newEntity(E081, 4)
	w.digits(b, r081Type, inv[0].ReturnType)
	w.text(b, r081Place, inv[0].ExecPlace)
	ident := append([]byte(nil), r081Type.Bytes(b)...)
	w.emit("081", b)
	for i := range inv {
		paid += w.invoice(&inv[i])
	}
	w.control(4, ident, int64(len(inv)), paid)
	return paid
}

func (w *writer) invoice(inv *Invoice) (paid int64) {
	w.field = "102 invoice " + inv.Number
	b := newEntity(E102, 5)
	w.text(b, r102Invoice, inv.Number)
	if inv.LotNumber < 0 {
		w.fail(fixed.Errorf(fixed.ErrFieldOverflow, w.rec+1, "lot", "negative lot number"))
	}
	if inv.LotNumber >= 0 {
		w.fail(r102Lot.SetInt(b, int64(inv.LotNumber)))
	}
	w.fail(r102LotDate.SetDate(b, inv.LotDate))
	w.text(b, r102Type, inv.Type)
	w.fail(r102Date.SetDate(b, inv.InvoiceDate))
	w.text(b, r102AMC, inv.AMCProcessing)
	w.text(b, r102Nature, inv.Nature)
	ident := append([]byte(nil), r102Invoice.Bytes(b)...)
	w.emit("102", b)

	var n int64
	d := newEntity(E103, 99)
	w.text(d, r103NIR, inv.NIR)
	w.digits(d, r103Key, inv.NIRKey)
	w.digits(d, r103Birth, inv.BirthDate)
	w.digits(d, r103BirthRank, inv.BirthRank)
	w.emit("103", d)
	n++
	for k, part := range []*Part{&inv.AMO, &inv.AMC} {
		if *part == (Part{}) {
			continue
		}
		e := E198
		if k == 1 {
			e = E199
		}
		d := newEntity(e, 99)
		if part.Requested < 0 {
			w.fail(fixed.Errorf(fixed.ErrFieldOverflow, w.rec+1, "requested", "negative requested amount"))
		}
		w.fail(rPartRequested.SetInt(d, part.Requested))
		w.char(d, rPartState, part.State)
		w.signed(d, rPartPaid, rPartSign, part.Paid)
		if k == 1 {
			w.digits(d, r199AMC, part.AMCNumber)
		} else if part.AMCNumber != "" {
			w.fail(fixed.Errorf(fixed.ErrFieldOverflow, w.rec+1, "amc", "AMC number on the AMO part"))
		}
		w.emit(e.Code, d)
		n++
		paid += part.Paid
	}
	for i := range inv.Rejects {
		r := &inv.Rejects[i]
		var d []byte
		if r.Entity == "290" {
			d = newEntity(E290, 99)
			if r.Line < 0 || r.Line > 99 {
				w.fail(fixed.Errorf(fixed.ErrFieldOverflow, w.rec+1, "line", "line %d does not fit 2 digits", r.Line))
			}
			w.fail(r290Line.SetInt(d, int64(r.Line)))
			w.text(d, r290Code, r.Code)
			w.text(d, r290Label, r.Label)
			if want := rejectLevel290(r.Line); (r.Level != 0 && r.Level != want) || (r.Part != 0 && r.Part != ' ') || r.Info != "" {
				w.fail(fixed.Errorf(fixed.ErrFieldOverflow, w.rec+1, "reject", "a 290 carries no level, part or information"))
			}
		} else {
			if r.Entity != "" && r.Entity != "294" {
				w.fail(fixed.Errorf(fixed.ErrFieldOverflow, w.rec+1, "reject", "reject entity %q is not 290 or 294", r.Entity))
			}
			d = newEntity(E294, 99)
			w.text(d, r294Code, r.Code)
			w.text(d, r294Label, r.Label)
			w.char(d, r294Level, r.Level)
			w.char(d, r294Part, r.Part)
			if r.Line < 0 {
				w.fail(fixed.Errorf(fixed.ErrFieldOverflow, w.rec+1, "line", "negative line"))
			}
			w.fail(r294Line.SetInt(d, int64(r.Line)))
			w.text(d, r294Info, r.Info)
		}
		w.emit(string(d[:3]), d)
		n++
	}
	w.control(5, ident, n, paid)
	return paid
}

func rejectLevel290(line int) byte {
	if line == 0 {
		return 'F'
	}
	return 'L'
}
