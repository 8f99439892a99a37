package b2

import (
	"math/rand"
	"strconv"
	"testing"

	"github.com/octgw/oct/formats/fixed"
)

// dateOK and dayOf agree with fixed.ParseDate on every six-digit string.
func TestDateOKAgreesWithParseDate(t *testing.T) {
	b := make([]byte, 6)
	for v := 0; v < 1_000_000; v++ {
		copy(b, strconv.Itoa(1_000_000 + v)[1:])
		d, ok := fixed.ParseDate(b)
		if got := dateOK(b); got != ok {
			t.Fatalf("%s: dateOK %v, ParseDate %v", b, got, ok)
		}
		if ok && dayOf(b) != d {
			t.Fatalf("%s: dayOf %v, ParseDate %v", b, dayOf(b), d)
		}
	}
}

// num.get agrees with Ref.Int on the digit fields of every layout (at most
// 8 columns, not within the first 8 bytes), for random digits and for
// digits next to non-digits.
func TestNumAgreesWithInt(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	rec := make([]byte, RecordLength)
	n := 0
	for _, l := range allLayouts {
		for _, r := range l.Refs() {
			p, ln := r.Pos()
			if r.Kind != fixed.Numeric && r.Kind != fixed.Amount || ln > 8 || p-1+ln < 8 {
				continue
			}
			nr := numOf(r)
			for i := 0; i < 200; i++ {
				for j := range rec {
					rec[j] = byte(rng.Intn(256))
				}
				for j := p - 1; j < p-1+ln; j++ {
					rec[j] = byte('0' + rng.Intn(10))
				}
				if i%10 == 0 {
					for j := p - 1; j < p-1+ln; j++ {
						rec[j] = '9'
					}
				}
				want, ok := r.Int(rec)
				if !ok {
					t.Fatalf("%s: not digits", r.Name)
				}
				if got := nr.get(rec); got != want {
					t.Fatalf("%s %s: %q: get %d, Int %d", l.Name, r.Name, r.Bytes(rec), got, want)
				}
			}
			n++
		}
	}
	if n < 20 {
		t.Fatalf("only %d fields tried", n)
	}
}
