package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/internal/testenv"
)

func testFile(id string) store.File {
	return store.File{ID: id, Tenant: "acme", Channel: "api", Name: id + ".b2", SHA256: fmt.Sprintf("%064s", id),
		Size: 10, Format: "b2", State: lifecycle.FileReceived}
}

// TestRestart commits, stops Redis (SIGTERM, then SIGKILL in the second
// case), checks that the store reports errors, not panics, while Redis is
// down, restarts it on the same AOF and checks that every acknowledged write
// is there, that the chain verifies and that the store writes again (the
// server forgot the scripts: they are sent again).
func TestRestart(t *testing.T) {
	for _, stop := range []string{"sigterm", "sigkill"} {
		t.Run(stop, func(t *testing.T) {
			srv := testenv.StartRedis(t, testenv.RedisOptions{AppendFsync: "always"})
			ctx := context.Background()
			s := openTest(t, srv.Addr, Options{RequireFsyncAlways: true})
			const n = 50
			for i := 0; i < n; i++ {
				id := fmt.Sprintf("F%03d", i)
				if _, _, err := s.CreateFile(ctx, testFile(id), &store.Change{
					Enqueue: []store.Job{{Kind: "validate", Subject: "file:" + id}},
				}); err != nil {
					t.Fatal(err)
				}
			}
			ls, err := s.Lease(ctx, "w1", nil, 10, time.Hour)
			if err != nil || len(ls) != 10 {
				t.Fatalf("Lease = %d, %v", len(ls), err)
			}
			if err := s.Commit(ctx, &store.Change{Done: ls[:5]}); err != nil {
				t.Fatal(err)
			}

			if stop == "sigkill" {
				srv.Proc.Kill()
			} else {
				srv.Stop()
			}
			down, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := s.Ping(down); err == nil {
				t.Fatal("Ping succeeded with Redis down")
			}
			err = s.Commit(down, &store.Change{Lots: []store.Lot{{ID: "L1", File: "F000", State: lifecycle.LotCreated}}})
			if err == nil || errors.Is(err, store.ErrClosed) {
				t.Fatalf("Commit with Redis down: %v, want a connection error", err)
			}
			if _, err := s.File(down, "F000"); err == nil || errors.Is(err, store.ErrNotFound) {
				t.Fatalf("File with Redis down: %v, want a connection error", err)
			}
			if _, err := s.Lease(down, "w2", nil, 1, time.Minute); err == nil {
				t.Fatal("Lease succeeded with Redis down")
			}

			srv.Restart(t)
			if err := testenv.Poll(down, 20*time.Millisecond, func() (bool, error) {
				return s.Ping(down) == nil, nil
			}); err != nil {
				t.Fatalf("Ping after restart: %v", err)
			}
			files, err := s.Files(ctx, "acme", "", 1000)
			if err != nil || len(files) != n {
				t.Fatalf("files after restart = %d, %v; want %d", len(files), err, n)
			}
			if p, err := s.PendingJobs(ctx); err != nil || p["validate"] != n-5 {
				t.Fatalf("pending after restart = %v, %v", p, err)
			}
			// The five unfinished leases are still held, the other done.
			if err := s.Commit(ctx, &store.Change{Done: ls[5:]}); err != nil {
				t.Fatalf("Done of leases taken before the restart: %v", err)
			}
			checked, _, err := store.VerifyChain(ctx, s, nil)
			if err != nil || checked != n {
				t.Fatalf("VerifyChain = %d, %v; want %d", checked, err, n)
			}
			// Writes work again (the scripts are loaded again by EVAL).
			if err := s.Commit(ctx, &store.Change{Lots: []store.Lot{{ID: "L1", File: "F000", State: lifecycle.LotCreated}}}); err != nil {
				t.Fatalf("Commit after restart: %v", err)
			}
			if checked, _, err := store.VerifyChain(ctx, s, nil); err != nil || checked != n+1 {
				t.Fatalf("VerifyChain = %d, %v; want %d", checked, err, n+1)
			}
		})
	}
}

// TestTwoNodes runs two stores (two clients, as two gateway nodes would)
// on the same prefix: concurrent writers keep one unbroken chain, each
// shared file is created once, and no job is leased twice.
func TestTwoNodes(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	ctx := context.Background()
	prefix := fmt.Sprintf("nodes%d", prefixes.Add(1))
	a := openTest(t, srv.Addr, Options{Prefix: prefix})
	b := openTest(t, srv.Addr, Options{Prefix: prefix})
	const per = 100
	var wg sync.WaitGroup
	errs := make(chan error, 4*per)
	created := make(chan string, 4*per)
	for w, s := range []*Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				// Both nodes race for the same file ids and contents.
				id := fmt.Sprintf("F%03d", i)
				f, ok, err := s.CreateFile(ctx, testFile(id), &store.Change{
					Enqueue: []store.Job{{Kind: "validate", Subject: "file:" + id}},
				})
				if err != nil {
					errs <- err
					continue
				}
				if ok {
					created <- f.ID
				}
				err = s.Commit(ctx, &store.Change{Events: []store.Event{
					{Subject: "file:" + id, Type: "note", Data: []byte(fmt.Sprintf(`{"w":%d}`, w))},
				}})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(created)
	for err := range errs {
		t.Error(err)
	}
	if n := len(created); n != per {
		t.Errorf("%d files created, want %d", n, per)
	}
	checked, _, err := store.VerifyChain(ctx, a, nil)
	if err != nil || checked != per+4*per {
		t.Errorf("VerifyChain = %d, %v; want %d", checked, err, 5*per)
	}
	t.Logf("head conflicts retried: node a %d, node b %d", a.Conflicts(), b.Conflicts())

	// Leases from both nodes never overlap.
	seen := map[string]bool{}
	var mu sync.Mutex
	var lwg sync.WaitGroup
	for _, s := range []*Store{a, b, a, b} {
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			for {
				ls, err := s.Lease(ctx, "w", []string{"validate"}, 7, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ls) == 0 {
					return
				}
				mu.Lock()
				for _, l := range ls {
					if seen[l.ID] {
						t.Errorf("job %s leased twice", l.ID)
					}
					seen[l.ID] = true
				}
				mu.Unlock()
				if err := s.Commit(ctx, &store.Change{Done: ls}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	lwg.Wait()
	if len(seen) != per {
		t.Errorf("leased %d jobs, want %d", len(seen), per)
	}
	if p, _ := a.PendingJobs(ctx); len(p) != 0 {
		t.Errorf("pending = %v", p)
	}
}

// TestBytesKept stores values that JSON would rewrite (Latin-1, NUL, CR LF)
// and checks they come back as is and still hash right.
func TestBytesKept(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	ctx := context.Background()
	s := openTest(t, srv.Addr, Options{})
	f := testFile("F1")
	f.Name = "DUPONT\xe9\x00\r\n.b2"
	f.Ack = []byte("\xff\x00ack")
	if _, _, err := s.CreateFile(ctx, f, &store.Change{Actor: "a\xe9", Events: []store.Event{
		{Subject: "file:F1", Type: "note", Reason: "r\xe9\x00", Data: []byte("\x00\xff")},
	}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.File(ctx, "F1")
	if err != nil || got.Name != f.Name || string(got.Ack) != string(f.Ack) {
		t.Fatalf("file = %q %q, %v", got.Name, got.Ack, err)
	}
	evs, err := s.Events(ctx, "file:F1")
	if err != nil || len(evs) != 2 || evs[1].Reason != "r\xe9\x00" || string(evs[1].Data) != "\x00\xff" || evs[0].Actor != "a\xe9" {
		t.Fatalf("events = %+v, %v", evs, err)
	}
	if n, _, err := store.VerifyChain(ctx, s, nil); err != nil || n != 2 {
		t.Fatalf("VerifyChain = %d, %v", n, err)
	}
}

// BenchmarkCreateFile measures intake throughput against a real Redis:
// parallel CreateFile calls, each with its creation event and a validate
// job. For example:
//
//	OCT_INTEGRATION=1 go test -run '^$' -bench BenchmarkCreateFile -benchtime 3s ./gateway/store/redis
func BenchmarkCreateFile(b *testing.B) {
	for _, fsync := range []string{"everysec", "always"} {
		b.Run(fsync, func(b *testing.B) {
			srv := testenv.StartRedis(b, testenv.RedisOptions{AppendFsync: fsync})
			s := openTest(b, srv.Addr, Options{})
			ctx := context.Background()
			var n atomic64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := fmt.Sprintf("F%09d", n.add())
					if _, _, err := s.CreateFile(ctx, testFile(id), &store.Change{
						Enqueue: []store.Job{{Kind: "validate", Subject: "file:" + id}},
					}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "files/s")
		})
	}
}

type atomic64 struct {
	mu sync.Mutex
	n  int64
}

func (a *atomic64) add() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n++
	return a.n
}
