package arl

import (
	"bytes"
	"errors"
	"testing"
)

func TestGenerateValidAndDeterministic(t *testing.T) {
	opt := GenOptions{Seed: 5, Lots: 40, NegativeRate: 0.3}
	var a, b, c bytes.Buffer
	if err := Generate(&a, opt); err != nil {
		t.Fatal(err)
	}
	Generate(&b, opt)
	opt.Seed = 6
	Generate(&c, opt)
	if !bytes.Equal(a.Bytes(), b.Bytes()) || bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Fatal("not deterministic per seed")
	}
	f, err := DefaultRegistry().Decode(bytes.NewReader(a.Bytes()), Options{})
	if err != nil || !f.Valid || len(f.ARLs) != 40 {
		t.Fatalf("%v %+v", err, f.Errors)
	}
	neg := 0
	for _, x := range f.ARLs {
		if !x.Positive {
			neg++
			if len(x.Reasons) == 0 {
				t.Fatal("negative without reasons")
			}
		}
	}
	if neg == 0 || neg > 25 {
		t.Fatalf("%d negative", neg)
	}
	var again bytes.Buffer
	if err := WriteWith(&again, WriteOptions{LineBreaks: f.LineBreaks}, f.ARLs...); err != nil || !bytes.Equal(again.Bytes(), a.Bytes()) {
		t.Fatalf("write(read(gen)) != gen: %v", err)
	}
}

func TestGenerateFaults(t *testing.T) {
	for _, lb := range []bool{false, true} {
		for _, code := range Faults {
			var buf bytes.Buffer
			if err := Generate(&buf, GenOptions{Seed: 9, Lots: 3, NegativeRate: 0.5, Fault: code, LineBreaks: lb}); err != nil {
				t.Fatal(err)
			}
			var f *File
			var err error
			if code == ErrUnknownLayout {
				f, err = DefaultRegistry().Decode(bytes.NewReader(buf.Bytes()), Options{})
			} else {
				f, err = OCTv1{}.Decode(bytes.NewReader(buf.Bytes()), Options{})
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Valid || len(f.Errors) != 1 || !errors.Is(&f.Errors[0], code) {
				t.Errorf("breaks %v %s: %v", lb, code, f.Errors)
			}
		}
	}
	if err := Generate(&bytes.Buffer{}, GenOptions{Fault: ErrLimitBytes}); err == nil {
		t.Fatal("limit fault accepted")
	}
}
