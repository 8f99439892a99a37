package fixed

import (
	"fmt"
	"strconv"
)

// Code is a stable, machine-readable error code ("record-length",
// "nir-key", ...). Codes never change meaning once published: vendors match
// on them. A Code is itself an error so that errors.Is(err, SomeCode) works.
type Code string

func (c Code) Error() string { return string(c) }

// Error is one finding of a reader or validator.
type Error struct {
	Code    Code   `json:"code"`
	Record  int64  `json:"record"`          // 1-based physical record number; 0 = whole file
	Field   string `json:"field,omitempty"` // layout field name, "" when the record as a whole is at fault
	Message string `json:"message"`
}

func (e *Error) Error() string {
	var b []byte
	b = append(b, e.Code...)
	if e.Record > 0 {
		b = append(b, " at record "...)
		b = strconv.AppendInt(b, e.Record, 10)
	}
	if e.Field != "" {
		b = append(b, ", field "...)
		b = append(b, e.Field...)
	}
	if e.Message != "" {
		b = append(b, ": "...)
		b = append(b, e.Message...)
	}
	return string(b)
}

// Is reports whether target is this error's Code, so callers write
// errors.Is(err, b2.ErrNIRKey).
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// Errorf builds an Error.
func Errorf(code Code, record int64, field, format string, args ...any) *Error {
	return &Error{Code: code, Record: record, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Collector gathers errors up to a cap so that a file full of faults cannot
// make a reader allocate without bound. After the cap, Add only counts.
type Collector struct {
	Max     int // 0 means DefaultMaxErrors
	errs    []Error
	dropped int64
}

// DefaultMaxErrors is the cap used when Collector.Max is 0.
const DefaultMaxErrors = 1000

// Add records one error (copied).
func (c *Collector) Add(e Error) {
	max := c.Max
	if max <= 0 {
		max = DefaultMaxErrors
	}
	if len(c.errs) >= max {
		c.dropped++
		return
	}
	c.errs = append(c.errs, e)
}

// Addf is Add with a formatted message.
func (c *Collector) Addf(code Code, record int64, field, format string, args ...any) {
	max := c.Max
	if max <= 0 {
		max = DefaultMaxErrors
	}
	if len(c.errs) >= max { // do not format what will be dropped
		c.dropped++
		return
	}
	c.errs = append(c.errs, Error{Code: code, Record: record, Field: field, Message: fmt.Sprintf(format, args...)})
}

// Errors returns the collected errors in the order they were added.
func (c *Collector) Errors() []Error { return c.errs }

// Len is the number of errors kept.
func (c *Collector) Len() int { return len(c.errs) }

// Dropped is the number of errors counted past the cap.
func (c *Collector) Dropped() int64 { return c.dropped }

// Has reports whether an error with the code was kept.
func (c *Collector) Has(code Code) bool { return HasCode(c.errs, code) }

// HasCode reports whether errs holds an error with the code (the Has of
// every format's report).
func HasCode(errs []Error, code Code) bool {
	for i := range errs {
		if errs[i].Code == code {
			return true
		}
	}
	return false
}
