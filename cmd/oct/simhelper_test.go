package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/internal/testenv"
)

// startSim runs `oct sim` on loopback, its caisses' SMTP on smtpPort and
// the other endpoints as args say, and waits until it has written what the
// gateway needs to its out directory (root CA, caisse certificates).
// ready replaces the default probe (the SMTP port) when not nil.
func startSim(t *testing.T, bin, out string, smtpPort int, ready func(context.Context) error, args ...string) {
	t.Helper()
	smtp := fmt.Sprintf("127.0.0.1:%d", smtpPort)
	if ready == nil {
		ready = testenv.TCPReady(smtp)
	}
	testenv.Start(t, testenv.Spec{Name: "oct sim", Path: bin,
		Args: append([]string{"sim", "--out", out, "--smtp", smtp}, args...), Ready: ready})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := testenv.Poll(ctx, 20*time.Millisecond, func() (bool, error) {
		_, err := os.Stat(filepath.Join(out, "certs", "01422@422.01.rss.fr.pem"))
		return err == nil, nil
	}); err != nil {
		t.Fatal("oct sim wrote no caisse certificate")
	}
}

// postAck POSTs body to url with the tenant's token and returns the
// acknowledgement; anything but 201 fails the test.
func postAck(t *testing.T, ctx context.Context, url, token string, body []byte) gateway.Ack {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var ack gateway.Ack
	if err := json.Unmarshal(raw, &ack); err != nil || resp.StatusCode != 201 {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, raw)
	}
	return ack
}

// startMailbox starts Dovecot, the OCT's return mailbox, and writes its
// password to a file in dir for the configuration.
func startMailbox(t *testing.T, dir string) (*testenv.Dovecot, string) {
	t.Helper()
	dc := testenv.StartDovecot(t)
	pwFile := filepath.Join(dir, "imap.pw")
	if err := os.WriteFile(pwFile, []byte(dc.Password), 0o600); err != nil {
		t.Fatal(err)
	}
	return dc, pwFile
}
