package noemie

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// comparable strips what depends on the physical layout rather than on the
// data (record numbers, grouping of 020/040 runs).
func comparable(f *File) ([]Invoice, []Payment) {
	inv := append([]Invoice(nil), f.Invoices...)
	for i := range inv {
		inv[i].Record = 0
	}
	pay := append([]Payment(nil), f.Payments...)
	for i := range pay {
		pay[i].Record = 0
	}
	return inv, pay
}

func FuzzRead(f *testing.F) {
	for _, form := range []WriteOptions{{}, {LineBreaks: true, LengthPrefix: true}} {
		var buf bytes.Buffer
		Write(&buf, sampleHeader, sampleBatches(), form)
		f.Add(buf.Bytes())
	}
	files, _ := filepath.Glob("testdata/golden/*.noe")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	opt := Options{MaxBytes: 1 << 20, MaxEntities: 50000, MaxErrors: 50}
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := Read(bytes.NewReader(data), opt)
		if err != nil {
			t.Fatalf("I/O error from a bytes.Reader: %v", err)
		}
		if len(x.Errors) > opt.MaxErrors+1 {
			t.Fatalf("%d errors kept, cap %d", len(x.Errors), opt.MaxErrors)
		}
		if x.Stats.Records > opt.MaxEntities+1 || int64(len(x.Invoices)) > x.Stats.Records {
			t.Fatalf("stats %+v, %d invoices", x.Stats, len(x.Invoices))
		}
		if !x.Valid {
			return
		}
		// A valid file rewrites to a valid file with the same typed data,
		// and the rewrite is a fixed point: write(read(y)) == y.
		var y bytes.Buffer
		if err := Write(&y, x.Header, x.Batches(), x.Form); err != nil {
			t.Fatalf("valid file does not rewrite: %v", err)
		}
		ry, err := Read(bytes.NewReader(y.Bytes()), opt)
		if err != nil || !ry.Valid {
			t.Fatalf("rewrite not valid: %v %v\n%q", err, ry.Errors, y.Bytes())
		}
		if ry.Header != x.Header {
			t.Fatalf("header %+v != %+v", ry.Header, x.Header)
		}
		xi, xp := comparable(x)
		yi, yp := comparable(ry)
		if !reflect.DeepEqual(xi, yi) || !reflect.DeepEqual(xp, yp) {
			t.Fatalf("typed data changed:\n%+v\n%+v", xi, yi)
		}
		var z bytes.Buffer
		if err := Write(&z, ry.Header, ry.Batches(), ry.Form); err != nil || !bytes.Equal(z.Bytes(), y.Bytes()) {
			t.Fatalf("write(read(y)) != y: %v", err)
		}
	})
}
