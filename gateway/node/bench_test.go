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
	"github.com/octgw/oct/internal/testenv"
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

// BenchmarkNodesEndToEnd measures end-to-end files/s — durable intake over
// HTTP, then split into lots and routing by the workers, until no job is
// left — on one node with SQLite and on 1, 2 and 3 nodes sharing one Redis
// (appendfsync always) and one blob directory, same workload, same run. The
// nodes run in this one process on the same 2 cores, so extra nodes add
// coordination, not CPU: the curve shows the cost of sharing, not scale-out.
//
//	OCT_INTEGRATION=1 go test -run '^$' -bench NodesEndToEnd -benchtime 400x ./gateway/node/
func BenchmarkNodesEndToEnd(b *testing.B) {
	b.Run("sqlite/nodes=1", func(b *testing.B) { benchNodes(b, "", 1) })
	rd := testenv.StartRedis(b, testenv.RedisOptions{AppendFsync: "always"})
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("redis/nodes=%d", n), func(b *testing.B) { benchNodes(b, rd.Addr, n) })
	}
}

var benchPrefix atomic.Int64

func benchNodes(b *testing.B, redisAddr string, count int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	blobs := b.TempDir()
	prefix := fmt.Sprintf("bench%d", benchPrefix.Add(1))
	var urls []string
	var first *node.Node
	var dones []chan error
	for i := 0; i < count; i++ {
		cfg := config.Defaults()
		cfg.DataDir, cfg.HTTP.Listen, cfg.SFTP.Listen = b.TempDir(), "127.0.0.1:0", ""
		cfg.NodeID = fmt.Sprintf("n%d", i)
		cfg.Limits.RequestsPerSecond, cfg.Limits.Burst = 1e6, 1e6
		cfg.Workers.PollEvery = 20 * time.Millisecond
		cfg.Refs.SeedDemo = true
		if redisAddr != "" {
			cfg.Store.Kind, cfg.Store.Redis.Addr, cfg.Store.Redis.Prefix, cfg.Store.BlobsDir = "redis", redisAddr, prefix, blobs
		}
		n, err := node.Open(ctx, cfg, node.Options{Exclusive: true})
		if err != nil {
			b.Fatal(err)
		}
		defer n.Close()
		ln, err := n.Listen()
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx, ln) }()
		dones = append(dones, done)
		urls = append(urls, "http://"+ln.Addr().String()+"/v1/files")
		if first == nil {
			first = n
		}
	}
	defer func() {
		cancel()
		for _, d := range dones {
			<-d
		}
	}()
	_, token, err := gateway.AddTenant(ctx, first.Store, "bench", "bench", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	var tpl bytes.Buffer
	if err := b2.Generate(&tpl, b2.GenOptions{Seed: 9, Lots: 2, Invoices: 25}); err != nil {
		b.Fatal(err)
	}
	base := tpl.Bytes()
	trailer := len(base) - 128
	client := &http.Client{Timeout: 30 * time.Second}
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func(c int) {
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
				req, _ := http.NewRequest(http.MethodPost, urls[int(i)%len(urls)], bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				if err != nil || resp.StatusCode != http.StatusCreated {
					failed.Add(1)
					if resp != nil {
						resp.Body.Close()
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}(c)
	}
	wg.Wait()
	// End to end: wait until every split and route job is done.
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer wcancel()
	if err := testenv.Poll(wctx, 10*time.Millisecond, func() (bool, error) {
		p, err := first.Store.PendingJobs(wctx)
		if err != nil {
			return false, err
		}
		for _, v := range p {
			if v > 0 {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d pushes failed", f)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "files/s")
	b.ReportMetric(float64(b.N*2)/elapsed.Seconds(), "lots/s")
}
