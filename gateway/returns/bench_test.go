package returns

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/sim"
	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/gateway/store/blobdir"
	"github.com/octgw/oct/gateway/store/sqlite"
)

// benchLots creates n sent lots (created → routed → signed → sent, one
// Commit per step for a batch of lots) and returns, for each, the ARL
// message a caisse would send (sim.Return.Message, as the simulator does).
func benchLots(b *testing.B, ctx context.Context, st *sqlite.Store, n int, now time.Time) [][]byte {
	b.Helper()
	const batch = 250
	msgs := make([][]byte, 0, n)
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		c := &store.Change{Actor: "bench"}
		var ids []string
		for i := start; i < end; i++ {
			id := fmt.Sprintf("L%07d", i)
			emitter := fmt.Sprintf("75%07d", i/900)
			fileID := "F-" + id
			c.Files = append(c.Files, store.File{ID: fileID, Tenant: tenantA, Channel: "sftp", SHA256: "sum-" + id, Format: "b2",
				State: lifecycle.FileReceived, ReceivedAt: now})
			c.Lots = append(c.Lots, store.Lot{ID: id, File: fileID, Tenant: tenantA, Emitter: emitter, Number: i%900 + 1,
				Date: lotDay.String(), Destination: "01422@422.01.rss.fr", State: lifecycle.LotCreated, Invoices: 1, UpdatedAt: now})
			c.Expectations = append(c.Expectations,
				store.Expectation{ID: id + "-arl", Lot: id, Kind: "arl", DueAt: now.Add(48 * time.Hour)},
				store.Expectation{ID: id + "-rsp", Lot: id, Kind: "rsp", DueAt: now.Add(30 * 24 * time.Hour)})
			c.Invoices = append(c.Invoices, store.Invoice{ID: id + "-0", Lot: id, Tenant: tenantA, Number: "000000101",
				NIRHash: "h", Billed: 1000, AMO: 700, AMCPart: 300, State: lifecycle.InvoicePending})
			ids = append(ids, id)
		}
		if err := st.Commit(ctx, c); err != nil {
			b.Fatal(err)
		}
		steps := []lifecycle.State{lifecycle.LotCreated, lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotSent}
		for s := 1; s < len(steps); s++ {
			c := &store.Change{Actor: "bench"}
			for _, id := range ids {
				c.Transitions = append(c.Transitions, store.Transition{Kind: lifecycle.Lot, ID: id, From: steps[s-1], To: steps[s], Actor: "bench"})
			}
			if err := st.Commit(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
		for i := start; i < end; i++ {
			hdr := envelope.Info{SenderType: "CT", Sender: "00000001422422", ReceiverType: "OT", Receiver: "00000123456789",
				Application: "TR", FileID: fmt.Sprintf("A%05d", i%100000), Created: fixed.DayOf(now)}
			a := arl.ARL{Header: hdr, Emitter: fmt.Sprintf("0000075%07d", i/900), FileID: "F00001", LotNumber: i%900 + 1,
				LotDate: lotDay, Positive: true, Received: fixed.DayOf(now)}
			var buf bytes.Buffer
			if err := arl.Write(&buf, a); err != nil {
				b.Fatal(err)
			}
			raw, err := sim.Return{Kind: sim.KindARL, From: "01422@422.01.rss.fr", To: "oct@oct.test", Subject: "IR/ARL",
				Body: buf.Bytes()}.Message(now, fmt.Sprintf("arl-%d@caisse.test", i))
			if err != nil {
				b.Fatal(err)
			}
			msgs = append(msgs, raw)
		}
	}
	return msgs
}

// benchProcessor opens a SQLite store and a blob directory under a temp
// dir and returns a Processor relaying to a counter.
func benchProcessor(b *testing.B, ctx context.Context, now time.Time, bo ...blobdir.Options) (*sqlite.Store, *Processor, *atomic.Int64) {
	b.Helper()
	dir := b.TempDir()
	clock := func() time.Time { return now }
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(dir, "oct.db"), Now: clock, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	var o blobdir.Options
	if len(bo) > 0 {
		o = bo[0]
	}
	blobs, err := blobdir.OpenWith(filepath.Join(dir, "blobs"), o)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Commit(ctx, &store.Change{Tenants: []store.Tenant{{ID: tenantA, Name: tenantA, Created: now}}}); err != nil {
		b.Fatal(err)
	}
	relayed := &atomic.Int64{}
	proc, err := NewProcessor(Options{Journal: st, Blobs: blobs, Now: clock, Logger: quietLogger(),
		Relay: RelayFunc(func(context.Context, string, string, []byte) error { relayed.Add(1); return nil })})
	if err != nil {
		b.Fatal(err)
	}
	return st, proc, relayed
}

// BenchmarkProcessReturns: positive ARL messages decoded, correlated with
// their lot in a SQLite store (on disk unless TMPDIR says otherwise, WAL,
// synchronous=FULL), kept in a blobdir, committed and relayed to a
// counter, one lot per message; reports returns/s. Side by side:
//
//   - one-by-one: Process per message, in order (the poller before
//     batches): two blob syncs and one commit per message;
//   - 4-goroutines: Process from 4 goroutines (unordered: what concurrency
//     alone gives through blobdir's grouped sync and the store's group
//     commit);
//   - batch=N: ProcessBatch of N messages in order (the poller now): the
//     blobs of a batch share their syncs, one commit per batch.
func BenchmarkProcessReturns(b *testing.B) {
	b.Run("one-by-one", func(b *testing.B) {
		benchReturns(b, func(ctx context.Context, proc *Processor, msgs [][]byte) {
			for i, m := range msgs {
				out, err := proc.Process(ctx, m)
				checkBenchOutcome(b, i, out, err)
			}
		})
	})
	b.Run("4-goroutines", func(b *testing.B) {
		benchReturns(b, func(ctx context.Context, proc *Processor, msgs [][]byte) {
			var next atomic.Int64
			var wg sync.WaitGroup
			for g := 0; g < 4; g++ {
				wg.Go(func() {
					for {
						i := int(next.Add(1) - 1)
						if i >= len(msgs) || b.Failed() {
							return
						}
						out, err := proc.Process(ctx, msgs[i])
						checkBenchOutcome(b, i, out, err)
					}
				})
			}
			wg.Wait()
		})
	})
	batches := func(size int) func(ctx context.Context, proc *Processor, msgs [][]byte) {
		return func(ctx context.Context, proc *Processor, msgs [][]byte) {
			for start := 0; start < len(msgs); start += size {
				chunk := msgs[start:min(start+size, len(msgs))]
				outs, n, err := proc.ProcessBatch(ctx, chunk)
				if err != nil || n != len(chunk) {
					b.Fatalf("batch at %d: %d of %d done: %v", start, n, len(chunk), err)
				}
				for i, out := range outs {
					checkBenchOutcome(b, start+i, out, nil)
				}
			}
		}
	}
	for _, size := range []int{10, 50} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) { benchReturns(b, batches(size)) })
	}
	// packs: the same batches with small blobs appended to a pack file
	// (blobdir Options.PackSmall, store.blob_packs) instead of one file
	// each.
	b.Run("packs-batch=50", func(b *testing.B) {
		benchReturns(b, batches(50), blobdir.Options{PackSmall: 64 << 10})
	})
	// alternate: chunks of 50 messages handled alternately one by one and as
	// one batch, in the same store and blob directory, timed apart: both
	// ways see the same machine load (the other figures come from separate
	// runs minutes apart on a shared machine). Reports both rates and their
	// ratio.
	b.Run("alternate-one-by-one-vs-batch=50", func(b *testing.B) {
		var one, batch time.Duration
		var nOne, nBatch int
		benchReturns(b, func(ctx context.Context, proc *Processor, msgs [][]byte) {
			for k, start := 0, 0; start < len(msgs); k, start = k+1, start+50 {
				chunk := msgs[start:min(start+50, len(msgs))]
				t0 := time.Now()
				if k%2 == 0 {
					for i, m := range chunk {
						out, err := proc.Process(ctx, m)
						checkBenchOutcome(b, start+i, out, err)
					}
					one += time.Since(t0)
					nOne += len(chunk)
					continue
				}
				outs, n, err := proc.ProcessBatch(ctx, chunk)
				if err != nil || n != len(chunk) {
					b.Fatalf("batch at %d: %d of %d done: %v", start, n, len(chunk), err)
				}
				for i, out := range outs {
					checkBenchOutcome(b, start+i, out, nil)
				}
				batch += time.Since(t0)
				nBatch += len(chunk)
			}
		})
		if nOne > 0 && nBatch > 0 {
			r1, r2 := float64(nOne)/one.Seconds(), float64(nBatch)/batch.Seconds()
			b.ReportMetric(r1, "one-by-one-returns/s")
			b.ReportMetric(r2, "batch-returns/s")
			b.ReportMetric(r2/r1, "speedup")
		}
	})
	// Diagnostics. blobs-only: just the two Puts per message (raw message
	// and ARL file) ProcessBatch does for a batch of 50, concurrently into
	// the same blobdir: the ceiling the blob directory sets. memblobs: the
	// batch of 50 with the blobs in memory, SQLite still on disk: what
	// decoding, matching and committing cost without the blob files.
	b.Run("blobs-only-batch=50", func(b *testing.B) {
		benchReturns(b, func(ctx context.Context, proc *Processor, msgs [][]byte) {
			b.StopTimer()
			items := make([]item, len(msgs))
			for i, m := range msgs {
				h := sha256.Sum256(m)
				items[i] = item{raw: m, sum: hex.EncodeToString(h[:]), plan: &plan{}}
				items[i].parts, _ = Decode(m, proc.o.Decode)
				for _, pt := range items[i].parts {
					ps := sha256.Sum256(pt.Data)
					items[i].partSums = append(items[i].partSums, hex.EncodeToString(ps[:]))
				}
			}
			b.StartTimer()
			for start := 0; start < len(items); start += 50 {
				if _, err := proc.keepAll(ctx, items[start:min(start+50, len(items))]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			for range msgs { // nothing relayed here: keep benchReturns' check
				_ = proc.o.Relay.Relay(ctx, tenantA, "x", nil)
			}
		})
	})
	b.Run("memblobs-batch=50", func(b *testing.B) {
		benchReturns(b, func(ctx context.Context, proc *Processor, msgs [][]byte) {
			proc.o.Blobs = &memBlobs{m: map[string][]byte{}}
			batches(50)(ctx, proc, msgs)
		})
	})
}

// memBlobs keeps blobs in memory (benchmark diagnostics only).
type memBlobs struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (m *memBlobs) Put(_ context.Context, r io.Reader, _ int64) (string, int64, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return "", 0, err
	}
	h := sha256.Sum256(b)
	sum := hex.EncodeToString(h[:])
	m.mu.Lock()
	m.m[sum] = b
	m.mu.Unlock()
	return sum, int64(len(b)), nil
}

func (m *memBlobs) Open(_ context.Context, sum string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.m[sum]
	if !ok {
		return nil, store.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// benchReturns prepares b.N lots and their ARL messages, then times run
// over all the messages.
func benchReturns(b *testing.B, run func(ctx context.Context, proc *Processor, msgs [][]byte), bo ...blobdir.Options) {
	ctx := context.Background()
	now := time.Date(2026, 1, 9, 10, 0, 0, 0, time.UTC)
	st, proc, relayed := benchProcessor(b, ctx, now, bo...)
	msgs := benchLots(b, ctx, st, b.N, now)
	b.ResetTimer()
	run(ctx, proc, msgs)
	b.StopTimer()
	if !b.Failed() && relayed.Load() != int64(b.N) {
		b.Fatalf("relayed %d of %d", relayed.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "returns/s")
}

// checkBenchOutcome: every message applies one return to its lot.
func checkBenchOutcome(b *testing.B, i int, out Outcome, err error) {
	if err != nil || len(out.Returns) != 1 || out.Returns[0].Orphan || len(out.Anomalies) != 0 || out.Duplicate {
		b.Errorf("message %d: %+v %v", i, out, err)
	}
}
