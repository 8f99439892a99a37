// Package check is the logic of `oct validate`: format detection, one
// validation per file, the JSON and human-readable reports and the exit
// code. cmd/oct only wires the flags; the gateway may call File directly.
//
// Formats are registered in validatorFor and detected in Detect: the B2
// validator lives here; NOEMIE and ARL are registered by their owners at the
// places marked "REGISTER".
package check

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/noemie"
)

// Format names.
const (
	FormatAuto   = "auto"
	FormatB2     = "b2"
	FormatNOEMIE = "noemie"
	FormatARL    = "arl"
	// FormatUnknown is reported for an input no detector recognises.
	FormatUnknown = "unknown"
)

// Error codes of this package (the formats' own codes are theirs).
const (
	// ErrUnknownFormat: auto-detection found no known format (the file is
	// reported invalid, exit 1).
	ErrUnknownFormat fixed.Code = "unknown-format"
	// ErrUnsupportedFormat: the format is known but has no validator
	// registered, or --format names no format (exit 2: not checked).
	ErrUnsupportedFormat fixed.Code = "unsupported-format"
)

// Limits bound one validation; zero values mean each format's documented
// defaults, negative values no limit.
type Limits struct {
	MaxBytes   int64
	MaxRecords int64
	MaxErrors  int
}

// RunOptions are the flags of `oct validate`.
type RunOptions struct {
	Format string // auto (or ""), b2, noemie, arl, certificate, pec, scor
	JSON   bool
	Limits Limits
}

// Error is one finding as printed in JSON: every key always present.
type Error struct {
	Code    fixed.Code `json:"code"`
	Record  int64      `json:"record"`
	Field   string     `json:"field"`
	Message string     `json:"message"`
}

// Stats are the counts printed for a file.
type Stats struct {
	Records  int64 `json:"records"`
	Lots     int64 `json:"lots"`
	Invoices int64 `json:"invoices"`
}

// Result is the outcome for one file: the JSON object of `oct validate
// --json` (one per line).
type Result struct {
	File    string  `json:"file"`
	Format  string  `json:"format"`
	Valid   bool    `json:"valid"`
	Errors  []Error `json:"errors"`
	Dropped int64   `json:"dropped,omitempty"` // errors past Limits.MaxErrors
	Stats   Stats   `json:"stats"`
	// ReadError is set (and Valid false) when the file could not be read.
	ReadError string `json:"read_error,omitempty"`
}

// Exit codes of Run.
const (
	ExitValid   = 0
	ExitInvalid = 1
	ExitUnread  = 2
)

// validatorFunc validates one stream of a given format. Its error is for
// I/O failures only; findings go into the Result.
type validatorFunc func(ctx context.Context, r io.Reader, lim Limits) (Result, error)

// validatorFor returns the validator of a format, nil if none is
// registered.
func validatorFor(format string) validatorFunc {
	switch format {
	case FormatB2:
		return validateB2
	case FormatNOEMIE:
		return validateNOEMIE
	case FormatARL:
		return validateARL
	case FormatCertificate:
		return validateCertificate
	case FormatPEC:
		return validatePEC
	case FormatSCOR:
		return validateSCOR
		// REGISTER: the NOEMIE/ARL owner adds
		//   case FormatNOEMIE: return validateNOEMIE
		//   case FormatARL:    return validateARL
		// with functions of type validatorFunc (in their own file of this
		// package), and a case in TestEveryFormat... (check_test.go).
	}
	return nil
}

// sniffLen is how many leading bytes Detect needs.
const sniffLen = 512

// Detect names the format of a file from its first bytes (at least the 000
// header; leading CR/LF are skipped): the 000 header's norm field
// (envelope.HNorm, cols 62-65) tells them apart. It returns FormatUnknown
// when nothing matches.
func Detect(head []byte) string {
	head = bytes.TrimLeft(head, "\r\n")
	if noemie.Detect(head) { // also with the 4-digit line-length prefix ("0128000…")
		return FormatNOEMIE
	}
	if len(head) < 65 || string(head[:3]) != "000" {
		return FormatUnknown
	}
	norm := strings.TrimRight(string(envelope.HNorm.Bytes(head)), " ")
	switch {
	// REGISTER: detection rules of other formats go here, before B2.
	case norm == "OCTA": // ARL, OCT layout v1 (formats/arl NormV1)
		return FormatARL
	case norm != "" && fixed.AllDigits([]byte(norm)): // NOEMIE références: 580, 576, 908…
		return FormatNOEMIE
	case norm != "":
		// B2 files carry their variant or norm: "CP", "ES", or the
		// practitioners' norms.
		return FormatB2
	}
	return FormatUnknown
}

// File validates one stream. format is auto (or ""), b2, noemie or arl;
// name is only copied into the Result. The error is for I/O failures (and
// ctx cancellation) only.
func File(ctx context.Context, r io.Reader, name, format string, lim Limits) (Result, error) {
	if format == "" {
		format = FormatAuto
	}
	src := io.Reader(&ctxReader{ctx: ctx, r: r})
	if format == FormatAuto {
		br := bufio.NewReaderSize(src, sniffLen)
		head, err := br.Peek(sniffLen)
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			return Result{File: name}, err
		}
		format = Detect(head)
		if f := DetectFlow(name, head); f != "" && format == FormatUnknown {
			format = f
		}
		if format == FormatUnknown {
			msg := "not a file of a known format (no 000 header with a norm)"
			if len(head) == 0 {
				msg = "empty input"
			}
			return Result{File: name, Format: FormatUnknown, Errors: []Error{{Code: ErrUnknownFormat, Message: msg}}}, nil
		}
		src = br
	}
	v := validatorFor(format)
	if v == nil {
		return Result{File: name, Format: format}, fixed.Errorf(ErrUnsupportedFormat, 0, "", "no validator for format %q", format)
	}
	res, err := v(ctx, src, lim)
	res.File, res.Format = name, format
	if res.Errors == nil {
		res.Errors = []Error{}
	}
	return res, err
}

func validateB2(ctx context.Context, r io.Reader, lim Limits) (Result, error) {
	rep, err := b2.Validate(r, b2.Options{Limits: b2.Limits{MaxBytes: lim.MaxBytes, MaxRecords: lim.MaxRecords, MaxErrors: lim.MaxErrors}})
	if err != nil {
		return Result{}, err
	}
	return Result{
		Valid:   rep.Valid,
		Errors:  FromFixed(rep.Errors),
		Dropped: rep.Dropped,
		Stats:   Stats{Records: rep.Stats.Records, Lots: rep.Stats.Lots, Invoices: rep.Stats.Invoices},
	}, nil
}

// FromFixed converts a format's findings to the printed form.
func FromFixed(errs []fixed.Error) []Error {
	out := make([]Error, len(errs))
	for i, e := range errs {
		out[i] = Error{Code: e.Code, Record: e.Record, Field: e.Field, Message: e.Message}
	}
	return out
}

// ctxReader stops reading when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Run validates files one after the other and prints a report on stdout
// (problems reading a file on stderr). It returns ExitValid when every file
// is valid, ExitInvalid when any is invalid, ExitUnread when any cannot be
// read or checked (the highest wins).
func Run(ctx context.Context, files []string, opt RunOptions, stdout, stderr io.Writer) int {
	format := opt.Format
	if format == "" {
		format = FormatAuto
	}
	switch format {
	case FormatAuto, FormatB2, FormatNOEMIE, FormatARL, FormatCertificate, FormatPEC, FormatSCOR:
	default:
		fmt.Fprintf(stderr, "oct validate: unknown format %q (auto, b2, noemie, arl, certificate, pec, scor)\n", format)
		return ExitUnread
	}
	exit := ExitValid
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	for _, name := range files {
		if err := ctx.Err(); err != nil {
			fmt.Fprintf(stderr, "oct validate: %v\n", err)
			return ExitUnread
		}
		res, err := validatePath(ctx, name, format, opt.Limits)
		code := ExitValid
		switch {
		case err != nil:
			code = ExitUnread
			res.File, res.Valid, res.ReadError = name, false, err.Error()
			if res.Errors == nil {
				res.Errors = []Error{}
			}
			fmt.Fprintf(stderr, "%s: cannot validate: %v\n", name, err)
		case !res.Valid:
			code = ExitInvalid
		}
		if code > exit {
			exit = code
		}
		if opt.JSON {
			if err := enc.Encode(res); err != nil {
				fmt.Fprintf(stderr, "oct validate: %v\n", err)
				return ExitUnread
			}
			continue
		}
		if err == nil {
			printHuman(stdout, res)
		}
	}
	return exit
}

func validatePath(ctx context.Context, name, format string, lim Limits) (Result, error) {
	f, err := os.Open(name)
	if err != nil {
		return Result{File: name, Format: format}, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return Result{File: name, Format: format}, fmt.Errorf("is a directory")
	}
	return File(ctx, f, name, format, lim)
}

// printHuman writes one line per error, "FILE:RECORD: code field: message",
// then a summary line for the file.
func printHuman(w io.Writer, r Result) {
	for _, e := range r.Errors {
		field := ""
		if e.Field != "" {
			field = " " + e.Field
		}
		fmt.Fprintf(w, "%s:%d: %s%s: %s\n", r.File, e.Record, e.Code, field, e.Message)
	}
	state := "valid"
	if !r.Valid {
		n := int64(len(r.Errors)) + r.Dropped
		state = fmt.Sprintf("invalid, %d error(s)", n)
		if r.Dropped > 0 {
			state += fmt.Sprintf(" (%d not listed)", r.Dropped)
		}
	}
	fmt.Fprintf(w, "%s: %s: %s, %d records, %d lots, %d invoices\n", r.File, r.Format, state, r.Stats.Records, r.Stats.Lots, r.Stats.Invoices)
}
