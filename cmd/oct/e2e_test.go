package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway/signing"
	"github.com/octgw/oct/internal/testenv"
)

// TestServeDeliversToSimAndTakesReturnsOverIMAP runs the real binaries
// the way an operator would: `oct sim` plays the caisses, a real Dovecot is
// the OCT's return mailbox, `oct serve` is configured with a software
// signing key, SMTP delivery to the simulator, the simulator's caisse
// certificates and the IMAP mailbox. A file pushed over the API goes out
// signed and encrypted, and its ARL and RSP come back through Dovecot until
// the lot is settled.
func TestServeDeliversToSimAndTakesReturnsOverIMAP(t *testing.T) {
	testenv.Integration(t)
	bin := testenv.GoBuild(t, "github.com/octgw/oct/cmd/oct")
	dir := t.TempDir()
	dc, pwFile := startMailbox(t, dir)
	simOut := filepath.Join(dir, "sim")
	smtpPort := testenv.FreePort(t)
	startSim(t, bin, simOut, smtpPort, nil, "--sftp", "", "--https", "", "--ssa", "",
		"--imap", dc.Addr, "--imap-user", dc.User, "--imap-password-file", pwFile,
		"--arl-delay", "200ms", "--rsp-delay", "400ms", "--negative-rate", "0", "--reject-rate", "0.2")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	keyFile, certFile := writeSigningKey(t, dir)
	data := filepath.Join(dir, "data")
	port := testenv.FreePort(t)
	conf := fmt.Sprintf(`data_dir: %s
http:
  listen: 127.0.0.1:%d
sftp:
  listen: ""
workers:
  poll_every: 20ms
referentials:
  seed_demo: true
signing:
  members:
    - {id: test-soft, kind: software, profile: default, key_file: %s, cert_file: %s}
delivery:
  smtp:
    relay: 127.0.0.1:%d
    from: oct@oct.test
    root_ca_file: %s
certificates:
  dir: %s
returns:
  imap:
    addr: %s
    tls: none
    username: %s
    password_file: %s
    interval: 200ms
`, data, port, keyFile, certFile, smtpPort, filepath.Join(simOut, "sim-root-ca.pem"), filepath.Join(simOut, "certs"), dc.Addr, dc.User, pwFile)
	confFile := filepath.Join(dir, "oct.yaml")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	token := addTenantConf(t, bin, confFile, "acme")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	testenv.Start(t, testenv.Spec{Name: "oct serve", Path: bin, Args: []string{"serve", "--config", confFile},
		Ready: readyz(base)})

	var buf bytes.Buffer
	if err := b2.Generate(&buf, b2.GenOptions{Seed: 42, Lots: 1, Invoices: 10}); err != nil {
		t.Fatal(err)
	}
	ack := postAck(t, ctx, base+"/v1/files", token, buf.Bytes())
	if ack.Status != "accepted" {
		t.Fatalf("push: %+v", ack)
	}
	type lotView struct {
		ID, State string
	}
	var lot struct {
		State    string `json:"state"`
		Attempts []struct {
			Outcome   string `json:"outcome"`
			MessageID string `json:"message_id"`
		} `json:"attempts"`
		InvoiceList []struct{ State string } `json:"invoice_list"`
	}
	err := testenv.Poll(ctx, 50*time.Millisecond, func() (bool, error) {
		var f struct {
			LotList []lotView `json:"lot_list"`
		}
		if code := getJSON(ctx, base+"/v1/files/"+ack.ID, token, &f); code != 200 || len(f.LotList) != 1 {
			return false, nil
		}
		getJSON(ctx, base+"/v1/lots/"+f.LotList[0].ID, token, &lot)
		return lot.State == "settled", nil
	})
	if err != nil {
		t.Fatalf("the lot did not settle: %v (state %s, attempts %+v)", err, lot.State, lot.Attempts)
	}
	if len(lot.Attempts) != 1 || !strings.Contains(lot.Attempts[0].MessageID, "@") {
		t.Fatalf("attempts %+v", lot.Attempts)
	}
	var feed struct {
		Returns []struct{ Kind string } `json:"returns"`
	}
	getJSON(ctx, base+"/v1/returns", token, &feed)
	kinds := map[string]int{}
	for _, r := range feed.Returns {
		kinds[r.Kind]++
	}
	if kinds["arl"] != 1 || kinds["rsp"] != 1 {
		t.Fatalf("returns feed %+v", kinds)
	}
	relayed, _ := filepath.Glob(filepath.Join(data, "tenants", "acme", "returns", "*"))
	if len(relayed) < 2 {
		t.Fatalf("returns relayed to the vendor's SFTP folder: %v", relayed)
	}
}

func addTenantConf(t *testing.T, bin, conf, name string) string {
	t.Helper()
	out, err := execOutput(bin, "tenant", "add", name, "--config", conf)
	if err != nil {
		t.Fatalf("tenant add: %v", err)
	}
	return strings.TrimSpace(out)
}

func getJSON(ctx context.Context, url, token string, v any) int {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 {
		_ = json.NewDecoder(resp.Body).Decode(v)
	}
	return resp.StatusCode
}

func writeSigningKey(t *testing.T, dir string) (string, string) {
	t.Helper()
	kf, cf, err := signing.WriteDevelopmentKey(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return kf, cf
}
