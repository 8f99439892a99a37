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
