package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/internal/testenv"
)

// readyz is the readiness probe of an oct serve at base: GET /readyz
// answers 200.
func readyz(base string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return testenv.ErrNotReady
		}
		return nil
	}
}

// waitSplitOnce waits until an acknowledged file is split into its lots
// and every lot has left "created", then checks it was split exactly once
// with no lot twice. A file that is not there at all is lost: fatal.
func waitSplitOnce(t *testing.T, ctx context.Context, base, token, id string, lots int64) {
	t.Helper()
	var f struct {
		State   string `json:"state"`
		History []struct {
			From, To string
		} `json:"history"`
		LotList []struct {
			ID, State string
		} `json:"lot_list"`
	}
	err := testenv.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		if code := getJSON(ctx, base+"/v1/files/"+id, token, &f); code != http.StatusOK {
			return false, fmt.Errorf("file %s acknowledged with 201 but GET answers %d: lost", id, code)
		}
		if f.State != "split" || int64(len(f.LotList)) != lots {
			return false, nil
		}
		for _, l := range f.LotList {
			if l.State == "created" {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("file %s: %v (state %s, %d/%d lots)", id, err, f.State, len(f.LotList), lots)
	}
	splits := 0
	for _, h := range f.History {
		if h.To == "split" {
			splits++
		}
	}
	seen := map[string]bool{}
	for _, l := range f.LotList {
		if seen[l.ID] {
			t.Errorf("file %s: lot %s twice", id, l.ID)
		}
		seen[l.ID] = true
	}
	if splits != 1 {
		t.Fatalf("file %s split %d times", id, splits)
	}
}

// startServe starts `oct serve` on a data dir and waits for /readyz.
func startServe(t *testing.T, bin, dir string, port int, args ...string) *testenv.Proc {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return testenv.Start(t, testenv.Spec{
		Name: "oct serve", Path: bin, Args: append([]string{"serve", "--data", dir, "--listen", addr, "--sftp-listen", "127.0.0.1:0"}, args...),
		Ready: readyz("http://" + addr),
	})
}

func execOutput(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).Output()
	return string(out), err
}

func addTenant(t *testing.T, bin, dir, name string) string {
	t.Helper()
	out, err := exec.Command(bin, "tenant", "add", name, "--data", dir).Output()
	if err != nil {
		t.Fatalf("tenant add: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// killer kills a server once a burst has had n successes.
type killer struct {
	srv    *testenv.Proc
	n      int
	mu     sync.Mutex
	seen   int
	killed bool
}

func killAt(srv *testenv.Proc, n int) *killer { return &killer{srv: srv, n: n} }

// success records one success (an acknowledged file) with record, run
// under the killer's lock; the n-th kills the server with SIGKILL, while
// the other clients are still sending.
func (k *killer) success(record func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	record()
	k.seen++
	if k.seen == k.n {
		k.srv.Kill()
		k.killed = true
	}
}

// restart waits for the burst's clients, fails t unless the kill happened
// during the burst, starts the server again on the same data and returns a
// context bounding the checks that follow.
func (k *killer) restart(t *testing.T, clients *sync.WaitGroup, bin, dir string, port int, args ...string) context.Context {
	t.Helper()
	clients.Wait()
	k.mu.Lock()
	killed, seen := k.killed, k.seen
	k.mu.Unlock()
	if !killed {
		t.Fatalf("the burst ended before the kill (%d successes, kill at %d)", seen, k.n)
	}
	startServe(t, bin, dir, port, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestCrashKill9 pushes files concurrently to a real `oct serve`, kills it
// with SIGKILL in the middle of the burst, restarts it, and checks that every
// file that got a 201 is there and moves on exactly once.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("system test: builds and kills the oct binary")
	}
	bin := testenv.GoBuild(t, "github.com/octgw/oct/cmd/oct")
	t.Run("blob-files", func(t *testing.T) { crashKill9(t, bin) })
	// The same with the small blobs (these files and their lots) in pack
	// files: an acknowledged file's bytes survive the kill there too.
	t.Run("blob-packs", func(t *testing.T) {
		conf := filepath.Join(t.TempDir(), "oct.yaml")
		if err := os.WriteFile(conf, []byte("store: {blob_packs: 131072}\nworkers: {lease_ttl: 3s}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		crashKill9(t, bin, "--config", conf)
	})
}

func crashKill9(t *testing.T, bin string, args ...string) {
	dir := t.TempDir()
	token := addTenant(t, bin, dir, "crash")
	port := testenv.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	srv := startServe(t, bin, dir, port, args...)

	var (
		acked = map[string]int64{} // file id -> lots announced by the ack
		wg    sync.WaitGroup
		kill  = killAt(srv, 60)
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 200; i++ { // bounded; the kill stops it far earlier
				var buf bytes.Buffer
				if err := b2.Generate(&buf, b2.GenOptions{Seed: int64(w*1000 + i), Lots: 2, Invoices: 20}); err != nil {
					t.Error(err)
					return
				}
				req, _ := http.NewRequest(http.MethodPost, base+"/v1/files", &buf)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				var ack gateway.Ack
				derr := json.NewDecoder(resp.Body).Decode(&ack)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated && derr == nil {
					kill.success(func() { acked[ack.ID] = ack.Stats.Lots })
				}
			}
		}(w)
	}
	ctx := kill.restart(t, &wg, bin, dir, port, args...)
	for id, lots := range acked {
		waitSplitOnce(t, ctx, base, token, id, lots)
	}
	if len(args) > 0 {
		if packs, _ := filepath.Glob(filepath.Join(dir, "blobs", "packs", "*.pack")); len(packs) < 2 {
			t.Fatalf("blob packs: %v (want the killed run's and the restart's)", packs)
		}
	}
	out, err := exec.Command(bin, "audit", "verify", "--data", dir).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ok:") {
		t.Fatalf("audit verify after the crash: %v\n%s", err, out)
	}
	t.Logf("%d files acknowledged before the kill, all present and processed once", len(acked))
}
