package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/internal/testenv"
)

// startServe starts `oct serve` on a data dir and waits for /readyz.
func startServe(t *testing.T, bin, dir string, port int) *testenv.Proc {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return testenv.Start(t, testenv.Spec{
		Name: "oct serve", Path: bin, Args: []string{"serve", "--data", dir, "--listen", addr, "--sftp-listen", "127.0.0.1:0"},
		Ready: func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return testenv.ErrNotReady
			}
			return nil
		},
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

// TestCrashKill9 pushes files concurrently to a real `oct serve`, kills it
// with SIGKILL in the middle of the burst, restarts it, and checks that every
// file that got a 201 is there and moves on exactly once.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("system test: builds and kills the oct binary")
	}
	bin := testenv.GoBuild(t, "github.com/octgw/oct/cmd/oct")
	dir := t.TempDir()
	token := addTenant(t, bin, dir, "crash")
	port := testenv.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	srv := startServe(t, bin, dir, port)

	const killAfter = 60
	var (
		mu     sync.Mutex
		acked  = map[string]int64{} // file id -> lots announced by the ack
		killed = make(chan struct{})
		once   sync.Once
		wg     sync.WaitGroup
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
					mu.Lock()
					acked[ack.ID] = ack.Stats.Lots
					n := len(acked)
					mu.Unlock()
					if n == killAfter {
						once.Do(func() { srv.Kill(); close(killed) })
					}
				}
			}
		}(w)
	}
	wg.Wait()
	select {
	case <-killed:
	default:
		t.Fatalf("the burst ended before the kill (%d acks)", len(acked))
	}
	if len(acked) < killAfter {
		t.Fatalf("only %d acks", len(acked))
	}

	startServe(t, bin, dir, port)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	get := func(path string, v any) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if v != nil && resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		return resp.StatusCode
	}
	type fileView struct {
		State   string `json:"state"`
		History []struct {
			From, To string
		} `json:"history"`
		LotList []struct {
			ID, State string
		} `json:"lot_list"`
	}
	for id, lots := range acked {
		var f fileView
		err := testenv.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
			if code := get("/v1/files/"+id, &f); code != http.StatusOK {
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
		if splits != 1 {
			t.Errorf("file %s split %d times", id, splits)
		}
		seen := map[string]bool{}
		for _, l := range f.LotList {
			if seen[l.ID] {
				t.Errorf("file %s: lot %s twice", id, l.ID)
			}
			seen[l.ID] = true
		}
	}
	out, err := exec.Command(bin, "audit", "verify", "--data", dir).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ok:") {
		t.Fatalf("audit verify after the crash: %v\n%s", err, out)
	}
	t.Logf("%d files acknowledged before the kill, all present and processed once", len(acked))
}
