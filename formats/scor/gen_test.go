package scor

import (
	"bytes"
	"testing"
)

func TestFileID(t *testing.T) {
	a, b := FileID("lot-1"), FileID("lot-2")
	if !IsFileID(a) || !IsFileID(b) || a == b || FileID("lot-1") != a {
		t.Fatalf("%q %q", a, b)
	}
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		id := FileID(string(rune('a'+i%26)) + itoa(i))
		if !IsFileID(id) {
			t.Fatal(id)
		}
		seen[id] = true
	}
	if len(seen) < 1995 {
		t.Fatalf("%d distinct ids of 2000", len(seen))
	}
	for _, bad := range []string{"", "A12345", "S1234", "S1234a", "S12345X"} {
		if IsFileID(bad) {
			t.Fatal(bad)
		}
	}
}

func TestGenerate(t *testing.T) {
	a, err := Generate(GenOptions{Seed: 3, Pages: 2})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(GenOptions{Seed: 3, Pages: 2})
	if !bytes.Equal(a, b) {
		t.Fatal("Generate is not deterministic")
	}
	r := checkBytes(t, a, Options{})
	only(t, r)
	if r.Pages != 2 || r.PageInfo[0].DPI != 300 {
		t.Fatalf("%+v", r.PageInfo)
	}
	low, err := GenerateLowRes(3)
	if err != nil {
		t.Fatal(err)
	}
	r = checkBytes(t, low, Options{})
	only(t, r, ErrLowRes)
	only(t, checkBytes(t, GenerateJPEG(), Options{}), ErrNotPDF)
}
