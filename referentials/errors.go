package referentials

import (
	"fmt"
	"strconv"
	"strings"
)

// Code is a stable error code. Callers match codes with errors.Is against
// the Err* sentinels (a Code is itself an error), or read the Code field
// after errors.As; never the text. Codes are part of the API: never rename one.
type Code string

func (c Code) Error() string { return string(c) }

// Error codes.
const (
	// ErrImport: a feed was refused; the *ImportError lists every bad line.
	ErrImport Code = "REF_IMPORT"
	// ErrTooManyRemovals: a feed would remove more than the configured share
	// of a table's entries and was not confirmed. See *RemovalError.
	ErrTooManyRemovals Code = "REF_TOO_MANY_REMOVALS"
	// ErrVersionNotFound: no version with that id.
	ErrVersionNotFound Code = "REF_VERSION_NOT_FOUND"
	// ErrVersionExists: the store already holds a version with that id.
	ErrVersionExists Code = "REF_VERSION_EXISTS"
	// ErrStore: the version store failed (I/O, corrupt record).
	ErrStore Code = "REF_STORE"
	// ErrPublish: the version was committed but the Publisher failed; the
	// caller may publish the same diff again.
	ErrPublish Code = "REF_PUBLISH"
	// ErrFetch: the upstream source could not be read.
	ErrFetch Code = "REF_FETCH"
	// ErrNotFound: no referential entry for the key at that instant.
	ErrNotFound Code = "REF_NOT_FOUND"
)

// Line error codes (LineError.Code). Stable like the codes above.
const (
	LineSyntax          = "syntax"           // the line cannot be split or decoded
	LineUnknownColumn   = "unknown-column"   // a header names a column we do not know
	LineMissing         = "missing"          // a required field is empty
	LineInvalid         = "invalid"          // a field has the wrong shape
	LineDuplicate       = "duplicate"        // the same key twice with overlapping periods
	LineUnknownOperator = "unknown-operator" // an AMC entry names an operator without convention
	LineFieldCount      = "field-count"      // wrong number of fields in a positional table
)

// LineError is one bad line of an import.
type LineError struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line"` // 1-based line in File; 0 = whole file
	Field   string `json:"field,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e LineError) String() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	b.WriteString(strconv.Itoa(e.Line))
	if e.Field != "" {
		b.WriteString(" [" + e.Field + "]")
	}
	b.WriteString(" " + e.Code)
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// ImportError refuses a whole feed. Lines lists every bad line found (no
// partial import ever happens).
type ImportError struct {
	Source string      `json:"source,omitempty"`
	Lines  []LineError `json:"lines"`
}

func (e *ImportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: feed %q refused, %d bad line(s)", ErrImport, e.Source, len(e.Lines))
	for i, l := range e.Lines {
		if i == 5 {
			fmt.Fprintf(&b, "; ... %d more", len(e.Lines)-i)
			break
		}
		b.WriteString("; " + l.String())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrImport) true.
func (e *ImportError) Is(target error) bool { return target == ErrImport }

// RemovalError refuses a feed that would remove too large a share of a table.
type RemovalError struct {
	Table    Table   `json:"table"`
	Removed  int     `json:"removed"`
	Previous int     `json:"previous"`
	Limit    float64 `json:"limit"` // configured maximum share, 0..1
}

func (e *RemovalError) Error() string {
	return fmt.Sprintf("%s: feed removes %d of %d %s entries (limit %.0f%%); confirm to apply",
		ErrTooManyRemovals, e.Removed, e.Previous, e.Table, e.Limit*100)
}

// Is makes errors.Is(err, ErrTooManyRemovals) true.
func (e *RemovalError) Is(target error) bool { return target == ErrTooManyRemovals }

// Error is a generic coded error carrying a cause.
type Error struct {
	Code Code
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	s := string(e.Code) + ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the Code.
func (e *Error) Is(target error) bool { c, ok := target.(Code); return ok && c == e.Code }

func errorf(code Code, err error, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...), Err: err}
}
