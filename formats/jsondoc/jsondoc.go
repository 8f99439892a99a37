// Package jsondoc reads the JSON documents of OCT's own formats (OCT-PEC,
// oct-cert/1 and the FHIR resources of the certificate flow) the way their
// validators need: exactly one JSON value, numbers kept as text so that a
// bad amount or date can be reported rather than rounded, and syntax
// findings that never quote the input (encoding/json's messages do, and the
// input may hold personal data).
package jsondoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/octgw/oct/formats/fixed"
)

// Stable errors of Decode (errors.Is).
var (
	ErrSyntax   = errors.New("not valid JSON")
	ErrTrailing = errors.New("data after the JSON value")
)

// Read reads a whole document of at most max bytes from r. A longer one
// adds a finding with code tooLarge to c ("more than max bytes") and
// returns ok false: the validator reports it and reads no further. The
// error is for I/O failures only.
func Read(r io.Reader, max int64, c *fixed.Collector, tooLarge fixed.Code) (data []byte, ok bool, err error) {
	data, err = io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(data)) > max {
		c.Addf(tooLarge, 0, "", "more than %d bytes", max)
		return nil, false, nil
	}
	return data, true, nil
}

// Decode parses data as exactly one JSON value (objects as map[string]any,
// numbers as json.Number). On failure it returns the byte offset where the
// problem is and ErrSyntax or ErrTrailing; offset is -1 on success.
func Decode(data []byte) (v any, offset int64, err error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		off := d.InputOffset()
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off = se.Offset
		}
		return nil, off, ErrSyntax
	}
	if off := d.InputOffset(); len(bytes.TrimSpace(data[off:])) != 0 {
		return nil, off, ErrTrailing
	}
	return v, -1, nil
}

// Object decodes data as one JSON object. When data is not one, it adds a
// single finding with code to c (the byte offset, never the bytes) and
// returns nil.
func Object(data []byte, c *fixed.Collector, code fixed.Code) map[string]any {
	v, off, err := Decode(data)
	if err != nil {
		c.Addf(code, 0, "", "at byte %d: %v", off, err)
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		c.Addf(code, 0, "", "want a JSON object")
		return nil
	}
	return m
}
