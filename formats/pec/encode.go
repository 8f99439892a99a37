package pec

import (
	"bytes"
	"encoding/json"
	"io"
)

// Encode writes m as OCT-PEC v1 JSON (two-space indent, members in schema
// order, a final newline). It does not validate; call Check first when m
// was built by hand.
func Encode(w io.Writer, m *Message) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(m)
}

// Marshal is Encode into a byte slice.
func Marshal(m *Message) ([]byte, error) {
	var b bytes.Buffer
	if err := Encode(&b, m); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
