package iris

import (
	"bytes"
	"compress/gzip"
	"testing"

	"github.com/octgw/oct/formats/b2"
)

// BenchmarkGzip compares, in one run, the level the sender uses (Gzip:
// level 1, pooled writers) with the default level and a new writer per
// message (what it did before), on a 50-invoice lot file; ratio is the
// compressed size over the file's.
//
//	go test -run '^$' -bench Gzip ./gateway/deliver/iris/
func BenchmarkGzip(b *testing.B) {
	var lot bytes.Buffer
	if err := b2.Generate(&lot, b2.GenOptions{Seed: 1, Lots: 1, Invoices: 50}); err != nil {
		b.Fatal(err)
	}
	data := lot.Bytes()
	b.Run("sender=level1+pool", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var out []byte
		for i := 0; i < b.N; i++ {
			out = Gzip(data)
		}
		b.ReportMetric(float64(len(out))/float64(len(data)), "ratio")
	})
	b.Run("before=default+new", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var out bytes.Buffer
		for i := 0; i < b.N; i++ {
			out.Reset()
			zw := gzip.NewWriter(&out)
			_, _ = zw.Write(data)
			_ = zw.Close()
		}
		b.ReportMetric(float64(out.Len())/float64(len(data)), "ratio")
	})
}
