package arl

import (
	"bufio"
	"fmt"
	"io"

	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
)

// WriteOptions selects the physical form of an OCT-ARL v1 file.
type WriteOptions struct {
	LineBreaks bool // CR LF after each record
}

// Write writes an OCT-ARL v1 file acknowledging the given lots, records
// followed by CR LF. One file may acknowledge several lots (one 100 record
// each, with its 110 reasons); they share the 000 header, taken from the
// first ARL with the norm and version forced to OCTA/01. An ARL whose Header
// is neither zero nor the same is an error.
func Write(w io.Writer, a ...ARL) error { return WriteWith(w, WriteOptions{LineBreaks: true}, a...) }

// WriteWith is Write with a chosen physical form.
func WriteWith(out io.Writer, opt WriteOptions, a ...ARL) error {
	if len(a) == 0 {
		return fmt.Errorf("arl: a file acknowledges at least one lot")
	}
	info := a[0].Header
	info.Norm, info.Version = NormV1, VersionV1
	head, err := envelope.Encode(info)
	if err != nil {
		return err
	}
	if i := printableASCII.FirstBad(head); i >= 0 {
		return fmt.Errorf("arl: header byte 0x%02x at position %d is not printable ASCII", head[i], i+1)
	}
	w := &writer{bw: bufio.NewWriter(out), opt: opt}
	w.emit(head)
	for i := range a {
		h := a[i].Header
		if h != (envelope.Info{}) {
			h.Norm, h.Version = NormV1, VersionV1
			if h != info {
				return fmt.Errorf("arl: ARL %d has another header than the first: one file, one header", i)
			}
		}
		if err := w.arl(&a[i]); err != nil {
			return fmt.Errorf("arl: ARL %d (lot %d): %w", i, a[i].LotNumber, err)
		}
	}
	tr, err := envelope.EncodeTrailer(head, w.rec+1, int64(len(a)), -1)
	if err != nil {
		return err
	}
	w.emit(tr)
	return w.bw.Flush()
}

type writer struct {
	bw  *bufio.Writer
	opt WriteOptions
	rec int64
}

func (w *writer) emit(b []byte) {
	w.rec++
	w.bw.Write(b)
	if w.opt.LineBreaks {
		w.bw.WriteString("\r\n")
	}
}

func blank() []byte {
	b := make([]byte, RecordLen)
	for i := range b {
		b[i] = ' '
	}
	return b
}

func text(b []byte, r fixed.Ref, s string) error {
	if i := printableASCII.FirstBad([]byte(s)); i >= 0 {
		return fixed.Errorf(fixed.ErrFieldOverflow, 0, r.Name, "byte 0x%02x is not printable ASCII", s[i])
	}
	if len(s) > 0 && s[len(s)-1] == ' ' {
		return fixed.Errorf(fixed.ErrFieldOverflow, 0, r.Name, "trailing blank")
	}
	return r.SetString(b, s)
}

func (w *writer) arl(a *ARL) error {
	b := blank()
	copy(b, "100")
	status := "N"
	if a.Positive {
		status = "P"
	}
	if a.LotNumber < 0 {
		return fixed.Errorf(fixed.ErrFieldOverflow, 0, "lot", "negative lot number")
	}
	for _, err := range []error{
		text(b, rEmitter, a.Emitter),
		text(b, rFileID, a.FileID),
		rLot.SetInt(b, int64(a.LotNumber)),
		rLotDate.SetDate(b, a.LotDate),
		rStatus.SetString(b, status),
		rReceived.SetDate(b, a.Received),
		rReasons.SetInt(b, int64(len(a.Reasons))),
	} {
		if err != nil {
			return err
		}
	}
	w.emit(b)
	for i, r := range a.Reasons {
		b := blank()
		copy(b, "110")
		if r.Record < 0 {
			return fixed.Errorf(fixed.ErrFieldOverflow, 0, "record", "negative record")
		}
		for _, err := range []error{
			rSeq.SetInt(b, int64(i+1)),
			text(b, rCode, r.Code),
			rRecord.SetInt(b, r.Record),
			text(b, rLabel, r.Label),
		} {
			if err != nil {
				return err
			}
		}
		w.emit(b)
	}
	return nil
}
