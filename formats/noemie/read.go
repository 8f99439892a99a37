package noemie

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"

	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
)

// Read parses a NOEMIE 580 file from r. The error is for I/O only (the File
// is then partial); every finding about the content is in File.Errors.
func Read(r io.Reader, opt Options) (*File, error) {
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.MaxEntities <= 0 {
		opt.MaxEntities = DefaultMaxEntities
	}
	if opt.MaxErrors <= 0 {
		opt.MaxErrors = DefaultMaxErrors
	}
	p := &parser{opt: opt, f: &File{}, pay: -1, inv: -1, allZero: true}
	p.col.Max = opt.MaxErrors
	cr := &fixed.LimitReader{R: r, Max: opt.MaxBytes}
	src := bufio.NewReaderSize(cr, 16<<10) // >= the longest prefixed line (4+9999+1)
	p.df = &deframer{src: src, mode: opt.Framing, p: p}
	if p.df.mode == FramingAuto {
		p.df.mode = detectFraming(src)
	}
	p.br = bufio.NewReaderSize(p.df, 16<<10) // >= the resynchronisation window (4096)
	err := p.run()
	if errors.Is(err, fixed.ErrByteLimit) {
		p.errf(ErrLimitBytes, 0, "", "file larger than %d bytes: reading stopped", opt.MaxBytes)
		err = nil
	}
	p.finish()
	return p.f, err
}

// detectFraming recognises "NNNN000" (length-prefixed lines) at the start.
func detectFraming(src *bufio.Reader) Framing {
	b, _ := src.Peek(7)
	if len(b) == 7 && fixed.AllDigits(b[:4]) && string(b[4:7]) == "000" {
		return FramingPrefixed
	}
	return FramingStream
}

// deframer turns the physical file into the logical stream of records and
// entities: CR and LF are dropped (§8.7) and, in prefixed mode, the 4-digit
// line lengths are checked and removed.
type deframer struct {
	src      *bufio.Reader
	mode     Framing
	left     int // bytes left in the current prefixed line
	lineBad  bool
	sawBreak bool
	p        *parser
}

func (d *deframer) Read(b []byte) (int, error) {
	for {
		if d.mode == FramingPrefixed && d.left == 0 {
			if err := d.nextLine(); err != nil {
				return 0, err
			}
			if d.mode == FramingPrefixed && d.left == 0 {
				continue
			}
		}
		q := b
		if d.mode == FramingPrefixed && len(q) > d.left {
			q = q[:d.left]
		}
		n, err := d.src.Read(q)
		if d.mode == FramingPrefixed {
			d.left -= n
		}
		w := 0
		for i := 0; i < n; i++ {
			c := q[i]
			if c == '\r' || c == '\n' {
				d.sawBreak = true
				if d.mode == FramingPrefixed && !d.lineBad {
					d.lineBad = true
					d.p.errf(ErrLineLength, d.p.rec+1, "", "line break inside a length-prefixed line: the prefix is longer than the line")
				}
				continue
			}
			q[w] = c
			w++
		}
		if w > 0 || err != nil {
			return w, err
		}
	}
}

// nextLine reads the 4-digit prefix of the next line, skipping line breaks.
// When the line ends with a line break within reach, the physical line is
// authoritative: a prefix that does not match it is reported and the line is
// still read whole. Without line breaks (prefixed lines back to back) the
// prefix is trusted. A missing prefix is reported once per line.
func (d *deframer) nextLine() error {
	d.lineBad = false
	for {
		c, err := d.src.Peek(1)
		if err != nil {
			return err
		}
		if c[0] != '\r' && c[0] != '\n' {
			break
		}
		d.sawBreak = true
		d.src.Discard(1)
	}
	b, err := d.src.Peek(4 + 9999 + 1)
	if len(b) == 0 {
		return err
	}
	e := bytes.IndexAny(b, "\r\n")
	digits := len(b) >= 4 && fixed.AllDigits(b[:4])
	n := 0
	if digits {
		n = int(b[0]-'0')*1000 + int(b[1]-'0')*100 + int(b[2]-'0')*10 + int(b[3]-'0')
	}
	if e < 0 {
		if digits {
			d.left = n
			d.src.Discard(4)
			return nil
		}
		d.p.errf(ErrLineLength, d.p.rec+1, "", "line without a 4-digit length prefix: the rest is read as a stream")
		d.mode = FramingStream
		return nil
	}
	d.lineBad = true // the line is measured: no second finding for it
	switch {
	case digits && n == e-4:
		d.left = n
		d.src.Discard(4)
	case digits && e >= 7 && (Lookup(b[4:7]) != nil || string(b[4:7]) == "000" || string(b[4:7]) == "999"):
		d.p.errf(ErrLineLength, d.p.rec+1, "", "line prefix says %d bytes, the line has %d", n, e-4)
		d.left = e - 4
		d.src.Discard(4)
	default:
		d.p.errf(ErrLineLength, d.p.rec+1, "", "line without a 4-digit length prefix")
		d.left = e
	}
	return nil
}

// frame is one open break level.
type frame struct {
	rec      int64
	count    int64 // entities of the level below (details for level 05)
	paid     int64 // signed 198+199 paid amounts under the level
	ident    [17]byte
	identOK  bool
	noCount  bool // count unknowable (phantom level, resynchronisation)
	noSum    bool // sum unknowable (unreadable amount)
	phantom  bool
	openCode string
}

type parser struct {
	opt Options
	f   *File
	col fixed.Collector
	df  *deframer
	br  *bufio.Reader

	rec     int64 // records read so far (000 = 1)
	hdr     []byte
	sig     []byte // "999" + header cols 4-55: how a trailer starts
	depth   int
	stack   [6]frame
	lost    bool // structure uncertain after a resynchronisation: hierarchy findings muted
	noCount bool // file record/lot counts unknowable
	noSum   bool
	total   int64
	lots    int64
	allZero bool // every control sum seen is zero (production writers)
	trailer bool

	mand, dest string
	pay, inv   int
	retType    string
	place      string
}

func (p *parser) errf(code fixed.Code, rec int64, field, format string, args ...any) {
	p.col.Addf(code, rec, field, format, args...)
}

// allowed is printable ASCII without the entity delimiter.
var allowed = func() (c fixed.Charset) {
	for b := 0x20; b < 0x7f; b++ {
		c[b] = b != '@'
	}
	return c
}()

func (p *parser) run() error {
	if err := p.header(); err != nil {
		return err
	}
	for !p.trailer {
		code, err := p.br.Peek(3)
		if len(code) < 3 {
			if err == io.EOF {
				if len(code) > 0 {
					p.rec++
					p.errf(ErrEntityLength, p.rec, "", "%d stray bytes at the end of the data", len(code))
				}
				p.errf(ErrMissingTrailer, 0, "", "no 999 trailer")
				return nil
			}
			return err
		}
		if p.rec >= p.opt.MaxEntities {
			p.errf(ErrLimitEntities, p.rec+1, "", "more than %d records: reading stopped", p.opt.MaxEntities)
			return nil
		}
		if string(code) == "999" {
			if err := p.trailerRecord(); err != nil {
				return err
			}
			continue
		}
		p.rec++
		e := Lookup(code)
		if e == nil {
			p.errf(ErrEntityUnknown, p.rec, "code", "entity code %q is not in the dictionary", printable(code))
			p.resync()
			if err := p.skip(); err != nil {
				return err
			}
			continue
		}
		if err := p.entity(e); err != nil {
			return err
		}
	}
	// After the trailer only line breaks may follow (the deframer drops them).
	rest, err := p.br.Peek(1)
	if len(rest) > 0 {
		p.errf(ErrTrailingData, p.rec, "", "data after the 999 trailer")
		return nil
	}
	if err == io.EOF {
		return nil
	}
	return err
}

func (p *parser) header() error {
	h, err := p.br.Peek(envelope.RecordLength)
	if len(h) < 3 || string(h[:3]) != "000" {
		if err != nil && err != io.EOF {
			return err
		}
		p.errf(ErrHeader, 1, "type", "the file does not start with a 000 header")
		return nil
	}
	p.rec = 1
	if len(h) < envelope.RecordLength {
		if err != io.EOF {
			return err
		}
		p.errf(ErrHeader, 1, "", "000 header truncated: %d of %d bytes", len(h), envelope.RecordLength)
		p.br.Discard(len(h))
		return nil
	}
	p.hdr = append([]byte(nil), h...)
	p.sig = append([]byte("999"), p.hdr[3:envelope.IdentLen]...)
	p.f.Header = envelope.Decode(p.hdr)
	p.charset(envelope.Header, p.hdr, len(p.hdr))
	envelope.Header.Check(p.hdr, func(r fixed.Ref, k fixed.Kind) {
		p.errf(ErrFieldFormat, 1, r.Name, "not a valid %s field", k)
	})
	if norm := envelope.HNorm.String(p.hdr); norm != Norm {
		p.errf(ErrHeader, 1, "norm", "norm %q is not %s", printable([]byte(norm)), Norm)
	}
	_, err = p.br.Discard(envelope.RecordLength)
	return err
}

// charset reports the first byte of rec[:n] outside the allowed set.
func (p *parser) charset(l *fixed.Layout, rec []byte, n int) {
	if i := allowed.FirstBad(rec[:n]); i >= 0 {
		p.errf(ErrCharset, p.rec, fieldAt(l, i), "byte 0x%02x at position %d", rec[i], i+1)
	}
}

func fieldAt(l *fixed.Layout, off int) string {
	for _, r := range l.Refs() {
		if pos, n := r.Pos(); off >= pos-1 && off < pos-1+n {
			return r.Name
		}
	}
	return ""
}

// entity reads one dictionary entity at the current position.
func (p *parser) entity(e *Entity) error {
	n := e.Layout.Length
	b, err := p.br.Peek(n)
	if len(b) == n && b[n-1] == '@' {
		p.handle(e, b)
		_, err = p.br.Discard(n)
		return err
	}
	if len(b) < n && err != io.EOF {
		return err
	}
	limit := len(b)
	if limit == n {
		limit = n - 1
	}
	if i := bytes.IndexByte(b[:limit], '@'); i >= 0 {
		// Short entity: the delimiter came early. Its fields are not read, but
		// it still counts as one entity of its level.
		p.errf(ErrEntityLength, p.rec, "", "entity %s is %d bytes long, %d expected", e.Code, i+1, n)
		p.handle(e, nil)
		_, err = p.br.Discard(i + 1)
		return err
	}
	if len(b) < n {
		p.errf(ErrEntityLength, p.rec, "", "entity %s truncated: %d of %d bytes", e.Code, len(b), n)
		p.br.Discard(len(b))
		return nil
	}
	p.errf(ErrEntityLength, p.rec, "end", "entity %s has no '@' at position %d", e.Code, n)
	p.handle(e, nil)
	p.resync()
	p.br.Discard(n)
	return p.skip()
}

// resync marks the structure around an unreadable stretch as unknowable, so
// that the controls it would falsify are not reported (no cascades).
func (p *parser) resync() {
	p.lost = true
	p.noCount = true
	p.noSum = true
	for l := 1; l <= p.depth; l++ {
		p.stack[l].noCount = true
		p.stack[l].noSum = true
	}
}

// skip moves past the next '@', or up to the trailer if it comes first.
func (p *parser) skip() error {
	for {
		b, err := p.br.Peek(4096)
		i := bytes.IndexByte(b, '@')
		if p.sig != nil {
			if j := bytes.Index(b, p.sig); j >= 0 && (i < 0 || j < i) {
				_, err = p.br.Discard(j)
				return err
			}
		}
		if i >= 0 {
			_, err = p.br.Discard(i + 1)
			return err
		}
		if err != nil {
			p.br.Discard(len(b))
			if err == io.EOF {
				return nil
			}
			return err
		}
		keep := len(p.sig)
		p.br.Discard(len(b) - keep)
	}
}

// handle applies one entity; ent is nil when its fields are unreadable.
func (p *parser) handle(e *Entity, ent []byte) {
	rec := p.rec
	var level int = -1
	if ent != nil {
		p.charset(e.Layout, ent, len(ent)-1)
		e.Layout.Check(ent, func(r fixed.Ref, k fixed.Kind) {
			if !r.IsBlank(ent) { // blank optional fields are tolerated
				p.errf(ErrFieldFormat, rec, r.Name, "not a valid %s field", k)
			}
		})
		if v, ok := rLevel.Int(ent); ok {
			level = int(v)
		}
	}
	switch e.Role {
	case RoleOpen:
		if ent != nil && level != e.Level && !p.lost {
			p.errf(ErrHierarchy, rec, "level", "entity %s with break level %s, %02d expected", e.Code, printable(rLevel.Bytes(ent)), e.Level)
		}
		p.open(e, ent, rec)
	case RoleDetail:
		if ent != nil && level != 99 && !p.lost {
			p.errf(ErrHierarchy, rec, "level", "detail entity %s with break level %s, 99 expected", e.Code, printable(rLevel.Bytes(ent)))
		}
		p.detail(e, ent, rec)
	case RoleControl:
		if ent == nil {
			// An unreadable 990 closes nothing we can name: mark the levels.
			p.resync()
			return
		}
		p.control(ent, level, rec)
	}
}

func (p *parser) open(e *Entity, ent []byte, rec int64) {
	k := e.Level
	switch {
	case p.depth >= k:
		if !p.lost {
			p.errf(ErrHierarchy, rec, "", "entity %s opens level %02d while level %02d (record %d) is not closed by a 990",
				e.Code, k, p.depth, p.stack[p.depth].rec)
		}
		p.closeTo(k - 1)
	case p.depth < k-1:
		if !p.lost {
			p.errf(ErrHierarchy, rec, "", "entity %s at level %02d without an enclosing level %02d", e.Code, k, p.depth+1)
		}
		for l := 1; l <= p.depth; l++ {
			p.stack[l].noCount = true
		}
		for l := p.depth + 1; l < k; l++ {
			p.stack[l] = frame{rec: rec, phantom: true, noCount: true}
		}
		p.depth = k - 1
	}
	p.lost = false
	if k > 1 {
		p.stack[k-1].count++
	} else {
		p.lots++
	}
	fr := frame{rec: rec, openCode: e.Code}
	if ent != nil {
		var id []byte
		switch e {
		case E020:
			id = r020Number.Bytes(ent)
		case E040:
			id = r040Number.Bytes(ent)
		case E070:
			id = r070Date.Bytes(ent)
		case E071:
			id = r071Date.Bytes(ent)
		case E081:
			id = r081Type.Bytes(ent)
		case E102:
			id = r102Invoice.Bytes(ent)
		}
		copy(fr.ident[:], id)
		for i := len(id); i < len(fr.ident); i++ {
			fr.ident[i] = ' '
		}
		fr.identOK = true
	}
	p.stack[k] = fr
	p.depth = k
	p.typedOpen(e, ent, rec)
}

// closeTo closes levels without their 990 down to depth d.
func (p *parser) closeTo(d int) {
	for p.depth > d {
		p.closeLevel()
	}
}

func (p *parser) closeLevel() {
	if p.depth == 5 {
		p.endInvoice()
	}
	p.depth--
}

func (p *parser) detail(e *Entity, ent []byte, rec int64) {
	if p.depth != 5 {
		if !p.lost {
			p.errf(ErrHierarchy, rec, "", "detail entity %s outside an invoice (102)", e.Code)
		}
		return
	}
	p.stack[5].count++
	if e != E198 && e != E199 {
		if ent != nil {
			p.typedDetail(e, ent, rec)
		}
		return
	}
	var paid int64
	ok := ent != nil
	if ok {
		paid, ok = p.amount(ent, rPartPaid, rPartSign, rec)
	}
	if !ok {
		p.noSum = true
		for l := 1; l <= p.depth; l++ {
			p.stack[l].noSum = true
		}
		return
	}
	for l := 1; l <= p.depth; l++ {
		p.stack[l].paid += paid
	}
	p.total += paid
	p.typedDetail(e, ent, rec)
}

// amount reads an unsigned amount and its P/N sign.
func (p *parser) amount(ent []byte, amt, sign fixed.Ref, rec int64) (int64, bool) {
	v, ok := amt.Int(ent)
	if !ok {
		p.errf(ErrFieldFormat, rec, amt.Name, "amount is not digits")
		return 0, false
	}
	switch sign.Bytes(ent)[0] {
	case 'P':
	case 'N':
		v = -v
	case ' ':
		if v != 0 {
			p.errf(ErrFieldFormat, rec, sign.Name, "sign missing on a non-zero amount")
			return 0, false
		}
	default:
		p.errf(ErrFieldFormat, rec, sign.Name, "sign must be P or N")
		return 0, false
	}
	return v, true
}

func (p *parser) control(ent []byte, level int, rec int64) {
	if level < 1 || level > 5 {
		if !p.lost {
			p.errf(ErrHierarchy, rec, "level", "990 with break level %s: 01 to 05 expected", printable(rLevel.Bytes(ent)))
		}
		return
	}
	if level > p.depth {
		if !p.lost {
			p.errf(ErrHierarchy, rec, "level", "990 closes level %02d, which is not open", level)
		}
		return
	}
	if level < p.depth {
		if !p.lost {
			p.errf(ErrHierarchy, rec, "level", "990 closes level %02d while level %02d (record %d) is still open",
				level, p.depth, p.stack[p.depth].rec)
		}
		p.closeTo(level)
	}
	fr := &p.stack[level]
	if fr.identOK && !bytes.Equal(r990Ident.Bytes(ent), fr.ident[:]) {
		p.errf(ErrControlIdent, rec, "ident", "990 identification differs from the %s at record %d", fr.openCode, fr.rec)
	}
	if !fr.noCount {
		if n, ok := r990Count.Int(ent); !ok {
			p.errf(ErrFieldFormat, rec, "count", "count is not digits")
		} else if n != fr.count {
			p.errf(ErrControlCount, rec, "count", "990 of level %02d counts %d, the level holds %d", level, n, fr.count)
		}
	}
	if !r990Sum.IsZero(ent) {
		p.allZero = false
		if v, ok := p.amount(ent, r990Sum, r990Sign, rec); ok && !fr.noSum && v != fr.paid {
			p.errf(ErrControlAmount, rec, "sum", "990 of level %02d sums %s, the paid amounts under it sum %s",
				level, cents(v), cents(fr.paid))
		}
	}
	p.closeLevel()
	p.lost = false
}

func (p *parser) trailerRecord() error {
	p.rec++
	b, err := p.br.Peek(envelope.RecordLength)
	if len(b) < envelope.RecordLength {
		if err != io.EOF {
			return err
		}
		p.errf(ErrEntityLength, p.rec, "", "999 trailer truncated: %d of %d bytes", len(b), envelope.RecordLength)
		p.br.Discard(len(b))
		p.trailer = true
		return nil
	}
	p.trailer = true
	rec := p.rec
	if p.depth > 0 && !p.lost {
		p.errf(ErrHierarchy, rec, "", "level %02d (record %d) not closed by a 990 before the trailer", p.depth, p.stack[p.depth].rec)
	}
	p.closeTo(0)
	p.charset(envelope.Trailer, b, len(b))
	envelope.Trailer.Check(b, func(r fixed.Ref, k fixed.Kind) {
		p.errf(ErrFieldFormat, rec, r.Name, "not a valid %s field", k)
	})
	if p.hdr != nil && !envelope.SameIdent(p.hdr, b) {
		p.errf(ErrHeaderMismatch, rec, "ident", "999 columns 4-55 differ from the 000 header")
	}
	if !p.noCount {
		if n, ok := envelope.TRecordCount.Int(b); ok && n != p.rec {
			p.errf(ErrRecordCount, rec, "record_count", "999 counts %d records, the file has %d", n, p.rec)
		}
		if n, ok := envelope.TLotCount.Int(b); ok && n != p.lots {
			p.errf(ErrLotCount, rec, "lot_count", "999 counts %d lots, the file has %d (020 entities)", n, p.lots)
		}
	}
	if !envelope.TAmount.IsBlank(b) && !envelope.TAmount.IsZero(b) {
		p.allZero = false
		if v, ok := p.amount(b, envelope.TAmount, envelope.TSign, rec); ok && !p.noSum && v != p.total {
			p.errf(ErrControlAmount, rec, "amount", "999 sums %s, the paid amounts of the file sum %s", cents(v), cents(p.total))
		}
	}
	_, err = p.br.Discard(envelope.RecordLength)
	return err
}

func (p *parser) finish() {
	p.closeTo(0)
	f := p.f
	f.Stats.Records = p.rec
	f.Stats.Lots = p.lots
	f.Stats.Invoices = int64(len(f.Invoices))
	f.Errors = p.col.Errors()
	f.Dropped = p.col.Dropped()
	if f.Dropped > 0 {
		f.Errors = append(f.Errors, fixed.Error{Code: ErrLimitErrors,
			Message: strconv.FormatInt(f.Dropped, 10) + " more findings not reported"})
	}
	f.Valid = len(f.Errors) == 0
	f.Form = WriteOptions{LengthPrefix: p.df.mode == FramingPrefixed, LineBreaks: p.df.sawBreak, ZeroSums: p.allZero}
}

// ---- typed output ----

func (p *parser) typedOpen(e *Entity, ent []byte, rec int64) {
	switch e {
	case E020:
		p.mand, p.dest, p.pay = "", "", -1
		if ent != nil {
			p.mand = digitsOf(r020Number, ent)
		}
	case E040:
		p.dest, p.pay = "", -1
		if ent != nil {
			p.dest = digitsOf(r040Number, ent)
		}
	case E070, E071:
		p.pay = -1
		if ent == nil {
			return
		}
		pm := Payment{Mandataire: p.mand, Destinataire: p.dest, Record: rec}
		if e == E071 {
			pm.AccountingDate, _ = r071Date.Date(ent)
			pm.Ref = r071Label1.String(ent)
			pm.Label2 = r071Label2.String(ent)
			pm.Payer = r071Payer.String(ent)
		} else {
			pm.AccountingDate, _ = r070Date.Date(ent)
		}
		p.f.Payments = append(p.f.Payments, pm)
		p.pay = len(p.f.Payments) - 1
	case E081:
		p.retType, p.place = "", ""
		if ent != nil {
			p.retType = digitsOf(r081Type, ent)
			p.place = r081Place.String(ent)
		}
	case E102:
		p.inv = -1
		if ent == nil {
			return
		}
		inv := Invoice{Mandataire: p.mand, Destinataire: p.dest, Payment: p.pay,
			ReturnType: p.retType, ExecPlace: p.place, Record: rec}
		if p.pay >= 0 {
			inv.AccountingDate = p.f.Payments[p.pay].AccountingDate
			inv.PaymentRef = p.f.Payments[p.pay].Ref
		}
		inv.Number = r102Invoice.String(ent)
		if lot := r102Lot.Bytes(ent); !r102Lot.IsBlank(ent) {
			if v, ok := fixed.ParseUint(lot); ok {
				inv.LotNumber = int(v)
			} else {
				p.errf(ErrFieldFormat, rec, "lot", "lot number is not digits")
			}
		}
		inv.LotDate, _ = r102LotDate.Date(ent)
		inv.Type = r102Type.String(ent)
		inv.InvoiceDate, _ = r102Date.Date(ent)
		inv.AMCProcessing = r102AMC.String(ent)
		inv.Nature = r102Nature.String(ent)
		p.f.Invoices = append(p.f.Invoices, inv)
		p.inv = len(p.f.Invoices) - 1
	}
}

func (p *parser) typedDetail(e *Entity, ent []byte, rec int64) {
	if p.inv < 0 {
		return
	}
	inv := &p.f.Invoices[p.inv]
	switch e {
	case E103:
		inv.NIR = r103NIR.String(ent)
		inv.NIRKey = digitsOf(r103Key, ent)
		inv.BirthDate = digitsOf(r103Birth, ent)
		inv.BirthRank = digitsOf(r103BirthRank, ent)
	case E198, E199:
		part := Part{State: rPartState.Bytes(ent)[0]}
		part.Requested, _ = rPartRequested.Int(ent)
		part.Paid, _ = p.amount(ent, rPartPaid, rPartSign, rec) // already checked by detail
		switch part.State {
		case 'P', 'R', 'D', ' ':
		default:
			p.errf(ErrFieldFormat, rec, "state", "payment state must be P, R, D or blank")
		}
		if e == E198 {
			inv.AMO = part
		} else {
			part.AMCNumber = digitsOf(r199AMC, ent)
			inv.AMC = part
		}
	case E290:
		line, _ := r290Line.Int(ent)
		r := Reject{Entity: "290", Code: r290Code.String(ent), Label: r290Label.String(ent), Line: int(line), Level: 'L', Part: ' '}
		if line == 0 {
			r.Level = 'F'
		}
		inv.Rejects = append(inv.Rejects, r)
	case E294:
		line, _ := r294Line.Int(ent)
		r := Reject{Entity: "294", Code: r294Code.String(ent), Label: r294Label.String(ent), Line: int(line),
			Level: r294Level.Bytes(ent)[0], Part: r294Part.Bytes(ent)[0], Info: r294Info.String(ent)}
		switch r.Level {
		case 'F', 'L', 'A':
		default:
			p.errf(ErrFieldFormat, rec, "reject_level", "reject level must be F, L or A")
		}
		inv.Rejects = append(inv.Rejects, r)
	}
}

func (p *parser) endInvoice() {
	if p.inv < 0 {
		return
	}
	inv := &p.f.Invoices[p.inv]
	for i := range inv.Rejects {
		inv.Rejects[i].Warning = inv.warningFor(&inv.Rejects[i])
	}
	p.inv = -1
}

// printable renders bytes for a message without control characters.
func printable(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			out = append(out, '?')
		} else {
			out = append(out, c)
		}
	}
	return string(out)
}

func cents(v int64) string {
	s := strconv.FormatInt(v, 10)
	neg := v < 0
	if neg {
		s = s[1:]
	}
	for len(s) < 3 {
		s = "0" + s
	}
	s = s[:len(s)-2] + "." + s[len(s)-2:]
	if neg {
		s = "-" + s
	}
	return s
}

// digitsOf returns a numeric field as written, or "" when it is blank (an
// absent optional value).
func digitsOf(r fixed.Ref, ent []byte) string {
	if r.IsBlank(ent) {
		return ""
	}
	return r.String(ent)
}

// Detect reports whether head, the first bytes of a file, starts like a
// NOEMIE 580 file: a 000 header with norm 580, optionally behind a 4-digit
// line-length prefix ("0128000…") and line breaks.
func Detect(head []byte) bool {
	head = bytes.TrimLeft(head, "\r\n")
	if len(head) >= 7 && fixed.AllDigits(head[:4]) && string(head[4:7]) == "000" {
		head = head[4:]
	}
	if len(head) < 65 || string(head[:3]) != "000" {
		return false
	}
	return envelope.HNorm.String(head) == Norm
}
