package nir

import (
	"strings"
	"testing"
)

// FuzzNIR: no panic; Check agrees with Key; Mask never shows more than the
// sex, year and month; Sum is stable under spacing.
func FuzzNIR(f *testing.F) {
	for _, s := range []string{"184127512345678", "1 84 12 75 123 456 78", "184122A123456", "184122B12345699", "", "2A", "xxxxxxxxxxxxxxx"} {
		f.Add(s)
	}
	h, _ := NewHasher([]byte("fuzz key fuzz key fuzz"))
	f.Fuzz(func(t *testing.T, s string) {
		err := Check(s)
		if err == nil {
			b, _ := compact(s)
			k, kerr := Key(string(b[:Len]))
			if kerr != nil || k < 1 || k > 97 || string(b[Len:]) != string([]byte{byte('0' + k/10), byte('0' + k%10)}) {
				t.Fatalf("Check accepted %q, key %d %v", s, k, kerr)
			}
			if h.Sum(s) != h.Sum(strings.ReplaceAll(s, " ", "")) {
				t.Fatal("hash depends on blanks")
			}
		}
		m := Mask(s)
		digits := 0
		for _, c := range m {
			if c >= '0' && c <= '9' {
				digits++
			}
		}
		if digits > 5 || len(m) != len("1 84 12 ** *** *** **") {
			t.Fatalf("mask %q of %q", m, s)
		}
		if len(h.Sum(s)) != 64 {
			t.Fatal("hash length")
		}
	})
}
