package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
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
	var bases []string
	var token string
	for i := 0; i < 2; i++ {
		port := testenv.FreePort(t)
		cf := filepath.Join(dir, fmt.Sprintf("node%d.yaml", i))
		conf := fmt.Sprintf("data_dir: %s\nnode_id: node%d\nhttp: {listen: \"127.0.0.1:%d\"}\nsftp: {listen: \"\"}\n"+
			"store: {kind: redis, redis: {addr: \"%s\"}, blobs_dir: %s}\nreferentials: {seed_demo: true}\nworkers: {poll_every: 20ms, lease_ttl: 2s}\n",
			filepath.Join(dir, fmt.Sprintf("data%d", i)), i, port, rd.Addr, filepath.Join(dir, "blobs"))
		if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			token = addTenantConf(t, bin, cf, "acme")
		}
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		testenv.Start(t, testenv.Spec{Name: fmt.Sprintf("node%d", i), Path: bin, Args: []string{"serve", "--config", cf}, Ready: readyz(base)})
		bases = append(bases, base)
	}
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
