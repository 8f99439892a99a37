package nir

import (
	"errors"
	"strings"
	"testing"
)

func TestKey(t *testing.T) {
	cases := []struct {
		nir  string
		key  int
		fail bool
	}{
		{"1841275123456", 97 - 1841275123456%97, false},
		{"2690299341732", 97 - 2690299341732%97, false},
		{"184122A123456", 97 - (1841220123456-1000000)%97, false}, // Corsica 2A
		{"184122B123456", 97 - (1841220123456-2000000)%97, false}, // Corsica 2B
		{"18412751234X6", 0, true},
		{"184127512345", 0, true},
		{"184A275123456", 0, true}, // letter outside the department
		{"184122C123456", 0, true},
	}
	for _, c := range cases {
		k, err := Key(c.nir)
		if c.fail {
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("%s: %d %v", c.nir, k, err)
			}
			continue
		}
		if err != nil || k != c.key {
			t.Errorf("%s: %d %v, want %d", c.nir, k, err, c.key)
		}
	}
	// 2A is read as 19, 2B as 18 (the usual formulation).
	a, _ := Key("184122A123456")
	b, _ := Key("1841219123456")
	if a != b {
		t.Errorf("2A %d != 19 %d", a, b)
	}
	a, _ = Key("184122B123456")
	b, _ = Key("1841218123456")
	if a != b {
		t.Errorf("2B %d != 18 %d", a, b)
	}
}

func TestCheckMaskHash(t *testing.T) {
	k, _ := Key("1841275123456")
	good := "1841275123456" + string(rune('0'+k/10)) + string(rune('0'+k%10))
	if err := Check(good); err != nil {
		t.Fatal(err)
	}
	if err := Check("1 84 12 75 123 456 " + good[13:]); err != nil {
		t.Fatal("spaced:", err)
	}
	bad := good[:13] + "00"
	if !errors.Is(Check(bad), ErrKey) || Valid(bad) {
		t.Fatal("bad key accepted")
	}
	if !errors.Is(Check("12"), ErrSyntax) {
		t.Fatal("short")
	}
	if m := Mask(good); m != "1 84 12 ** *** *** **" {
		t.Fatal(m)
	}
	if m := Mask("garbage"); strings.ContainsAny(m, "gab") {
		t.Fatal(m)
	}
	if _, err := NewHasher([]byte("short")); !errors.Is(err, ErrShortKey) {
		t.Fatal("short key")
	}
	key := []byte("0123456789abcdef0123")
	h, _ := NewHasher(key)
	s1, s2 := h.Sum(good), h.Sum(good[:13])
	if s1 != s2 || len(s1) != 64 || strings.Contains(s1, good[:13]) {
		t.Fatalf("hash %s %s", s1, s2)
	}
	h2, _ := NewHasher([]byte("another key of 16+ bytes"))
	if h2.Sum(good) == s1 {
		t.Fatal("hash does not depend on the key")
	}
	if s3, _ := Hash(key, "1 84 12 75 123 456"); s3 != s1 {
		t.Fatal("normalisation")
	}
}

func TestCheckBytesNoAlloc(t *testing.T) {
	nir, key := []byte("1841275123456"), []byte("00")
	if n := testing.AllocsPerRun(100, func() { _ = CheckBytes(nir, key) }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}
