// Package arl reads and writes ARL files (accusés de réception logiques):
// the technical acceptance (positive) or refusal (negative) of a transmitted
// lot.
//
// The real SESAM-Vitale ARL layout is not public (docs/formats.md §2 and §7.2).
// This package therefore defines OCT's own layout, "OCT-ARL v1", on the
// shared 000/999 envelope (see docs/formats/arl.md, where it is labelled as
// our assumption), and puts decoding behind the Decoder interface so that the
// real layout can be added as another Decoder in a Registry without touching
// callers.
package arl

import (
	"bufio"
	"io"

	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
)

// Error codes, stable (errors.Is on fixed.Error).
const (
	ErrRecordLength   fixed.Code = "record-length"   // a record that is not 128 bytes
	ErrRecordType     fixed.Code = "record-type"     // a record type the layout does not have
	ErrRecordOrder    fixed.Code = "record-order"    // 110 not after its 100, sequence broken, 000 not first
	ErrHeader         fixed.Code = "header"          // no 000 first, or not the layout's norm
	ErrHeaderMismatch fixed.Code = "header-mismatch" // 999 columns 4-55 differ from the 000
	ErrRecordCount    fixed.Code = "record-count"    // 999 record count differs (000 and 999 included)
	ErrLotCount       fixed.Code = "lot-count"       // 999 lot count differs from the number of 100 records
	ErrReasonCount    fixed.Code = "reason-count"    // a 100's reason count differs from its 110 records
	ErrMissingReason  fixed.Code = "missing-reason"  // a negative ARL without any reason
	ErrMissingTrailer fixed.Code = "missing-trailer" // end of data before the 999
	ErrFieldFormat    fixed.Code = "field-format"    // non-digit in a numeric field, impossible date, bad status
	ErrCharset        fixed.Code = "charset"         // byte outside printable ASCII
	ErrTrailingData   fixed.Code = "trailing-data"   // bytes after the 999
	ErrUnknownLayout  fixed.Code = "unknown-layout"  // no decoder of the registry recognises the file
	ErrLimitBytes     fixed.Code = "limit-bytes"     // Options.MaxBytes reached: reading stopped
	ErrLimitRecords   fixed.Code = "limit-records"   // Options.MaxRecords reached: reading stopped
	ErrLimitErrors    fixed.Code = "limit-errors"    // Options.MaxErrors reached: further findings counted in Dropped
)

// Codes lists every code of the package.
var Codes = []fixed.Code{ErrRecordLength, ErrRecordType, ErrRecordOrder, ErrHeader, ErrHeaderMismatch,
	ErrRecordCount, ErrLotCount, ErrReasonCount, ErrMissingReason, ErrMissingTrailer, ErrFieldFormat,
	ErrCharset, ErrTrailingData, ErrUnknownLayout, ErrLimitBytes, ErrLimitRecords, ErrLimitErrors}

// ARL is the acknowledgement of one lot.
type ARL struct {
	Header    envelope.Info `json:"header"`  // 000 of the ARL file: sender = the acknowledging insurer
	Emitter   string        `json:"emitter"` // émetteur of the acknowledged lot (000 sender number of its file)
	FileID    string        `json:"file_id"` // file identifier of the acknowledged file
	LotNumber int           `json:"lot_number"`
	LotDate   fixed.Day     `json:"lot_date"`
	Positive  bool          `json:"positive"`
	Reasons   []Reason      `json:"reasons,omitempty"`
	Received  fixed.Day     `json:"received"` // day the insurer received the file
	Record    int64         `json:"record"`   // record number of the ARL in its file (0 when built, not read)
}

// Reason is one cause given by the insurer (on a negative ARL; a positive
// ARL may carry informative reasons).
type Reason struct {
	Code   string `json:"code"`
	Label  string `json:"label"`
	Record int64  `json:"record"` // record of the acknowledged file at fault; 0 for the file or lot as a whole
}

// Options bounds a decode. Zero values take the defaults.
type Options struct {
	MaxBytes   int64
	MaxRecords int64
	MaxErrors  int
}

// Default limits.
const (
	DefaultMaxBytes   = 16 << 20
	DefaultMaxRecords = 1_000_000
	DefaultMaxErrors  = fixed.DefaultMaxErrors
)

func (o Options) withDefaults() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxRecords <= 0 {
		o.MaxRecords = DefaultMaxRecords
	}
	if o.MaxErrors <= 0 {
		o.MaxErrors = DefaultMaxErrors
	}
	return o
}

// File is the result of decoding one ARL file.
type File struct {
	Layout  string        `json:"layout"` // Name of the decoder used
	Header  envelope.Info `json:"header"`
	ARLs    []ARL         `json:"arls"`
	Valid   bool          `json:"valid"`
	Errors  []fixed.Error `json:"errors"`
	Dropped int64         `json:"dropped,omitempty"`
	Records int64         `json:"records"` // physical records read
	// LineBreaks is the physical form (records followed by CR LF), for
	// WriteWith.
	LineBreaks bool `json:"line_breaks"`
}

// Decoder is one ARL layout.
type Decoder interface {
	// Name identifies the layout ("oct-arl-v1").
	Name() string
	// Detect reports whether a file starting with head (up to HeadLen bytes,
	// fewer for a short file) is in this layout.
	Detect(head []byte) bool
	// Decode reads a whole file. The error is for I/O only; findings are in
	// File.Errors.
	Decode(r io.Reader, opt Options) (*File, error)
}

// HeadLen is the number of leading bytes a Registry passes to Detect.
const HeadLen = 256

// Registry is an ordered list of decoders: the first whose Detect accepts
// the head of a file decodes it. It is immutable once built.
type Registry struct{ decoders []Decoder }

// NewRegistry builds a registry of the given decoders, in order.
func NewRegistry(decoders ...Decoder) *Registry {
	return &Registry{decoders: append([]Decoder(nil), decoders...)}
}

// DefaultRegistry holds OCT-ARL v1 only.
func DefaultRegistry() *Registry { return NewRegistry(OCTv1{}) }

// Decoders returns the decoders in order.
func (g *Registry) Decoders() []Decoder { return append([]Decoder(nil), g.decoders...) }

// Detect returns the decoder for a file head, or nil.
func (g *Registry) Detect(head []byte) Decoder {
	for _, d := range g.decoders {
		if d.Detect(head) {
			return d
		}
	}
	return nil
}

// Decode detects the layout of r and decodes it. A file no decoder
// recognises gives a File with one unknown-layout finding.
func (g *Registry) Decode(r io.Reader, opt Options) (*File, error) {
	br := bufio.NewReaderSize(r, HeadLen)
	head, err := br.Peek(HeadLen)
	if err != nil && err != io.EOF && len(head) == 0 {
		return nil, err
	}
	d := g.Detect(head)
	if d == nil {
		return &File{Errors: []fixed.Error{{Code: ErrUnknownLayout, Message: "no ARL decoder recognises the file"}}}, nil
	}
	return d.Decode(br, opt)
}
