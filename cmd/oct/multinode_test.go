package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/internal/testenv"
)

// TestNodesShareRedisAndSurviveKill9 runs three `oct serve` nodes on one
// real Redis (appendfsync always) and one shared blob directory, pushes
// files to all of them concurrently, kill -9s one node in the middle of the
// burst, and checks through the survivors that every file acknowledged
// with a 201 — whichever node took it — is there and was split exactly
// once, its lots routed by whichever node leased the work.
func TestNodesShareRedisAndSurviveKill9(t *testing.T) {
	rd := testenv.StartRedis(t, testenv.RedisOptions{AppendFsync: "always"})
	bin := testenv.GoBuild(t, "github.com/octgw/oct/cmd/oct")
	dir := t.TempDir()
	nodes, token := startRedisNodes(t, bin, dir, rd.Addr, 3, "store: {redis: {require_fsync_always: true}}\n")

	const killAfter = 30
	var (
		mu    sync.Mutex
		acked = map[string]int64{}
		once  sync.Once
		wg    sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			n := nodes[w%3]
			for i := 0; i < 40; i++ {
				var buf bytes.Buffer
				if err := b2.Generate(&buf, b2.GenOptions{Seed: int64(w*1000 + i), Lots: 2, Invoices: 5}); err != nil {
					t.Error(err)
					return
				}
				req, _ := http.NewRequest("POST", n.base+"/v1/files", &buf)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				if err != nil {
					if w%3 == 0 {
						return // node 0 was killed
					}
					t.Errorf("surviving node refused a file: %v", err)
					return
				}
				var ack gateway.Ack
				derr := json.NewDecoder(resp.Body).Decode(&ack)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated && derr == nil {
					mu.Lock()
					acked[ack.ID] = ack.Stats.Lots
					k := len(acked)
					mu.Unlock()
					if k == killAfter {
						once.Do(func() { nodes[0].proc.Kill() })
					}
				}
			}
		}(w)
	}
	wg.Wait()
	if len(acked) < killAfter {
		t.Fatalf("only %d acks", len(acked))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for id, lots := range acked {
		waitSplitOnce(t, ctx, nodes[1+len(id)%2].base, token, id, lots) // ask the survivors
	}
	t.Logf("%d files acknowledged by 3 nodes (one killed mid-burst), all present and split once", len(acked))
}

// redisNode is one `oct serve` process of a multi-node test.
type redisNode struct {
	base string
	proc *testenv.Proc
}

// startRedisNodes starts count `oct serve` nodes sharing one Redis and one
// blob directory under dir, extra YAML deep-merged into each node's
// configuration, creates tenant acme and returns the nodes and its token.
func startRedisNodes(t *testing.T, bin, dir, redisAddr string, count int, extra string) ([]redisNode, string) {
	t.Helper()
	var nodes []redisNode
	var token string
	for i := 0; i < count; i++ {
		port := testenv.FreePort(t)
		cf := filepath.Join(dir, fmt.Sprintf("node%d.yaml", i))
		base := map[string]any{
			"data_dir":     filepath.Join(dir, fmt.Sprintf("data%d", i)),
			"node_id":      fmt.Sprintf("node%d", i),
			"http":         map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", port)},
			"sftp":         map[string]any{"listen": ""},
			"referentials": map[string]any{"seed_demo": true},
			"workers":      map[string]any{"poll_every": "20ms", "lease_ttl": "2s"},
			"store":        map[string]any{"kind": "redis", "redis": map[string]any{"addr": redisAddr}, "blobs_dir": filepath.Join(dir, "blobs")},
		}
		var more map[string]any
		if err := yaml.Unmarshal([]byte(extra), &more); err != nil {
			t.Fatal(err)
		}
		conf, err := yaml.Marshal(deepMerge(base, more))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cf, conf, 0o600); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			token = addTenantConf(t, bin, cf, "acme") // one store: the tenant exists for every node
		}
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		nodes = append(nodes, redisNode{url, testenv.Start(t, testenv.Spec{Name: fmt.Sprintf("node%d", i), Path: bin,
			Args: []string{"serve", "--config", cf}, Ready: readyz(url)})})
	}
	return nodes, token
}

// deepMerge copies b's keys over a, merging nested maps.
func deepMerge(a, b map[string]any) map[string]any {
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := a[k].(map[string]any); ok {
				a[k] = deepMerge(am, bm)
				continue
			}
		}
		a[k] = v
	}
	return a
}
