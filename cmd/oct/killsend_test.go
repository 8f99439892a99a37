package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/internal/testenv"
)

// TestKillBetweenSendAndJournal kills `oct serve` at the worst instant for
// "never send twice": the caisse (oct sim) has accepted the message, the
// gateway has not journalled the outcome (OCT_FAILPOINT=kill-after-send:
// SIGKILL right after the send returns). On restart the deliver job runs
// again, finds the attempt it recorded before sending, and does not send
// again: the lot is taken as sent with the attempt's outcome "unknown" and
// the reason written down; the simulator received the lot exactly once.
func TestKillBetweenSendAndJournal(t *testing.T) {
	testenv.Integration(t)
	bin := testenv.GoBuild(t, "github.com/octgw/oct/cmd/oct")
	dir := t.TempDir()
	simOut := filepath.Join(dir, "sim")
	smtpPort := testenv.FreePort(t)
	startSim(t, bin, simOut, smtpPort, nil, "--sftp", "", "--https", "", "--ssa", "",
		"--arl-delay", "10ms", "--rsp-delay", "1h", "--negative-rate", "0")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	keyFile, certFile := writeSigningKey(t, dir)
	port := testenv.FreePort(t)
	conf := fmt.Sprintf(`data_dir: %s
http: {listen: "127.0.0.1:%d"}
sftp: {listen: ""}
workers: {poll_every: 20ms, lease_ttl: 2s}   # the killed node's lease expires soon
referentials: {seed_demo: true}
signing:
  members: [{id: soft, kind: software, profile: default, key_file: %s, cert_file: %s}]
delivery:
  smtp: {relay: "127.0.0.1:%d", from: oct@oct.test, root_ca_file: %s}
certificates: {dir: %s}
`, filepath.Join(dir, "data"), port, keyFile, certFile, smtpPort, filepath.Join(simOut, "sim-root-ca.pem"), filepath.Join(simOut, "certs"))
	confFile := filepath.Join(dir, "oct.yaml")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	token := addTenantConf(t, bin, confFile, "acme")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	serve := func(env ...string) *testenv.Proc {
		return testenv.Start(t, testenv.Spec{Name: "oct serve", Path: bin, Args: []string{"serve", "--config", confFile},
			Env: env, Ready: readyz(base)})
	}
	// What the caisse received: the simulator answers each lot it
	// receives with one ARL, written to --out/returns (no mailbox here).
	received := func() int {
		files, _ := filepath.Glob(filepath.Join(simOut, "returns", "*"))
		n := 0
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte("ARL")) {
				n++
			}
		}
		return n
	}

	first := serve("OCT_FAILPOINT=kill-after-send")
	var buf bytes.Buffer
	if err := b2.Generate(&buf, b2.GenOptions{Seed: 77, Lots: 1, Invoices: 4}); err != nil {
		t.Fatal(err)
	}
	ack := postAck(t, ctx, base+"/v1/files", token, buf.Bytes())
	if ack.Status != "accepted" {
		t.Fatalf("push: %+v", ack)
	}
	select {
	case <-first.Exited():
	case <-ctx.Done():
		t.Fatal("oct serve did not kill itself after the send")
	}
	if !strings.Contains(first.Log.String(), "failpoint: killing the process after a send") {
		t.Fatalf("the process died elsewhere:\n%s", first.Log.String())
	}
	if err := testenv.Poll(ctx, 20*time.Millisecond, func() (bool, error) { return received() == 1, nil }); err != nil {
		t.Fatalf("the caisse did not receive the lot before the kill: %d", received())
	}

	serve() // restart, no failpoint
	var lot struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		Attempts []struct {
			Outcome, Detail string
			Resend          bool
		} `json:"attempts"`
	}
	err := testenv.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		var f struct {
			LotList []struct{ ID string } `json:"lot_list"`
		}
		if getJSON(ctx, base+"/v1/files/"+ack.ID, token, &f) != 200 || len(f.LotList) != 1 {
			return false, nil
		}
		getJSON(ctx, base+"/v1/lots/"+f.LotList[0].ID, token, &lot)
		return lot.State == "sent", nil
	})
	if err != nil {
		t.Fatalf("the lot was not taken as sent after the restart: %v %+v", err, lot)
	}
	if len(lot.Attempts) != 1 || lot.Attempts[0].Outcome != "unknown" || lot.Attempts[0].Resend ||
		!strings.Contains(lot.Attempts[0].Detail, "not sent again") {
		t.Fatalf("attempts after the restart: %+v", lot.Attempts)
	}
	var pending map[string]int
	if err := testenv.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		pending = jobsPending(ctx, base)
		return pending["deliver"] == 0 && pending["sign"] == 0, nil
	}); err != nil {
		t.Fatalf("delivery jobs still pending: %v", pending)
	}
	if n := received(); n != 1 {
		t.Fatalf("the caisse received the lot %d times", n)
	}
}

// jobsPending reads oct_jobs_pending{kind} from /metrics.
func jobsPending(ctx context.Context, base string) map[string]int {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	out := map[string]int{}
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	for _, line := range strings.Split(b.String(), "\n") {
		var kind string
		var n float64
		if strings.HasPrefix(line, "oct_jobs_pending{") {
			if _, err := fmt.Sscanf(line[strings.Index(line, `kind="`)+6:], "%s", &kind); err == nil {
				kind = kind[:strings.IndexByte(kind, '"')]
				fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &n)
				out[kind] = int(n)
			}
		}
	}
	return out
}
