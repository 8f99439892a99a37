package arl

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func FuzzDecode(f *testing.F) {
	for _, lb := range []bool{false, true} {
		var buf bytes.Buffer
		WriteWith(&buf, WriteOptions{LineBreaks: lb}, sampleARLs()...)
		f.Add(buf.Bytes())
	}
	files, _ := filepath.Glob("testdata/golden/*.arl")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	opt := Options{MaxBytes: 1 << 20, MaxRecords: 10000, MaxErrors: 50}
	reg := DefaultRegistry()
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := reg.Decode(bytes.NewReader(data), opt)
		if err != nil {
			t.Fatalf("I/O error from a bytes.Reader: %v", err)
		}
		if len(x.Errors) > opt.MaxErrors+1 || x.Records > opt.MaxRecords+1 {
			t.Fatalf("%d errors, %d records", len(x.Errors), x.Records)
		}
		if !x.Valid || len(x.ARLs) == 0 {
			return // Write needs at least one lot to acknowledge
		}
		var y bytes.Buffer
		if err := WriteWith(&y, WriteOptions{LineBreaks: x.LineBreaks}, x.ARLs...); err != nil {
			t.Fatalf("valid file does not rewrite: %v", err)
		}
		ry, err := reg.Decode(bytes.NewReader(y.Bytes()), opt)
		if err != nil || !ry.Valid {
			t.Fatalf("rewrite not valid: %v %v", err, ry.Errors)
		}
		if !reflect.DeepEqual(ry.ARLs, x.ARLs) && !sameButRecords(ry.ARLs, x.ARLs) {
			t.Fatalf("typed data changed:\n%+v\n%+v", x.ARLs, ry.ARLs)
		}
		var z bytes.Buffer
		if err := WriteWith(&z, WriteOptions{LineBreaks: ry.LineBreaks}, ry.ARLs...); err != nil || !bytes.Equal(z.Bytes(), y.Bytes()) {
			t.Fatalf("write(read(y)) != y: %v", err)
		}
	})
}

// sameButRecords compares ARLs without their record numbers.
func sameButRecords(a, b []ARL) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.Record, y.Record = 0, 0
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}
