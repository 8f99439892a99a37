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
		if got := dateOK((*[6]byte)(b)); got != ok {
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

// mayHaveControl is true for every byte value below 0x20 at every column,
// and false for records of B2 characters.
func TestMayHaveControl(t *testing.T) {
	for _, fill := range []byte{' ', '0', '9', 'A', 'Z', 0xA0, 0xFF} {
		rec := make([]byte, RecordLength)
		for i := range rec {
			rec[i] = fill
		}
		if mayHaveControl(rec) {
			t.Fatalf("fill %#x: control found", fill)
		}
		for pos := 0; pos < RecordLength; pos++ {
			for b := 0; b < 256; b++ {
				rec[pos] = byte(b)
				got := mayHaveControl(rec)
				if b < 0x20 && !got || fixed.UpperAlnum[b] && got {
					t.Fatalf("fill %#x, byte %#x at %d: %v", fill, b, pos, got)
				}
			}
			rec[pos] = fill
		}
	}
}

// digits9, same9 and same25 agree with their byte-by-byte definitions.
func TestWordHelpers(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	a, b := make([]byte, 25), make([]byte, 25)
	for i := range a {
		a[i] = '5'
	}
	for pos := 0; pos < 9; pos++ {
		for v := 0; v < 256; v++ {
			a[pos] = byte(v)
			if got, want := digits9(a[:9]), fixed.AllDigits(a[:9]); got != want {
				t.Fatalf("digits9 %q: %v", a[:9], got)
			}
		}
		a[pos] = '5'
	}
	for i := 0; i < 100000; i++ {
		for j := range a {
			a[j] = byte('0' + rng.Intn(3))
			b[j] = a[j]
		}
		if i%2 == 0 {
			b[rng.Intn(25)] = byte('0' + rng.Intn(3))
		}
		if same9(a, b) != (string(a[:9]) == string(b[:9])) || same25(a, b) != (string(a) == string(b)) {
			t.Fatalf("%q %q", a, b)
		}
	}
}

// scan agrees with the byte-by-byte definition on records with several bad
// bytes, high bytes next to each other included (carries between bytes).
func TestScanRandomBytes(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	pick := []byte{' ', '0', '5', '9', 'A', 'Z', ':', '@', '!', '/', '[', 'a', '\r', '\n', 0, 0x7F, 0x80, 0xA0, 0xB9, 0xC3, 0xDA, 0xFF}
	rec := make([]byte, RecordLength)
	for _, l := range allLayouts {
		c := compile(l)
		var digit [RecordLength]bool
		for _, sp := range c.spans {
			for i := sp[0]; i < sp[1]; i++ {
				digit[i] = true
			}
		}
		for n := 0; n < 20000; n++ {
			for i := range rec {
				if digit[i] {
					rec[i] = byte('0' + rng.Intn(10))
				} else {
					rec[i] = " AZ09"[rng.Intn(5)]
				}
			}
			for k := rng.Intn(4); k > 0; k-- {
				p := rng.Intn(RecordLength)
				for j := rng.Intn(3); j >= 0 && p+j < RecordLength; j-- {
					rec[p+j] = pick[rng.Intn(len(pick))]
				}
			}
			want := true
			for i, b := range rec {
				want = want && fixed.UpperAlnum[b] && (!digit[i] || b >= '0' && b <= '9')
			}
			if got := c.scan(rec); got != want {
				t.Fatalf("%s: %q: scan %v, want %v", l.Name, rec, got, want)
			}
		}
	}
}
