package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/internal/testenv"
)

// TestRedisRestartMidFlight: two nodes on one Redis take files; Redis is
// stopped: both nodes report not-ready and refuse files with 503 (nothing
// half-written); Redis comes back on the same AOF: both are ready again,
// take more files, and every file acknowledged before and after is there
// and processed once.
func TestRedisRestartMidFlight(t *testing.T) {
	rd := testenv.StartRedis(t, testenv.RedisOptions{AppendFsync: "always"})
	bin := testenv.GoBuild(t, "github.com/octgw/oct/cmd/oct")
	dir := t.TempDir()
	nodes, token := startRedisNodes(t, bin, dir, rd.Addr, 2, "")
	bases := []string{nodes[0].base, nodes[1].base}
	acked := map[string]int64{}
	push := func(base string, seed int64) int {
		var buf bytes.Buffer
		if err := b2.Generate(&buf, b2.GenOptions{Seed: seed, Lots: 2, Invoices: 3}); err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", base+"/v1/files", &buf)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ack gateway.Ack
		if resp.StatusCode == http.StatusCreated && json.NewDecoder(resp.Body).Decode(&ack) == nil {
			acked[ack.ID] = ack.Stats.Lots
		}
		return resp.StatusCode
	}
	for i := 0; i < 6; i++ {
		if code := push(bases[i%2], int64(900+i)); code != http.StatusCreated {
			t.Fatalf("before the restart: %d", code)
		}
	}

	rd.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, b := range bases {
		if err := testenv.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
			return readyz(b)(ctx) != nil, nil
		}); err != nil {
			t.Fatalf("%s still ready with Redis down", b)
		}
		if code := push(b, 950); code != http.StatusServiceUnavailable {
			t.Fatalf("with Redis down a file must get 503 (retry later), got %d", code)
		}
	}

	rd.Restart(t)
	for _, b := range bases {
		if err := testenv.Poll(ctx, 50*time.Millisecond, func() (bool, error) { return readyz(b)(ctx) == nil, nil }); err != nil {
			t.Fatalf("%s not ready again after Redis came back: %v", b, err)
		}
	}
	for i := 0; i < 6; i++ {
		if code := push(bases[i%2], int64(960+i)); code != http.StatusCreated {
			t.Fatalf("after the restart: %d", code)
		}
	}
	for id, lots := range acked {
		waitSplitOnce(t, ctx, bases[len(id)%2], token, id, lots)
	}
	t.Logf("%d files acknowledged around a Redis restart, all present and processed once", len(acked))
}
