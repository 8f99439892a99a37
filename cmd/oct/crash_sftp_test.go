package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/internal/testenv"
)

// TestCrashKill9SFTP uploads files concurrently over SFTP to a real `oct
// serve` (each upload followed: hashed and validated as it arrives, linked
// into the blob store at close), kills the server with SIGKILL in the
// middle of the burst, restarts it, and checks that every file whose close
// returned success is there, with the bytes that were sent, its blob's
// sha256 that of the upload, and moves on exactly once.
func TestCrashKill9SFTP(t *testing.T) {
	if testing.Short() {
		t.Skip("system test: builds and kills the oct binary")
	}
	bin := testenv.GoBuild(t, "github.com/octgw/oct/cmd/oct")
	dir := t.TempDir()
	token := addTenant(t, bin, dir, "crash")

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(t.TempDir(), "authorized_keys")
	if err := os.WriteFile(keys, ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "tenant", "add-key", "crash", keys, "--data", dir).CombinedOutput(); err != nil {
		t.Fatalf("tenant add-key: %v\n%s", err, out)
	}
	conf := filepath.Join(t.TempDir(), "oct.yaml")
	if err := os.WriteFile(conf, []byte("sftp: {files_per_minute: 100000}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port, sftpPort := testenv.FreePort(t), testenv.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	args := []string{"--config", conf, "--sftp-listen", fmt.Sprintf("127.0.0.1:%d", sftpPort)}
	srv := startServe(t, bin, dir, port, args...)

	type sent struct {
		sum  string // sha256 of the bytes uploaded
		lots int64
	}
	var (
		closed = map[string]sent{} // names whose close returned success
		wg     sync.WaitGroup
		kill   = killAt(srv, 12)
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			conn, err := ssh.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", sftpPort), &ssh.ClientConfig{
				User: "crash", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
				HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
			})
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer conn.Close()
			c, err := sftp.NewClient(conn, sftp.UseConcurrentWrites(true))
			if err != nil {
				t.Errorf("sftp: %v", err)
				return
			}
			defer c.Close()
			for i := 0; i < 100; i++ { // bounded; the kill stops it far earlier
				var buf bytes.Buffer
				if err := b2.Generate(&buf, b2.GenOptions{Seed: int64(w*1000 + i), Lots: 8, Invoices: 60}); err != nil {
					t.Error(err)
					return
				}
				name := fmt.Sprintf("W%dF%03d.b2", w, i)
				f, err := c.OpenFile("/inbox/"+name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
				if err != nil {
					return // the server is gone
				}
				sum := sha256.Sum256(buf.Bytes())
				if _, err := f.ReadFrom(bytes.NewReader(buf.Bytes())); err != nil {
					return
				}
				if err := f.Close(); err != nil {
					return
				}
				kill.success(func() { closed[name] = sent{sum: hex.EncodeToString(sum[:]), lots: 8} })
			}
		}(w)
	}
	ctx := kill.restart(t, &wg, bin, dir, port, args...)
	for name, s := range closed {
		// The acknowledgement was in outbox/ before the close returned.
		acks, _ := filepath.Glob(filepath.Join(dir, "tenants", "*", "outbox", name+".ack.json"))
		if len(acks) != 1 {
			t.Fatalf("%s: close returned success, acknowledgements %v", name, acks)
		}
		data, err := os.ReadFile(acks[0])
		if err != nil {
			t.Fatal(err)
		}
		var ack gateway.Ack
		if err := json.Unmarshal(data, &ack); err != nil {
			t.Fatalf("%s: acknowledgement unreadable after the kill: %v", name, err)
		}
		if ack.Status != gateway.StatusAccepted || ack.SHA256 != s.sum {
			t.Fatalf("%s: acknowledged %s sha256 %s, uploaded %s", name, ack.Status, ack.SHA256, s.sum)
		}
		// The blob holds exactly the bytes uploaded.
		blob, err := os.Open(filepath.Join(dir, "blobs", s.sum[0:2], s.sum[2:4], s.sum))
		if err != nil {
			t.Fatalf("%s: blob: %v", name, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, blob)
		blob.Close()
		if err != nil || hex.EncodeToString(h.Sum(nil)) != s.sum {
			t.Fatalf("%s: blob content is not the upload (%v)", name, err)
		}
		waitSplitOnce(t, ctx, base, token, ack.ID, s.lots)
	}
	out, err := exec.Command(bin, "audit", "verify", "--data", dir).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ok:") {
		t.Fatalf("audit verify after the crash: %v\n%s", err, out)
	}
	t.Logf("%d uploads closed before the kill, all present with their bytes and processed once", len(closed))
}
