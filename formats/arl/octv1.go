package arl

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"

	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
)

// OCT-ARL v1 — OUR ASSUMED LAYOUT, not a published one (docs/formats/arl.md).
//
//	000  envelope header, norm "OCTA", version "01"
//	100  one per acknowledged lot
//	110  reasons of the preceding 100, sequence 001…
//	999  envelope trailer: records (000 and 999 included), lots = number of 100
//
// Every record is 128 bytes; CR/LF between records are allowed (§8.7).
const (
	NormV1    = "OCTA"
	VersionV1 = "01"
	RecordLen = envelope.RecordLength
)

// Record layouts of OCT-ARL v1.
var (
	Lot = fixed.MustLayout("OCT-ARL v1 100 lot", RecordLen,
		fixed.Field{Name: "type", Pos: 1, Len: 3, Kind: fixed.Numeric},
		fixed.Field{Name: "emitter", Pos: 4, Len: 14, Kind: fixed.Alpha},
		fixed.Field{Name: "file_id", Pos: 18, Len: 6, Kind: fixed.Alpha},
		fixed.Field{Name: "lot", Pos: 24, Len: 3, Kind: fixed.Numeric},
		fixed.Field{Name: "lot_date", Pos: 27, Len: 6, Kind: fixed.Date},
		fixed.Field{Name: "status", Pos: 33, Len: 1, Kind: fixed.Alpha},
		fixed.Field{Name: "received", Pos: 34, Len: 6, Kind: fixed.Date},
		fixed.Field{Name: "reasons", Pos: 40, Len: 3, Kind: fixed.Numeric},
		fixed.Field{Name: "filler", Pos: 43, Len: 86, Kind: fixed.Raw},
	)
	ReasonLayout = fixed.MustLayout("OCT-ARL v1 110 reason", RecordLen,
		fixed.Field{Name: "type", Pos: 1, Len: 3, Kind: fixed.Numeric},
		fixed.Field{Name: "seq", Pos: 4, Len: 3, Kind: fixed.Numeric},
		fixed.Field{Name: "code", Pos: 7, Len: 20, Kind: fixed.Alpha},
		fixed.Field{Name: "record", Pos: 27, Len: 8, Kind: fixed.Numeric},
		fixed.Field{Name: "label", Pos: 35, Len: 80, Kind: fixed.Alpha},
		fixed.Field{Name: "filler", Pos: 115, Len: 14, Kind: fixed.Raw},
	)
)

var (
	rEmitter  = Lot.Ref("emitter")
	rFileID   = Lot.Ref("file_id")
	rLot      = Lot.Ref("lot")
	rLotDate  = Lot.Ref("lot_date")
	rStatus   = Lot.Ref("status")
	rReceived = Lot.Ref("received")
	rReasons  = Lot.Ref("reasons")
	rSeq      = ReasonLayout.Ref("seq")
	rCode     = ReasonLayout.Ref("code")
	rRecord   = ReasonLayout.Ref("record")
	rLabel    = ReasonLayout.Ref("label")
)

// printableASCII is the character set of OCT-ARL v1 records.
var printableASCII = fixed.NewCharset(" ~")

// OCTv1 is the Decoder of OCT-ARL v1.
type OCTv1 struct{}

// Name implements Decoder.
func (OCTv1) Name() string { return "oct-arl-v1" }

// Detect implements Decoder: a 000 header whose norm is OCTA (CR/LF before
// it tolerated).
func (OCTv1) Detect(head []byte) bool {
	head = bytes.TrimLeft(head, "\r\n")
	if len(head) < 66 || string(head[:3]) != "000" {
		return false
	}
	return envelope.HNorm.String(head) == NormV1
}

type decoder struct {
	opt      Options
	br       *bufio.Reader
	col      fixed.Collector
	f        *File
	rec      int64
	hdr      []byte
	lines    bool // a line break was seen: records are lines
	cur      int  // index of the open ARL, -1 if none
	want     int64
	seq      int64
	negative bool // the open ARL's status is N
	trailer  bool
	// After an unreadable record the structure around it is unknowable:
	// the checks it would falsify are skipped (no cascades).
	lost    bool // until the next 100: reasons and their sequence unchecked
	curLost bool // the open ARL's reason count is unknowable
	noLots  bool // the 999 lot count is unknowable
}

// Decode implements Decoder.
func (OCTv1) Decode(r io.Reader, opt Options) (*File, error) {
	opt = opt.withDefaults()
	d := &decoder{opt: opt, f: &File{Layout: OCTv1{}.Name()}, cur: -1}
	d.col.Max = opt.MaxErrors
	d.br = bufio.NewReaderSize(&fixed.LimitReader{R: r, Max: opt.MaxBytes}, 16<<10)
	err := d.run()
	if errors.Is(err, fixed.ErrByteLimit) {
		d.errf(ErrLimitBytes, 0, "", "file larger than %d bytes: reading stopped", opt.MaxBytes)
		err = nil
	}
	d.closeARL()
	f := d.f
	f.Records = d.rec
	f.LineBreaks = d.lines
	f.Errors = d.col.Errors()
	f.Dropped = d.col.Dropped()
	if f.Dropped > 0 {
		f.Errors = append(f.Errors, fixed.Error{Code: ErrLimitErrors, Message: strconv.FormatInt(f.Dropped, 10) + " more findings not reported"})
	}
	f.Valid = len(f.Errors) == 0
	return f, err
}

// unreadable marks the structure around an unreadable record.
// The open ARL is closed: reasons after the gap are not attributed to it,
// since the unreadable record may have been the next 100.
func (d *decoder) unreadable() {
	d.lost, d.curLost, d.noLots = true, true, true
	d.closeARL()
}

func (d *decoder) errf(code fixed.Code, rec int64, field, format string, args ...any) {
	d.col.Addf(code, rec, field, format, args...)
}

// next returns the next 128-byte record, nil at the end. Line breaks are
// skipped; once one was seen, each record must be a whole line.
func (d *decoder) next() ([]byte, error) {
	for {
		for {
			c, err := d.br.Peek(1)
			if len(c) == 0 {
				if err == io.EOF {
					return nil, nil
				}
				return nil, err
			}
			if c[0] != '\r' && c[0] != '\n' {
				break
			}
			d.lines = true
			d.br.Discard(1)
		}
		if d.rec >= d.opt.MaxRecords {
			d.errf(ErrLimitRecords, d.rec+1, "", "more than %d records: reading stopped", d.opt.MaxRecords)
			return nil, nil
		}
		b, err := d.br.Peek(RecordLen + 1)
		if err != nil && err != io.EOF {
			return nil, err
		}
		end := bytes.IndexAny(b, "\r\n")
		if end >= 0 {
			d.lines = true
		}
		switch {
		case end >= 0 && end < RecordLen:
			d.rec++
			d.errf(ErrRecordLength, d.rec, "", "record of %d bytes, %d expected", end, RecordLen)
			d.unreadable()
			d.br.Discard(end)
			continue
		case end < 0 && len(b) < RecordLen:
			d.rec++
			d.errf(ErrRecordLength, d.rec, "", "record of %d bytes at the end of the file, %d expected", len(b), RecordLen)
			d.unreadable()
			d.br.Discard(len(b))
			return nil, nil
		case end < 0 && d.lines && len(b) > RecordLen:
			// A line longer than a record: report it and skip to its end.
			d.rec++
			d.errf(ErrRecordLength, d.rec, "", "record longer than %d bytes", RecordLen)
			d.unreadable()
			if err := d.skipLine(); err != nil {
				return nil, err
			}
			continue
		}
		d.rec++
		return b[:RecordLen], nil
	}
}

// skipLine moves to the next line break (left for next to skip).
func (d *decoder) skipLine() error {
	for {
		b, err := d.br.Peek(4096)
		if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
			d.br.Discard(i)
			return nil
		}
		d.br.Discard(len(b))
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

func (d *decoder) run() error {
	b, err := d.next()
	if err != nil || b == nil {
		if err == nil {
			d.errf(ErrHeader, 0, "", "empty file")
		}
		return err
	}
	if string(b[:3]) != "000" {
		d.errf(ErrHeader, d.rec, "type", "the file does not start with a 000 header")
		d.record(b)
	} else {
		d.header(b)
	}
	d.br.Discard(RecordLen)
	for !d.trailer {
		b, err := d.next()
		if err != nil {
			return err
		}
		if b == nil {
			if d.col.Has(ErrLimitRecords) {
				return nil
			}
			d.errf(ErrMissingTrailer, 0, "", "no 999 trailer")
			return nil
		}
		d.record(b)
		d.br.Discard(RecordLen)
	}
	for {
		c, err := d.br.Peek(1)
		if len(c) == 0 {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if c[0] != '\r' && c[0] != '\n' {
			d.errf(ErrTrailingData, d.rec, "", "data after the 999 trailer")
			return nil
		}
		d.lines = true
		d.br.Discard(1)
	}
}

func (d *decoder) charset(l *fixed.Layout, b []byte) {
	if i := printableASCII.FirstBad(b); i >= 0 {
		name := ""
		for _, r := range l.Refs() {
			if pos, n := r.Pos(); i >= pos-1 && i < pos-1+n {
				name = r.Name
			}
		}
		d.errf(ErrCharset, d.rec, name, "byte 0x%02x at position %d", b[i], i+1)
	}
}

func (d *decoder) check(l *fixed.Layout, b []byte) {
	d.charset(l, b)
	rec := d.rec
	l.Check(b, func(r fixed.Ref, k fixed.Kind) {
		d.errf(ErrFieldFormat, rec, r.Name, "not a valid %s field", k)
	})
}

func (d *decoder) header(b []byte) {
	d.hdr = append([]byte(nil), b...)
	d.f.Header = envelope.Decode(d.hdr)
	d.check(envelope.Header, b)
	if n := envelope.HNorm.String(b); n != NormV1 {
		d.errf(ErrHeader, d.rec, "norm", "norm %q is not %s", n, NormV1)
	}
}

func (d *decoder) record(b []byte) {
	switch string(b[:3]) {
	case "100":
		d.closeARL()
		d.check(Lot, b)
		a := ARL{Header: d.f.Header, Emitter: rEmitter.String(b), FileID: rFileID.String(b), Record: d.rec}
		if v, ok := rLot.Int(b); ok {
			a.LotNumber = int(v)
		}
		a.LotDate, _ = rLotDate.Date(b)
		a.Received, _ = rReceived.Date(b)
		d.negative = false
		switch rStatus.Bytes(b)[0] {
		case 'P':
			a.Positive = true
		case 'N':
			d.negative = true
		default:
			d.errf(ErrFieldFormat, d.rec, "status", "status must be P or N")
		}
		d.want = -1
		if v, ok := rReasons.Int(b); ok {
			d.want = v
		}
		d.seq = 0
		d.lost, d.curLost = false, false
		d.f.ARLs = append(d.f.ARLs, a)
		d.cur = len(d.f.ARLs) - 1
	case "110":
		d.check(ReasonLayout, b)
		if d.cur < 0 {
			if !d.lost {
				d.errf(ErrRecordOrder, d.rec, "", "reason (110) without a lot record (100) before it")
			}
			return
		}
		d.seq++
		if v, ok := rSeq.Int(b); ok && v != d.seq && d.lost {
			d.seq = v
		} else if ok && v != d.seq {
			d.errf(ErrRecordOrder, d.rec, "seq", "reason sequence %d, %d expected", v, d.seq)
			d.seq = v
		}
		rr, _ := rRecord.Int(b)
		a := &d.f.ARLs[d.cur]
		a.Reasons = append(a.Reasons, Reason{Code: rCode.String(b), Label: rLabel.String(b), Record: rr})
	case "999":
		d.closeARL()
		d.trailer = true
		d.check(envelope.Trailer, b)
		if d.hdr != nil && !envelope.SameIdent(d.hdr, b) {
			d.errf(ErrHeaderMismatch, d.rec, "ident", "999 columns 4-55 differ from the 000 header")
		}
		if n, ok := envelope.TRecordCount.Int(b); ok && n != d.rec {
			d.errf(ErrRecordCount, d.rec, "record_count", "999 counts %d records, the file has %d", n, d.rec)
		}
		if n, ok := envelope.TLotCount.Int(b); ok && !d.noLots && n != int64(len(d.f.ARLs)) {
			d.errf(ErrLotCount, d.rec, "lot_count", "999 counts %d lots, the file has %d", n, len(d.f.ARLs))
		}
	case "000":
		d.errf(ErrRecordOrder, d.rec, "type", "second 000 header")
	default:
		d.errf(ErrRecordType, d.rec, "type", "record type %q is not in OCT-ARL v1", printable(b[:3]))
		d.unreadable()
	}
}

// closeARL checks the open ARL against its declared reason count.
func (d *decoder) closeARL() {
	if d.cur < 0 {
		return
	}
	a := &d.f.ARLs[d.cur]
	if d.curLost {
		d.cur = -1
		return
	}
	if d.want >= 0 && d.want != int64(len(a.Reasons)) {
		d.errf(ErrReasonCount, a.Record, "reasons", "the lot record announces %d reasons, %d follow", d.want, len(a.Reasons))
	}
	if d.negative && len(a.Reasons) == 0 {
		d.errf(ErrMissingReason, a.Record, "status", "negative ARL without a reason")
	}
	d.cur = -1
}

func printable(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		out[i] = c
	}
	return string(out)
}
