package sftp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/intake/mailbox"
)

var b2 = []byte("000...fake B2 content for the fake intaker\r\n999\r\n")

func TestUploadAckReturns(t *testing.T) {
	e := startEnv(t, nil)
	c := e.client("acme")

	if err := put(t, c, "/inbox/FSE001.b2", b2); err != nil {
		t.Fatalf("upload: %v", err)
	}
	calls := e.intake.Calls()
	if len(calls) != 1 {
		t.Fatalf("intake calls = %d, want 1", len(calls))
	}
	got := calls[0]
	if got.tenant != "acme" || got.src.Channel != "sftp" || got.src.Name != "FSE001.b2" || !bytes.Equal(got.data, b2) || got.src.Remote == "" {
		t.Fatalf("intake call = %+v", got)
	}
	// The acknowledgement is in the outbox, the inbox is empty.
	f, err := c.Open("/outbox/FSE001.b2.ack.json")
	if err != nil {
		t.Fatalf("open ack: %v", err)
	}
	var ack gateway.Ack
	if err := json.NewDecoder(f).Decode(&ack); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if ack.ID != "F0001" || ack.Status != "accepted" || ack.Size != int64(len(b2)) || ack.Name != "FSE001.b2" {
		t.Fatalf("ack = %+v", ack)
	}
	if txt, ok := e.tenantFile("acme", "outbox/FSE001.b2.ack.txt"); !ok || !strings.Contains(txt, "F0001") {
		t.Fatalf("ack text = %q", txt)
	}
	if n := e.folderNames("acme", "inbox"); len(n) != 0 {
		t.Fatalf("inbox still holds %v", n)
	}
	// Same name again: the first acknowledgement is kept.
	if err := put(t, c, "/inbox/FSE001.b2", b2); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.tenantFile("acme", "outbox/FSE001.b2.F0002.ack.json"); !ok {
		t.Fatalf("second ack missing: %v", e.folderNames("acme", "outbox"))
	}

	// Returns dropped by the gateway are listed, read and removed by the vendor.
	arl := []byte("ARL content\r\n")
	if err := e.folders.Deliver(context.Background(), "acme", mailbox.Returns, "ARL-0001.txt", arl); err != nil {
		t.Fatal(err)
	}
	infos, err := c.ReadDir("/returns")
	if err != nil || len(infos) != 1 || infos[0].Name() != "ARL-0001.txt" {
		t.Fatalf("returns listing = %v, %v", infos, err)
	}
	rf, err := c.Open("returns/ARL-0001.txt") // relative path
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rf)
	rf.Close()
	if !bytes.Equal(data, arl) {
		t.Fatalf("return = %q", data)
	}
	if err := c.Remove("/returns/ARL-0001.txt"); err != nil {
		t.Fatal(err)
	}
	root, err := c.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range root {
		names = append(names, i.Name())
	}
	if !slices.Equal(names, mailbox.Names()) {
		t.Fatalf("root listing = %v", names)
	}
	// Deliveries only go to returns/ and referentials/.
	if err := e.folders.Deliver(context.Background(), "acme", mailbox.Inbox, "x", arl); !errors.Is(err, mailbox.ErrBadFolder) {
		t.Fatalf("deliver to inbox: %v", err)
	}
}

func TestTemporaryNameTakenInOnRename(t *testing.T) {
	e := startEnv(t, nil)
	c := e.client("acme")
	if err := put(t, c, "/inbox/LOT7.b2.part", b2); err != nil {
		t.Fatal(err)
	}
	if n := len(e.intake.Calls()); n != 0 {
		t.Fatalf("temporary file taken in (%d calls)", n)
	}
	if err := c.Rename("/inbox/LOT7.b2.part", "/inbox/LOT7.b2"); err != nil {
		t.Fatalf("rename: %v", err)
	}
	if calls := e.intake.Calls(); len(calls) != 1 || calls[0].src.Name != "LOT7.b2" {
		t.Fatalf("calls = %+v", calls)
	}
	if _, ok := e.tenantFile("acme", "outbox/LOT7.b2.ack.json"); !ok {
		t.Fatal("no ack after rename")
	}
	// POSIX rename (OpenSSH extension) too.
	if err := put(t, c, "/inbox/LOT8.tmp", b2); err != nil {
		t.Fatal(err)
	}
	if err := c.PosixRename("/inbox/LOT8.tmp", "/inbox/LOT8.b2"); err != nil {
		t.Fatalf("posix rename: %v", err)
	}
	if n := len(e.intake.Calls()); n != 2 {
		t.Fatalf("calls = %d", n)
	}
}

func TestWrongKeyRefusedAndSlowed(t *testing.T) {
	e := startEnv(t, nil)
	intruder := newSigner(t)
	for i := 1; i <= 3; i++ {
		if _, _, err := e.dial(intruder); err == nil {
			t.Fatal("unknown key logged in")
		}
		e.logs.waitLog(t, "sftp login failed")
	}
	e.srv.mu.Lock()
	d := e.srv.fails.Delay("127.0.0.1", e.clock.Now())
	e.srv.mu.Unlock()
	if d != 4*time.Millisecond {
		t.Fatalf("delay after 3 failures = %v, want 4ms (1, 2, 4 ms, bounded)", d)
	}
	// A good login from the address clears the penalty.
	e.client("acme")
	e.srv.mu.Lock()
	d = e.srv.fails.Delay("127.0.0.1", e.clock.Now())
	e.srv.mu.Unlock()
	if d != 0 {
		t.Fatalf("delay after a good login = %v", d)
	}
}

func TestConfinement(t *testing.T) {
	e := startEnv(t, nil)
	// beta has a file in its outbox and its inbox; acme must never see them.
	if err := e.folders.Deliver(context.Background(), "beta", mailbox.Returns, "secret.txt", []byte("beta only")); err != nil {
		t.Fatal(err)
	}
	c := e.client("acme")
	reads := []string{
		"/../beta/returns/secret.txt", "../../beta/returns/secret.txt", "/etc/passwd", "../../../../etc/passwd",
		"/returns/../../beta/returns/secret.txt", "/beta/returns/secret.txt", "/inbox/x", "/returns/.tmp-x",
		"/returns/a/b", "/" + strings.Repeat("returns/", 3),
	}
	for _, p := range reads {
		if f, err := c.Open(p); err == nil {
			b, _ := io.ReadAll(f)
			f.Close()
			t.Errorf("read %q succeeded: %q", p, b)
		}
	}
	writes := []string{
		"/outbox/x.b2", "/returns/x.b2", "/x.b2", "/../beta/inbox/x.b2", "../beta/inbox/x.b2", "/inbox/../../beta/inbox/x.b2",
		"/inbox/a\x01b", "/inbox/a\nb", "/inbox/.hidden", "/inbox/sub/x.b2", "/inbox/" + strings.Repeat("n", 300), "/tmp/x",
	}
	for _, p := range writes {
		if err := put(t, c, p, b2); err == nil {
			t.Errorf("write %q succeeded", p)
		}
	}
	if err := c.Mkdir("/inbox/sub"); err == nil {
		t.Error("mkdir succeeded")
	}
	if err := c.Symlink("/etc/passwd", "/inbox/link"); err == nil {
		t.Error("symlink succeeded")
	}
	if err := put(t, c, "/inbox/keep.part", b2); err != nil {
		t.Fatal(err)
	}
	if err := c.Link("/inbox/keep.part", "/inbox/hard"); err == nil {
		t.Error("hard link succeeded")
	}
	if err := c.Rename("/inbox/keep.part", "/outbox/keep"); err == nil {
		t.Error("rename out of the inbox succeeded")
	}
	if err := c.Rename("/inbox/keep.part", "/../beta/inbox/keep.b2"); err == nil {
		t.Error("rename into another tenant succeeded")
	}
	if _, err := c.ReadDir("/../beta/returns"); err == nil {
		t.Error("listing another tenant succeeded")
	}
	if _, err := c.ReadLink("/inbox/keep.part"); err == nil {
		t.Error("readlink succeeded")
	}
	if n := len(e.intake.Calls()); n != 0 {
		t.Fatalf("%d files taken in", n)
	}
	if got := e.folderNames("beta", "inbox"); len(got) != 0 {
		t.Fatalf("beta inbox = %v", got)
	}
	// Nothing appeared outside the tenant trees.
	top, _ := os.ReadDir(filepath.Join(e.dir, "tenants"))
	for _, d := range top {
		if d.Name() != "acme" && d.Name() != "beta" {
			t.Errorf("unexpected %s in the data dir", d.Name())
		}
	}
}

// cutUpload writes part of an upload, checks the bytes reached the server
// (stat goes through the same session), then cuts the TCP connection
// without SSH_FXP_CLOSE and waits for the server to discard the file.
func (e *env) cutUpload(t *testing.T, name string, part []byte) {
	t.Helper()
	sc, raw, err := e.dial(e.keys["acme"])
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	c, err := sftp.NewClient(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := c.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(part); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Stat(name); err != nil || st.Size() != int64(len(part)) {
		t.Fatalf("stat = %v, %v", st, err)
	}
	raw.Close()
	e.logs.waitLog(t, "sftp upload cut: partial file discarded")
}

// TestDroppedMidUpload cuts the TCP connection while a file is open for
// writing: the partial file is discarded and nothing is taken in.
func TestDroppedMidUpload(t *testing.T) {
	e := startEnv(t, nil)
	e.cutUpload(t, "/inbox/BIG.b2", bytes.Repeat([]byte("x"), 100_000))
	if n := len(e.intake.Calls()); n != 0 {
		t.Fatalf("%d files taken in", n)
	}
	if n := e.folderNames("acme", "inbox"); len(n) != 0 {
		t.Fatalf("inbox holds %v", n)
	}
	if n := e.folderNames("acme", "outbox"); len(n) != 0 {
		t.Fatalf("outbox holds %v", n)
	}
	// The server is still fine.
	if err := put(t, e.client("acme"), "/inbox/OK.b2", b2); err != nil {
		t.Fatal(err)
	}
}

func TestLimits(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		e := startEnv(t, func(c *Config) {
			c.Limits = func(string) Limits { return Limits{MaxFileSize: 16} }
		})
		c := e.client("acme")
		err := put(t, c, "/inbox/big.b2", bytes.Repeat([]byte("y"), 64))
		if err == nil || !strings.Contains(err.Error(), "too-large") {
			t.Fatalf("upload above the size limit: %v", err)
		}
		if n := len(e.intake.Calls()); n != 0 {
			t.Fatal("too large file taken in")
		}
		js, ok := e.tenantFile("acme", "errors/big.b2.error.json")
		if !ok || !strings.Contains(js, `"code": "too-large"`) {
			t.Fatalf("refusal = %q", js)
		}
		if n := e.folderNames("acme", "inbox"); len(n) != 0 {
			t.Fatalf("inbox holds %v", n)
		}
	})
	t.Run("rate", func(t *testing.T) {
		e := startEnv(t, func(c *Config) {
			c.Limits = func(string) Limits { return Limits{FilesPerMinute: 2} }
		})
		c := e.client("acme")
		for i := range 2 {
			if err := put(t, c, "/inbox/f"+string(rune('0'+i)), b2); err != nil {
				t.Fatal(err)
			}
		}
		if err := put(t, c, "/inbox/f3", b2); err == nil || !strings.Contains(err.Error(), "rate-limited") {
			t.Fatalf("third file in a minute: %v", err)
		}
		// beta has its own budget.
		if err := put(t, e.client("beta"), "/inbox/b", b2); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Minute)
		if err := put(t, c, "/inbox/f3", b2); err != nil {
			t.Fatalf("after a minute: %v", err)
		}
	})
	t.Run("sessions", func(t *testing.T) {
		e := startEnv(t, func(c *Config) {
			c.Limits = func(string) Limits { return Limits{MaxSessions: 1} }
		})
		e.client("acme")
		sc, _, err := e.dial(e.keys["acme"])
		if err == nil {
			_, err = sftp.NewClient(sc)
			sc.Close()
		}
		if err == nil {
			t.Fatal("second session accepted")
		}
		e.client("beta")
	})
	t.Run("quota", func(t *testing.T) {
		e := startEnv(t, func(c *Config) {
			c.Limits = func(string) Limits { return Limits{DiskQuota: 2000} }
		})
		if err := e.folders.Deliver(context.Background(), "acme", mailbox.Returns, "r1", bytes.Repeat([]byte("r"), 1990)); err != nil {
			t.Fatal(err)
		}
		c := e.client("acme")
		if err := put(t, c, "/inbox/a.b2", bytes.Repeat([]byte("a"), 20)); err == nil || !strings.Contains(err.Error(), "quota") {
			t.Fatalf("upload above the quota: %v", err)
		}
		if err := c.Remove("/returns/r1"); err != nil {
			t.Fatal(err)
		}
		if err := put(t, c, "/inbox/a.b2", bytes.Repeat([]byte("a"), 20)); err != nil {
			t.Fatalf("after cleaning up: %v", err)
		}
	})
}

func TestIntakeErrors(t *testing.T) {
	e := startEnv(t, nil)
	c := e.client("acme")
	// Temporary: nothing kept, the client is told to retry.
	e.intake.setErr(gateway.ErrUnavailable)
	err := put(t, c, "/inbox/A.b2", b2)
	if err == nil || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("unavailable: %v", err)
	}
	if n := e.folderNames("acme", "inbox"); len(n) != 0 {
		t.Fatalf("inbox holds %v", n)
	}
	if n := e.folderNames("acme", "errors"); len(n) != 0 {
		t.Fatalf("errors holds %v", n)
	}
	// Refused: the file and the reason land in errors/.
	e.intake.setErr(nil)
	if err := put(t, c, "/inbox/EMPTY.b2", nil); err == nil {
		t.Fatal("empty file accepted")
	}
	if got, ok := e.tenantFile("acme", "errors/EMPTY.b2.error.json"); !ok || !strings.Contains(got, `"code": "empty"`) {
		t.Fatalf("refusal json = %q", got)
	}
	if _, ok := e.tenantFile("acme", "errors/EMPTY.b2"); !ok {
		t.Fatal("refused file not kept")
	}
	if _, ok := e.tenantFile("acme", "errors/EMPTY.b2.error.txt"); !ok {
		t.Fatal("refusal text missing")
	}
	// The vendor can fetch the reason.
	f, err := c.Open("/errors/EMPTY.b2.error.txt")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestShutdownStopsEverything(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.IdleTimeout = time.Hour })
	c := e.client("acme")
	f, err := c.OpenFile("/inbox/open.b2", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b2); err != nil {
		t.Fatal(err)
	}
	e.client("beta")
	e.stop() // checks Serve returned and no server goroutine is left
	if n := len(e.intake.Calls()); n != 0 {
		t.Fatalf("%d files taken in at shutdown", n)
	}
	if n := e.folderNames("acme", "inbox"); len(n) != 0 {
		t.Fatalf("inbox holds %v", n)
	}
}

func TestIdleTimeout(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.IdleTimeout = 100 * time.Millisecond })
	sc, _, err := e.dial(e.keys["acme"])
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	waited := make(chan error, 1)
	go func() { waited <- sc.Wait() }()
	select {
	case <-waited: // the server closed the idle connection
	case <-time.After(20 * time.Second):
		t.Fatal("idle connection not closed")
	}
	e.logs.waitLog(t, "sftp connection closed: idle")
}

func TestHostKeyPersisted(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateHostKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateHostKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1.PublicKey().Marshal(), k2.PublicKey().Marshal()) || k1.PublicKey().Type() != "ssh-ed25519" {
		t.Fatal("host key changed between starts")
	}
	st, err := os.Stat(filepath.Join(dir, HostKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("host key mode = %v, %v", st.Mode(), err)
	}
	if err := os.Chmod(filepath.Join(dir, HostKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateHostKey(dir); err == nil {
		t.Fatal("world-readable host key accepted")
	}
	if got := KnownHostsLine("127.0.0.1:2222", k1.PublicKey()); !strings.HasPrefix(got, "[127.0.0.1]:2222 ssh-ed25519 AAAA") {
		t.Fatalf("known_hosts line = %q", got)
	}
}

func TestKeyRing(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	r, err := NewKeyRing(map[string][]string{"t1": {authorizedLine(a), `restrict,from="10.0.0.0/8" ` + authorizedLine(b)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []ssh.Signer{a, b} {
		if tn, err := r.TenantForKey(context.Background(), s.PublicKey()); err != nil || tn != "t1" {
			t.Fatalf("rotation key: %q %v", tn, err)
		}
	}
	if _, err := NewKeyRing(map[string][]string{"t1": {authorizedLine(a)}, "t2": {authorizedLine(a)}}); err == nil {
		t.Fatal("key shared by two tenants accepted")
	}
	if err := r.Replace(map[string][]string{"t1": {authorizedLine(b)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.TenantForKey(context.Background(), a.PublicKey()); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("removed key: %v", err)
	}
}
