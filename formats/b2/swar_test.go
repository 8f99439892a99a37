package b2

import (
	"encoding/binary"
	"testing"

	"github.com/octgw/oct/formats/fixed"
)

// The word-at-a-time charset test must agree with the table for every byte
// in every lane.
func TestNotCharsetSWAR(t *testing.T) {
	for b := 0; b < 256; b++ {
		for lane := 0; lane < 8; lane++ {
			var w [8]byte
			for i := range w {
				w[i] = 'A'
			}
			w[lane] = byte(b)
			got := notCharsetSWAR(binary.LittleEndian.Uint64(w[:]))
			want := uint64(0)
			if !fixed.UpperAlnum[b] {
				want = 0x80 << (8 * lane)
			}
			if got != want {
				t.Fatalf("byte %#x lane %d: %#x want %#x", b, lane, got, want)
			}
		}
	}
}

// scan agrees with the byte-by-byte definition on random corruptions of
// every layout's digit and text columns.
func TestScanAgreesWithBytewise(t *testing.T) {
	for _, l := range allLayouts {
		c := compile(l)
		rec := make([]byte, RecordLength)
		for i := range rec {
			rec[i] = ' '
		}
		for _, sp := range c.spans {
			for i := sp[0]; i < sp[1]; i++ {
				rec[i] = '7'
			}
		}
		if !c.scan(rec) {
			t.Fatalf("%s: clean record refused", l.Name)
		}
		for pos := 0; pos < RecordLength; pos++ {
			for _, b := range []byte{0, '\n', ' ', '!', '/', '0', '9', ':', '@', 'A', 'Z', '[', 'a', 0x7F, 0x80, 0xC3, 0xFF} {
				r := append([]byte(nil), rec...)
				r[pos] = b
				digitCol := false
				for _, sp := range c.spans {
					digitCol = digitCol || pos >= sp[0] && pos < sp[1]
				}
				want := fixed.UpperAlnum[b] && (!digitCol || b >= '0' && b <= '9')
				if got := c.scan(r); got != want {
					t.Fatalf("%s: byte %#x at %d: scan %v, want %v", l.Name, b, pos+1, got, want)
				}
			}
		}
	}
}
