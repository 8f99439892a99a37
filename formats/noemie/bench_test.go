package noemie

import (
	"bytes"
	"io"
	"runtime"
	"testing"
)

// BenchmarkRead parses a generated 580 file of 10 000 invoices (20 lots of
// 500, 20 % rejected) held in memory; it reports MB/s and allocations per
// entity (records of the file).
func BenchmarkRead(b *testing.B) {
	for _, c := range []struct {
		name string
		form WriteOptions
	}{{"stream", WriteOptions{}}, {"prefixed-lines", WriteOptions{LengthPrefix: true, LineBreaks: true}}} {
		b.Run(c.name, func(b *testing.B) {
			var buf bytes.Buffer
			if err := Generate(&buf, GenOptions{Seed: 1, Lots: 20, Invoices: 500, RejectRate: 0.2, Form: c.form}); err != nil {
				b.Fatal(err)
			}
			data := buf.Bytes()
			f, err := Read(bytes.NewReader(data), Options{})
			if err != nil || !f.Valid {
				b.Fatal(err, f.Errors)
			}
			records := f.Stats.Records
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			b.ResetTimer()
			for b.Loop() {
				if _, err := Read(bytes.NewReader(data), Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&m1)
			b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(b.N)/float64(records), "allocs/entity")
			b.ReportMetric(float64(records), "entities/op")
		})
	}
}

// BenchmarkWrite measures the writer on the same data.
func BenchmarkWrite(b *testing.B) {
	hdr, batches := GenBatches(GenOptions{Seed: 1, Lots: 20, Invoices: 500, RejectRate: 0.2})
	var buf bytes.Buffer
	Write(&buf, hdr, batches, WriteOptions{})
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if err := Write(io.Discard, hdr, batches, WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
