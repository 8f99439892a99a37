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
	blobs := filepath.Join(dir, "blobs")
	conf := func(i, port int) string {
		p := filepath.Join(dir, fmt.Sprintf("node%d.yaml", i))
		c := fmt.Sprintf(`data_dir: %s
node_id: node%d
http: {listen: "127.0.0.1:%d"}
sftp: {listen: ""}
store: {kind: redis, redis: {addr: "%s", require_fsync_always: true}, blobs_dir: %s}
referentials: {seed_demo: true}
workers: {poll_every: 20ms, lease_ttl: 2s}
`, filepath.Join(dir, fmt.Sprintf("data%d", i)), i, port, rd.Addr, blobs)
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	type node struct {
		base string
		proc *testenv.Proc
	}
	var nodes []node
	var token string
	for i := 0; i < 3; i++ {
		port := testenv.FreePort(t)
		cf := conf(i, port)
		if i == 0 {
			token = addTenantConf(t, bin, cf, "acme") // one store: the tenant exists for every node
		}
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		p := testenv.Start(t, testenv.Spec{Name: fmt.Sprintf("node%d", i), Path: bin, Args: []string{"serve", "--config", cf},
			Ready: readyz(base)})
		nodes = append(nodes, node{base, p})
	}

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
