package referentials

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkImportAMC50k imports a 50,000-row AMC regroupement table (the
// SESAM positional format of formats.md §5.5) with its conventions into a
// fresh repository: parse, validate every line, build the snapshot and its
// indexes, diff against the previous (empty) version, store durably.
//
//	go test -run '^$' -bench ImportAMC50k -benchtime 5x ./referentials/
func BenchmarkImportAMC50k(b *testing.B) {
	const rows = 50_000
	var amc bytes.Buffer
	for i := 0; i < rows; i++ {
		op := []string{"SANTEPHARM", "DEMOPLAT"}[i%2]
		grp := []string{"SP", "DP"}[i%2]
		fmt.Fprintf(&amc, "C;0;;%08d;MUTUELLE %d;%s;;;%s;Operateur %s\n", 10_000_000+i, i, grp, op, op)
	}
	conv := DemoFeed().Files[2] // the demo conventions: the operators the rows point to
	feed := func() Feed {
		return Feed{Source: "bench", Files: []FeedFile{
			{Name: "amc-regroupement.csv", Table: TableAMC, Format: FormatSESAM, Data: amc.Bytes()},
			conv,
		}}
	}
	b.SetBytes(int64(amc.Len()))
	b.ResetTimer()
	var last time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st, err := NewDirStore(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		r, err := Open(context.Background(), Config{Store: st, Now: time.Now})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		res, err := r.Import(context.Background(), feed(), ImportOptions{})
		last = time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if n := res.Version.Counts[TableAMC]; n != rows {
			b.Fatalf("%d AMC entries imported, want %d", n, rows)
		}
	}
	b.ReportMetric(last.Seconds(), "s/import")
	b.ReportMetric(rows/last.Seconds(), "rows/s")
}
