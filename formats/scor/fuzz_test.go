package scor

import (
	"bytes"
	"testing"
)

// FuzzCheck: no panic, bounded findings, a consistent report. Under
// `go test -fuzz` the engine's exec counter may sit at "0/sec" while it
// minimises an input (golang/go#51484); the target keeps running.
func FuzzCheck(f *testing.F) {
	small := scanPDF(f, 72, 72, 20, [2]int{20, 20})
	f.Add(small)
	f.Add(small[:len(small)/2])
	f.Add(withXMP(f, small, xmpPDFA2B))
	f.Add(jpegBytes(f))
	f.Add([]byte(minimalPDF("q 10 0 0 10 0 0 cm /Im0 Do Q BI /W 2 /H 2 ID \x00\x00 EI")))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Check(bytes.NewReader(b), int64(len(b)), Options{MaxErrors: 20, MaxPages: 5})
		if err != nil {
			t.Fatal(err) // bytes.Reader never fails
		}
		if len(r.Errors) > 20 || len(r.PageInfo) > 5 {
			t.Fatalf("%d errors, %d pages", len(r.Errors), len(r.PageInfo))
		}
		if r.Valid != (len(r.Errors) == 0) {
			t.Fatal("Valid inconsistent")
		}
	})
}
