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
	"github.com/octgw/oct/gateway/returns"
	"github.com/octgw/oct/internal/testenv"
)

// TestNodesDeliverOnceAndChaseOnce: three nodes on one Redis sign and send
// to `oct sim` over SMTP + S/MIME; one node is killed mid-burst. The
// simulator's ARLs are never fed back (no mailbox), so after the short ARL
// deadline every lot is chased: resent exactly once, by whichever node's
// timer fired first, then left to support. Counted on the simulator's side
// from the ARLs it wrote: every lot of every acknowledged file was received
// exactly twice (the send and the one resend) — never a third time, and the
// journal agrees: after the resend the second deadline escalates the lot
// (arl_overdue + an arl-missing-after-resend anomaly) instead of resending.
func TestNodesDeliverOnceAndChaseOnce(t *testing.T) {
	rd := testenv.StartRedis(t, testenv.RedisOptions{AppendFsync: "always"})
	bin := testenv.GoBuild(t, "github.com/octgw/oct/cmd/oct")
	dir := t.TempDir()
	simOut := filepath.Join(dir, "sim")
	smtpPort := testenv.FreePort(t)
	startSim(t, bin, simOut, smtpPort, nil, "--sftp", "", "--https", "", "--ssa", "", "--arl-delay", "10ms", "--negative-rate", "0")
	keyFile, certFile := writeSigningKey(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	nodes, token := startRedisNodes(t, bin, dir, rd.Addr, 3, fmt.Sprintf(`
signing:
  members: [{id: soft, kind: software, profile: default, key_file: %s, cert_file: %s}]
delivery:
  arl_deadline: 2s
  smtp: {relay: "127.0.0.1:%d", from: oct@oct.test, root_ca_file: %s}
certificates: {dir: %s}
anomalies: {every: 100ms}
`, keyFile, certFile, smtpPort, filepath.Join(simOut, "sim-root-ca.pem"), filepath.Join(simOut, "certs")))

	var (
		mu    sync.Mutex
		acked = map[string]int64{}
		once  sync.Once
		wg    sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 8; i++ {
				var buf bytes.Buffer
				if err := b2.Generate(&buf, b2.GenOptions{Seed: int64(500 + w*100 + i), Lots: 2, Invoices: 3}); err != nil {
					t.Error(err)
					return
				}
				req, _ := http.NewRequest("POST", nodes[w].base+"/v1/files", &buf)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				if err != nil {
					return // node 0 was killed
				}
				var ack gateway.Ack
				derr := json.NewDecoder(resp.Body).Decode(&ack)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated && derr == nil {
					mu.Lock()
					acked[ack.ID] = ack.Stats.Lots
					k := len(acked)
					mu.Unlock()
					if k == 6 {
						once.Do(func() { nodes[0].proc.Kill() })
					}
				}
			}
		}(w)
	}
	wg.Wait()

	// Every lot of every acknowledged file: one send and one resend, both
	// recorded, through the surviving nodes.
	type lotView struct {
		State    string
		Attempts []struct {
			Outcome string `json:"outcome"`
			Resend  bool   `json:"resend"`
		} `json:"attempts"`
	}
	lots := 0
	for id := range acked {
		var f struct {
			LotList []struct{ ID string } `json:"lot_list"`
		}
		getJSON(ctx, nodes[1].base+"/v1/files/"+id, token, &f)
		for _, l := range f.LotList {
			lots++
			var lv lotView
			err := testenv.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
				getJSON(ctx, nodes[2].base+"/v1/lots/"+l.ID, token, &lv)
				// sent, chased (resent), chased again: escalated to support
				// (arl_overdue with the anomaly), never a third send.
				return lv.State == "arl_overdue" && len(lv.Attempts) >= 2, nil
			})
			if err != nil {
				t.Fatalf("lot %s: %v (%+v)", l.ID, err, lv)
			}
			sends, resends := 0, 0
			for _, a := range lv.Attempts {
				if a.Resend {
					resends++
				} else {
					sends++
				}
			}
			if sends != 1 || resends != 1 {
				t.Fatalf("lot %s: %d sends, %d resends (%+v)", l.ID, sends, resends, lv.Attempts)
			}
		}
	}
	if lots == 0 {
		t.Fatal("no lot")
	}
	// The simulator's side: ARLs per lot, decoded from what it wrote.
	perLot := map[string]int{}
	emls, _ := filepath.Glob(filepath.Join(simOut, "returns", "arl-*.eml"))
	for _, p := range emls {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		parts, err := returns.Decode(raw, returns.DecodeOptions{})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, part := range parts {
			if part.ARL == nil {
				continue
			}
			for _, a := range part.ARL.ARLs {
				perLot[fmt.Sprintf("%s/%s/%d/%s", a.Emitter, a.FileID, a.LotNumber, a.LotDate)]++
			}
		}
	}
	for k, n := range perLot {
		if n > 2 {
			t.Errorf("the simulator received lot %s %d times (send + one resend at most)", k, n)
		}
	}
	t.Logf("%d lots of %d acknowledged files: each sent once and resent once across 3 nodes (one killed); %d lot keys seen by the simulator", lots, len(acked), len(perLot))
}
