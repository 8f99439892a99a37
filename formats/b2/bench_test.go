package b2

import (
	"bytes"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"testing"
	"time"

	"github.com/octgw/oct/formats/fixed"
)

// benchFile is a generated file of about 8 MB (CRLF framing).
func benchFile(b *testing.B, fr Framing) []byte {
	b.Helper()
	var buf bytes.Buffer
	if err := Generate(&buf, GenOptions{Seed: 42, Lots: 200, Invoices: 50, Framing: fr}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// baseline is the minimal loop the validator is compared with: read the
// stream in 64 KiB blocks and check every byte against the charset.
func baseline(r io.Reader, buf []byte) (bad int) {
	cs := fixed.UpperAlnum
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			if !cs[c] && c != '\n' && c != '\r' {
				bad++
			}
		}
		if err != nil {
			return bad
		}
	}
}

func BenchmarkBaselineCharset(b *testing.B) {
	data := benchFile(b, FramingCRLF)
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if baseline(bytes.NewReader(data), buf) != 0 {
			b.Fatal("bad bytes")
		}
	}
}

// BenchmarkValidate measures validation throughput (MB/s via SetBytes),
// invoices/s and allocations per record. After every validation it runs the
// baseline on the same data (timer stopped) and reports the ratio of the
// fastest validation to the fastest baseline run (x-baseline) and the
// fastest validation's throughput (best-MB/s): minima are robust on a
// machine shared with other work.
//
// The "_32KiB_reads" variants read through a reader that returns at most
// 32 KiB per Read, as the SFTP intake's io.Pipe does (chunks of 32-256 KiB).
func BenchmarkValidate(b *testing.B) {
	cases := []struct {
		fr    Framing
		chunk int // 0: the whole bytes.Reader
	}{{FramingNone, 0}, {FramingCRLF, 0}, {FramingNone, 32 << 10}, {FramingCRLF, 32 << 10}}
	for _, tc := range cases {
		fr := tc.fr
		name := fr.String()
		if tc.chunk > 0 {
			name += "_" + strconv.Itoa(tc.chunk>>10) + "KiB_reads"
		}
		b.Run(name, func(b *testing.B) {
			data := benchFile(b, fr)
			v := NewValidator(Options{})
			src := func() io.Reader {
				if tc.chunk > 0 {
					return &chunkReader{r: bytes.NewReader(data), max: tc.chunk}
				}
				return bytes.NewReader(data)
			}
			rep, err := v.Validate(src())
			if err != nil || !rep.Valid {
				b.Fatalf("%v %v", err, rep.Errors)
			}
			records, invoices := rep.Stats.Records, rep.Stats.Invoices
			buf := make([]byte, 64<<10)
			minV, minB := time.Duration(1<<62), time.Duration(1<<62)
			var ms0, ms1 runtime.MemStats
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			runtime.ReadMemStats(&ms0)
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				if _, err := v.Validate(src()); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				b.StopTimer()
				baseline(bytes.NewReader(data), buf)
				t2 := time.Now()
				b.StartTimer()
				minV, minB = min(minV, t1.Sub(t0)), min(minB, t2.Sub(t1))
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			n := float64(b.N)
			// The baseline allocates one bytes.Reader per run: not ours
			// (nor the chunkReader of the chunked variants).
			mallocs := float64(ms1.Mallocs-ms0.Mallocs) - n
			if tc.chunk > 0 {
				mallocs -= n
			}
			b.ReportMetric(mallocs/n/float64(records), "allocs/record")
			b.ReportMetric(float64(invoices)/minV.Seconds(), "invoices/s")
			b.ReportMetric(float64(len(data))/1e6/minV.Seconds(), "best-MB/s")
			b.ReportMetric(float64(minV)/float64(minB), "x-baseline")
		})
	}
}

// chunkReader returns at most max bytes per Read, like a pipe fed in
// chunks.
type chunkReader struct {
	r   io.Reader
	max int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.max {
		p = p[:c.max]
	}
	return c.r.Read(p)
}

// BenchmarkGenerate50 generates a file of 50 invoices (used in tight loops
// by the gateway's benchmarks).
func BenchmarkGenerate50(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := Generate(io.Discard, GenOptions{Seed: int64(i), Invoices: 50}); err != nil {
			b.Fatal(err)
		}
	}
}

// genStream generates an endless stream of lots into a pipe until size
// bytes, then a 999; the file is never materialised.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// TestValidateHugeStream streams a generated file of OCT_B2_HUGE_MB
// megabytes (default 1024 when the variable is "1", skipped when unset or
// with -short) through Validate and checks the peak heap and RSS.
func TestValidateHugeStream(t *testing.T) {
	env := os.Getenv("OCT_B2_HUGE_MB")
	if env == "" || testing.Short() {
		t.Skip("set OCT_B2_HUGE_MB=1024 to run (streams a generated 1 GB file)")
	}
	mb, err := strconv.Atoi(env)
	if err != nil || mb <= 1 {
		mb = 1024
	}
	// The 999 counts lots on 3 digits: 999 lots of as many invoices as
	// needed to reach the size.
	var probe countingWriter
	if err := Generate(&probe, GenOptions{Seed: 1, Lots: 10, Invoices: 100}); err != nil {
		t.Fatal(err)
	}
	perInvoice := probe.n / 1000
	invoices := int(int64(mb)<<20/999/perInvoice) + 1
	if invoices > 999 {
		t.Fatalf("%d MB needs more than 999 invoices per lot", mb)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(Generate(pw, GenOptions{Seed: 1, Lots: 999, Invoices: invoices, Framing: FramingCRLF}))
	}()
	var peakHeap uint64
	done := make(chan struct{})
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				metrics.Read(s)
				if v := s[0].Value.Uint64(); v > peakHeap {
					peakHeap = v
				}
			}
		}
	}()
	t0 := time.Now()
	rep, err := Validate(pr, Options{Limits: Limits{MaxBytes: -1, MaxRecords: -1}})
	el := time.Since(t0)
	close(done)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Valid {
		t.Fatalf("errors: %v", rep.Errors[:min(5, len(rep.Errors))])
	}
	rss := peakRSS()
	t.Logf("%d MB, %d records, %d lots, %d invoices in %v (%.0f MB/s incl. generation); peak heap objects %.1f MB, peak RSS %.1f MB",
		rep.Stats.Bytes>>20, rep.Stats.Records, rep.Stats.Lots, rep.Stats.Invoices, el,
		float64(rep.Stats.Bytes)/1e6/el.Seconds(), float64(peakHeap)/1e6, float64(rss)/1e6)
	if peakHeap > 64<<20 || (rss > 0 && rss > 64<<20) {
		t.Fatalf("memory not flat: heap %d, RSS %d", peakHeap, rss)
	}
}

// peakRSS reads VmHWM from /proc (Linux); 0 elsewhere.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("VmHWM:")) {
			f := bytes.Fields(line[6:])
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(string(f[0]), 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// Steady state allocates nothing per record: validating 100 times more
// records costs the same allocations (the per-file Report only).
func TestNoAllocationPerRecord(t *testing.T) {
	small := genFile(t, GenOptions{Seed: 1, Lots: 1, Invoices: 10})
	large := genFile(t, GenOptions{Seed: 1, Lots: 100, Invoices: 10})
	v := NewValidator(Options{})
	count := func(data []byte) float64 {
		return testing.AllocsPerRun(5, func() {
			if rep, _ := v.Validate(bytes.NewReader(data)); !rep.Valid {
				t.Fatal(rep.Errors)
			}
		})
	}
	s, l := count(small), count(large)
	if l > s+1 {
		t.Fatalf("%v allocations for %d bytes, %v for %d bytes", l, len(large), s, len(small))
	}
}
