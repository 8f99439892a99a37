package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/octgw/oct/gateway/store"
)

// BenchmarkCreateFile measures intake throughput: parallel CreateFile calls
// (each with its creation event and a validate job), with and without group
// commit. Run on a real disk, e.g.:
//
//	go test -run '^$' -bench BenchmarkCreateFile -cpu 1,2 -benchtime 3s ./gateway/store/sqlite
func BenchmarkCreateFile(b *testing.B) {
	for _, mode := range []struct {
		name    string
		noGroup bool
	}{{"group", false}, {"nogroup", true}} {
		b.Run(mode.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, Options{
				Path: filepath.Join(b.TempDir(), "oct.db"), NoGroupCommit: mode.noGroup,
				Logger: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var n atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := fmt.Sprintf("F%09d", n.Add(1))
					f := testFile(id)
					if _, _, err := s.CreateFile(ctx, f, &store.Change{
						Enqueue: []store.Job{{Kind: "validate", Subject: "file:" + id}},
					}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "files/s")
			if st := s.Stats(); st.Batches > 0 {
				b.ReportMetric(float64(st.Requests)/float64(st.Batches), "files/commit")
			}
		})
	}
}
