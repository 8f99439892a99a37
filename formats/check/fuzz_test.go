package check

import (
	"bytes"
	"context"
	"testing"

	"github.com/octgw/oct/formats/b2"
)

// FuzzFile: detection plus validation never panic, and a file reported
// valid is a B2 file that Validate accepts too.
func FuzzFile(f *testing.F) {
	for _, fr := range []b2.Framing{b2.FramingNone, b2.FramingLF} {
		var b bytes.Buffer
		_ = b2.Generate(&b, b2.GenOptions{Seed: 1, Invoices: 2, Framing: fr})
		f.Add(b.Bytes())
	}
	f.Add([]byte("000"))
	f.Add(header("580"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := File(context.Background(), bytes.NewReader(data), "f", FormatAuto, Limits{MaxBytes: 1 << 20})
		if err != nil {
			return // a format without validator
		}
		if res.Valid && res.Format == FormatB2 {
			rep, _ := b2.Validate(bytes.NewReader(data), b2.Options{})
			if !rep.Valid {
				t.Fatal("valid through File, invalid through b2.Validate")
			}
		}
	})
}
