package signing

import (
	"context"
	"crypto"
	"fmt"
	"testing"
	"time"
)

// BenchmarkPoolSoftware measures the pool itself (dispatch, limits,
// breaker, audit, metrics) over software keys, in parallel.
//
//	go test -run '^$' -bench 'PoolSoftware|PoolSignFile' -benchtime 3s ./gateway/signing/
func BenchmarkPoolSoftware(b *testing.B) {
	for _, alg := range []string{"p256", "rsa2048"} {
		for _, n := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("%s/members=%d", alg, n), func(b *testing.B) {
				benchPool(b, softwareMembers(b, alg, n), nil)
			})
		}
	}
}

// BenchmarkPoolSignFile measures SignFile (CMS over a 64 KiB file) on
// software keys, in parallel.
func BenchmarkPoolSignFile(b *testing.B) {
	data := make([]byte, 64<<10)
	for _, alg := range []string{"p256", "rsa2048"} {
		b.Run(alg+"/members=2", func(b *testing.B) {
			cfgs := softwareMembers(b, alg, 2)
			p, err := New(context.Background(), Config{Members: cfgs}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close(context.Background())
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := p.SignFile(context.Background(), "amo", "bench", data); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sig/s")
		})
	}
}

// noopMember signs nothing: BenchmarkPoolOverhead measures the pool alone
// (dispatch, slot, breaker, audit event, metrics).
type noopMember struct{ *fakeMember }

func (n noopMember) SignContext(context.Context, []byte, crypto.SignerOpts) ([]byte, error) {
	return []byte{1}, nil
}

// BenchmarkPoolOverhead is the cost of the pool around a member that
// returns at once.
//
//	go test -run '^$' -bench PoolOverhead ./gateway/signing/
func BenchmarkPoolOverhead(b *testing.B) {
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			var cfgs []MemberConfig
			ms := map[string]Member{}
			for i := range n {
				id := fmt.Sprintf("m%d", i)
				mc := fakeConfig(id, "amo")
				mc.MaxConcurrency = 64
				cfgs = append(cfgs, mc)
				ms[id] = noopMember{newFake(b, id)}
			}
			benchPool(b, cfgs, func(_ context.Context, mc MemberConfig) (Member, error) { return ms[mc.ID], nil })
		})
	}
}

func softwareMembers(b *testing.B, alg string, n int) []MemberConfig {
	b.Helper()
	dir := b.TempDir()
	var cfgs []MemberConfig
	for i := range n {
		var key crypto.Signer
		if alg == "p256" {
			key = newP256(b)
		} else {
			key = testRSA(b, i)
		}
		mc, _ := writeSoftware(b, dir, fmt.Sprintf("soft-%d", i), "amo", key)
		cfgs = append(cfgs, mc)
	}
	return cfgs
}

// benchPool signs 32-byte digests through the pool from parallel goroutines
// and reports sig/s.
func benchPool(b *testing.B, cfgs []MemberConfig, open func(context.Context, MemberConfig) (Member, error)) {
	b.Helper()
	p, err := New(context.Background(), Config{Members: cfgs}, Options{Open: open})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	for _, s := range p.Members() {
		if s.State != StateUp {
			b.Fatalf("member %s not up: %v", s.ID, s.LastError)
		}
	}
	digest := healthDigest
	ctx := context.Background()
	b.SetParallelism(2)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.SignDigest(ctx, cfgs[0].Profile, "bench", digest[:], crypto.SHA256); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sig/s")
}
