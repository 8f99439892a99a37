package sftp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/intake/mailbox"
	"github.com/octgw/oct/internal/testenv"
)

// TestOpenSSHClient drives the server with the real OpenSSH client in batch
// mode (`sftp -b`), as a vendor's script would.
func TestOpenSSHClient(t *testing.T) {
	testenv.Integration(t)
	testenv.Need(t, "sftp")
	ctx := context.Background()
	e := startEnv(t, nil)
	dir := t.TempDir()
	keyPath, signer := testenv.SSHClientKey(t, dir, "id_acme")
	wrongPath, _ := testenv.SSHClientKey(t, dir, "id_wrong")
	// acme has two keys (rotation): the pkg/sftp one and the OpenSSH one.
	if err := e.ring.Replace(map[string][]string{
		"acme": {authorizedLine(e.keys["acme"]), authorizedLine(signer)},
		"beta": {authorizedLine(e.keys["beta"])},
	}); err != nil {
		t.Fatal(err)
	}
	kh := testenv.KnownHosts(t, dir, e.addr, e.hostKey)
	if err := os.WriteFile(filepath.Join(dir, "FSE001.b2"), b2, 0o600); err != nil {
		t.Fatal(err)
	}
	arl := []byte("ARL 0001\r\n")
	if err := e.folders.Deliver(ctx, "acme", mailbox.Returns, "ARL-0001.txt", arl); err != nil {
		t.Fatal(err)
	}
	if err := e.folders.Deliver(ctx, "beta", mailbox.Returns, "secret.txt", []byte("beta only")); err != nil {
		t.Fatal(err)
	}
	o := testenv.SFTPOptions{Addr: e.addr, User: "acme", Identity: keyPath, KnownHosts: kh, Dir: dir}

	out, err := testenv.SFTPBatch(ctx, t, o,
		"put FSE001.b2 inbox/FSE001.b2",
		"get outbox/FSE001.b2.ack.json ack.json",
		"get outbox/FSE001.b2.ack.txt ack.txt",
		"ls -l returns",
		"get returns/ARL-0001.txt arl.txt",
		"rm returns/ARL-0001.txt",
		// Upload under a temporary name, then rename: taken in once.
		"put FSE001.b2 inbox/LOT2.b2.part",
		"rename inbox/LOT2.b2.part inbox/LOT2.b2",
		// Everything below must fail without ending the batch ("-").
		"-get ../beta/returns/secret.txt stolen1",
		"-get /../beta/returns/secret.txt stolen2",
		"-get ../../../../etc/passwd stolen3",
		"-get /etc/passwd stolen4",
		"-get inbox/../../beta/returns/secret.txt stolen5",
		"-put FSE001.b2 ../beta/inbox/x.b2",
		"-put FSE001.b2 /tmp/x.b2",
		"-put FSE001.b2 outbox/x.b2",
		"-mkdir inbox/sub",
		"-symlink /etc/passwd inbox/link",
		"-ln inbox/LOT2.b2 inbox/hard",
		"-cd ../beta",
		"ls outbox",
		"bye",
	)
	if err != nil {
		t.Fatalf("sftp -b: %v\n%s", err, out)
	}
	var ack gateway.Ack
	if b, err := os.ReadFile(filepath.Join(dir, "ack.json")); err != nil || json.Unmarshal(b, &ack) != nil || ack.Name != "FSE001.b2" || ack.Status != "accepted" {
		t.Fatalf("ack = %+v, %v\n%s", ack, err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "ack.txt")); err != nil || !strings.Contains(string(b), ack.ID) {
		t.Fatalf("ack text: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "arl.txt")); err != nil || string(b) != string(arl) {
		t.Fatalf("return = %q, %v", b, err)
	}
	for i := 1; i <= 5; i++ {
		if _, err := os.Stat(filepath.Join(dir, "stolen"+string(rune('0'+i)))); err == nil {
			t.Errorf("stolen%d was fetched", i)
		}
	}
	calls := e.intake.Calls()
	if len(calls) != 2 || calls[0].src.Name != "FSE001.b2" || calls[1].src.Name != "LOT2.b2" || calls[0].tenant != "acme" {
		t.Fatalf("intake calls = %+v", calls)
	}
	if n := e.folderNames("beta", "inbox"); len(n) != 0 {
		t.Fatalf("beta inbox = %v", n)
	}
	if n := e.folderNames("acme", "returns"); len(n) != 0 {
		t.Fatalf("returns not emptied: %v", n)
	}

	// A key no tenant holds is refused; nothing is taken in.
	o.Identity = wrongPath
	if out, err := testenv.SFTPBatch(ctx, t, o, "put FSE001.b2 inbox/W.b2", "bye"); err == nil {
		t.Fatalf("unknown key accepted:\n%s", out)
	}
	if n := len(e.intake.Calls()); n != 2 {
		t.Fatalf("intake calls = %d after the wrong key", n)
	}
	// A host key that does not match known_hosts makes the client stop.
	o.Identity = keyPath
	o.KnownHosts = testenv.KnownHosts(t, t.TempDir(), e.addr, signer.PublicKey())
	if out, err := testenv.SFTPBatch(ctx, t, o, "ls", "bye"); err == nil {
		t.Fatalf("client accepted a wrong host key:\n%s", out)
	}
}

// TestOpenSSHClientFollowed: the real OpenSSH client uploading to the real
// gateway, directly and under a temporary name renamed after: both uploads
// are taken in from what was followed, with the sha256 of the bytes sent.
func TestOpenSSHClientFollowed(t *testing.T) {
	testenv.Integration(t)
	testenv.Need(t, "sftp")
	rec := newGatewayIntaker(t)
	e := startEnv(t, func(c *Config) { c.Intaker = rec })
	dir := t.TempDir()
	keyPath, signer := testenv.SSHClientKey(t, dir, "id_acme")
	if err := e.ring.Replace(map[string][]string{"acme": {authorizedLine(signer)}}); err != nil {
		t.Fatal(err)
	}
	kh := testenv.KnownHosts(t, dir, e.addr, e.hostKey)
	data := b2OfSize(t, 3<<20)
	other := append([]byte(nil), data...)
	copy(other[54:55], "9")
	copy(other[len(other)-128+54:len(other)-128+55], "9")
	for name, d := range map[string][]byte{"A.b2": data, "B.b2": other} {
		if err := os.WriteFile(filepath.Join(dir, name), d, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	o := testenv.SFTPOptions{Addr: e.addr, User: "acme", Identity: keyPath, KnownHosts: kh, Dir: dir}
	out, err := testenv.SFTPBatch(context.Background(), t, o,
		"put A.b2 inbox/A.b2",
		"put B.b2 inbox/B.b2.filepart",
		"rename inbox/B.b2.filepart inbox/B.b2",
		"bye",
	)
	if err != nil {
		t.Fatalf("sftp -b: %v\n%s", err, out)
	}
	rec.mu.Lock()
	followed := append([]bool(nil), rec.followed...)
	rec.mu.Unlock()
	if len(followed) != 2 || !followed[0] || !followed[1] {
		t.Fatalf("take-ins from what was followed: %v, want [true true]", followed)
	}
	for name, d := range map[string][]byte{"A.b2": data, "B.b2": other} {
		ack := outboxAck(t, e, "acme", name)
		sum := sha256.Sum256(d)
		if ack.Status != gateway.StatusAccepted || ack.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("%s: acknowledgement %+v", name, ack)
		}
	}
}
