package arl

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
)

// GenOptions drives Generate. The same options always give the same bytes.
type GenOptions struct {
	Seed         uint64
	Lots         int     // lots acknowledged in the file; 0 means 1
	NegativeRate float64 // share of negative ARLs
	// Fault, when not empty, injects one fault reported with that code (see
	// Faults). ErrUnknownLayout gives a file no registry decoder accepts.
	Fault      fixed.Code
	LineBreaks bool
}

// Faults lists the codes Generate can inject.
var Faults = []fixed.Code{ErrRecordLength, ErrRecordType, ErrRecordOrder, ErrHeader, ErrHeaderMismatch,
	ErrRecordCount, ErrLotCount, ErrReasonCount, ErrMissingReason, ErrMissingTrailer, ErrFieldFormat,
	ErrCharset, ErrTrailingData, ErrUnknownLayout}

// Reasons the generator gives to negative ARLs: the gateway's own B2 codes
// (an OCT-ARL v1 reason code is free text of 20 characters).
var genReasons = []Reason{
	{Code: "record-count", Label: "NOMBRE D ENREGISTREMENTS DU 999 FAUX"},
	{Code: "nir-key", Label: "CLE DU NIR INVALIDE", Record: 4},
	{Code: "billing-delay", Label: "DELAI DE FACTURATION DEPASSE", Record: 5},
	{Code: "lot-number", Label: "NUMERO DE LOT DEJA RECU"},
}

// GenARLs returns the ARLs Generate writes (without fault).
func GenARLs(opt GenOptions) []ARL {
	if opt.Lots <= 0 {
		opt.Lots = 1
	}
	rng := rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x51ed27a1b3c9d5f3))
	base := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(opt.Seed%300))
	hdr := envelope.Info{SenderType: "CT", Sender: fmt.Sprintf("00000001%06d", 422000+rng.IntN(1000)),
		ReceiverType: "OT", Receiver: "00000123456789", Application: "TR",
		FileID: fmt.Sprintf("A%05d", rng.IntN(100000)), Created: fixed.DayOf(base.AddDate(0, 0, 2)),
		Norm: NormV1, Version: VersionV1, Test: true}
	emitter := fmt.Sprintf("00000%09d", 100000000+rng.IntN(900000000))
	out := make([]ARL, opt.Lots)
	for i := range out {
		a := ARL{Header: hdr, Emitter: emitter, FileID: fmt.Sprintf("F%05d", rng.IntN(100000)),
			LotNumber: 1 + (i % 999), LotDate: fixed.DayOf(base), Positive: true, Received: fixed.DayOf(base.AddDate(0, 0, 1))}
		if rng.Float64() < opt.NegativeRate {
			a.Positive = false
			n := 1 + rng.IntN(2)
			for k := 0; k < n; k++ {
				a.Reasons = append(a.Reasons, genReasons[rng.IntN(len(genReasons))])
			}
		}
		out[i] = a
	}
	return out
}

// Generate writes a deterministic OCT-ARL v1 file, with one injected fault
// when opt.Fault is set.
func Generate(w io.Writer, opt GenOptions) error {
	a := GenARLs(opt)
	neg := -1
	for i := range a {
		if !a[i].Positive {
			neg = i
			break
		}
	}
	needNegative := opt.Fault == ErrRecordOrder || opt.Fault == ErrReasonCount || opt.Fault == ErrMissingReason
	if needNegative && neg < 0 {
		a[0].Positive, a[0].Reasons = false, []Reason{genReasons[0], genReasons[1]}
		neg = 0
	}
	if opt.Fault == ErrRecordOrder && len(a[neg].Reasons) < 2 {
		a[neg].Reasons = append(a[neg].Reasons, genReasons[2])
	}
	var buf bytes.Buffer
	if err := WriteWith(&buf, WriteOptions{}, a...); err != nil {
		return err
	}
	recs := make([][]byte, 0, buf.Len()/RecordLen)
	for b := buf.Bytes(); len(b) > 0; b = b[RecordLen:] {
		recs = append(recs, b[:RecordLen:RecordLen])
	}
	last := len(recs) - 1
	lineBreaks := opt.LineBreaks
	// index of the negative ARL's 100 record
	at := 1
	for i := 0; i < neg; i++ {
		at += 1 + len(a[i].Reasons)
	}
	switch opt.Fault {
	case "":
	case ErrRecordLength:
		lineBreaks = true // a short line is only recoverable when records are lines
		recs[1] = recs[1][:100]
	case ErrRecordType:
		copy(recs[1], "120")
	case ErrRecordOrder:
		copy(rSeq.Bytes(recs[at+2]), "009")
	case ErrHeader:
		copy(envelope.HNorm.Bytes(recs[0]), "OCTB")
	case ErrHeaderMismatch:
		envelope.TIdent.Bytes(recs[last])[0] = 'X'
	case ErrRecordCount:
		v, _ := envelope.TRecordCount.Int(recs[last])
		envelope.TRecordCount.SetInt(recs[last], v+1)
	case ErrLotCount:
		v, _ := envelope.TLotCount.Int(recs[last])
		envelope.TLotCount.SetInt(recs[last], v+1)
	case ErrReasonCount:
		v, _ := rReasons.Int(recs[at])
		rReasons.SetInt(recs[at], v+1)
	case ErrMissingReason:
		n := len(a[neg].Reasons)
		rReasons.SetInt(recs[at], 0)
		recs = append(recs[:at+1], recs[at+1+n:]...)
		last = len(recs) - 1
		v, _ := envelope.TRecordCount.Int(recs[last])
		envelope.TRecordCount.SetInt(recs[last], v-int64(n))
	case ErrMissingTrailer:
		recs = recs[:last]
	case ErrFieldFormat:
		rLotDate.Bytes(recs[1])[2] = '9'
	case ErrCharset:
		rEmitter.Bytes(recs[1])[0] = 0xe9
	case ErrTrailingData:
		recs = append(recs, []byte("X"))
	case ErrUnknownLayout:
		copy(envelope.HNorm.Bytes(recs[0]), "XXXX")
	default:
		return fmt.Errorf("arl: fault %q cannot be generated", opt.Fault)
	}
	sep := []byte(nil)
	if lineBreaks {
		sep = []byte("\r\n")
	}
	for _, r := range recs {
		if _, err := w.Write(r); err != nil {
			return err
		}
		if _, err := w.Write(sep); err != nil {
			return err
		}
	}
	return nil
}
