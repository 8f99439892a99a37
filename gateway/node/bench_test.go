package node_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/config"
	"github.com/octgw/oct/gateway/node"
)

// BenchmarkIntakeHTTP measures durable intake over real loopback HTTP:
// files of 50 invoices, 16 or 64 concurrent vendors, the acknowledgement awaited
// (bytes and row fsync'd). Run with and without group commit side by side:
//
//	go test -run '^$' -bench IntakeHTTP -benchtime 3000x ./gateway/node/
func BenchmarkIntakeHTTP(b *testing.B) {
	for _, clients := range []int{16, 64} {
		for _, group := range []bool{true, false} {
			b.Run(fmt.Sprintf("clients=%d/group_commit=%v", clients, group), func(b *testing.B) { benchIntake(b, group, clients) })
		}
	}
}

func benchIntake(b *testing.B, group bool, clients int) {
	cfg := config.Defaults()
	cfg.DataDir = b.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.SFTP.Listen = ""
	cfg.Store.SQLite.GroupCommit = &group
	cfg.Limits.RequestsPerSecond, cfg.Limits.Burst = 1e6, 1e6
	cfg.Workers.Concurrency = 1 // intake is what is measured; the pipeline trails behind
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := node.Open(ctx, cfg, node.Options{Exclusive: true})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	_, token, err := gateway.AddTenant(ctx, n.Store, "bench", "bench", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	ln, err := n.Listen()
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, ln) }()
	defer func() { cancel(); <-done }()

	// One template of 50 invoices; each request gets a unique file id in
	// the 000 and 999 records, so no request is an idempotent replay.
	var tpl bytes.Buffer
	if err := b2.Generate(&tpl, b2.GenOptions{Seed: 7, Lots: 1, Invoices: 50}); err != nil {
		b.Fatal(err)
	}
	base := tpl.Bytes()
	trailer := len(base) - 128
	url := "http://" + ln.Addr().String() + "/v1/files"
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()

	var (
		next   atomic.Int64
		mu     sync.Mutex
		lat    = make([]time.Duration, 0, b.N)
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	b.SetBytes(int64(len(base)))
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := append([]byte(nil), base...)
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				id := fmt.Sprintf("%06d", i%1_000_000)
				copy(body[49:55], id)
				copy(body[trailer+49:trailer+55], id)
				t0 := time.Now()
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					failed.Add(1)
					continue
				}
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d requests failed", f)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	files := float64(len(lat)) / elapsed.Seconds()
	b.ReportMetric(files, "files/s")
	b.ReportMetric(files*50, "invoices/s")
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
}
