package sftp

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/intake/mailbox"
	"github.com/octgw/oct/internal/testenv"
)

// fakeIntaker records every call and answers like the gateway would.
type fakeIntaker struct {
	mu    sync.Mutex
	calls []intakeCall
	err   error // returned instead of an ack when set
}

type intakeCall struct {
	tenant string
	src    gateway.Source
	data   []byte
}

func (f *fakeIntaker) Intake(ctx context.Context, tenant string, src gateway.Source, r io.Reader) (gateway.Ack, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return gateway.Ack{}, err
	}
	f.mu.Lock()
	f.calls = append(f.calls, intakeCall{tenant, src, data})
	n, ferr := len(f.calls), f.err
	f.mu.Unlock()
	if ferr != nil {
		return gateway.Ack{}, ferr
	}
	if len(data) == 0 {
		return gateway.Ack{}, gateway.ErrEmpty
	}
	sum := sha256.Sum256(data)
	return gateway.Ack{
		ID: fmt.Sprintf("F%04d", n), Status: gateway.StatusAccepted, Format: "b2", Name: src.Name,
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)), Received: "2026-01-02T03:04:05Z",
		Errors: nil, Stats: gateway.AckStats{Records: 3, Lots: 1, Invoices: 1},
	}, nil
}

func (f *fakeIntaker) Calls() []intakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]intakeCall(nil), f.calls...)
}

func (f *fakeIntaker) setErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// logHook forwards log messages to a channel so tests can wait for events
// instead of sleeping.
type logHook struct {
	ch chan string
}

func (h *logHook) Enabled(context.Context, slog.Level) bool { return true }
func (h *logHook) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.ch <- r.Message:
	default:
	}
	return nil
}
func (h *logHook) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logHook) WithGroup(string) slog.Handler      { return h }

// waitLog waits (bounded) for a log message.
func (h *logHook) waitLog(t *testing.T, msg string) {
	t.Helper()
	timeout := time.NewTimer(20 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case m := <-h.ch:
			if m == msg {
				return
			}
		case <-timeout.C:
			t.Fatalf("no log %q", msg)
		}
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one running server with two tenants ("acme", "beta").
type env struct {
	t       *testing.T
	dir     string // data dir: folders under dir/tenants
	srv     *Server
	addr    string
	hostKey ssh.PublicKey
	keys    map[string]ssh.Signer // tenant -> client key
	ring    *KeyRing
	intake  *fakeIntaker
	folders *mailbox.Folders
	logs    *logHook
	clock   *fakeClock
	stop    func() // shuts the server down, checks its goroutines ended
}

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func authorizedLine(s ssh.Signer) string { return string(ssh.MarshalAuthorizedKey(s.PublicKey())) }

func startEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, keys: map[string]ssh.Signer{}, intake: &fakeIntaker{},
		logs: &logHook{ch: make(chan string, 256)}, clock: &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	e.keys["acme"] = newSigner(t)
	e.keys["beta"] = newSigner(t)
	ring, err := NewKeyRing(map[string][]string{
		"acme": {authorizedLine(e.keys["acme"])},
		"beta": {"# rotated key below", authorizedLine(e.keys["beta"])},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.ring = ring
	hk, err := LoadOrCreateHostKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	e.hostKey = hk.PublicKey()
	e.folders, err = mailbox.New(filepath.Join(dir, "tenants"), mailbox.WithClock(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		HostKey: hk, Folders: e.folders, Tenants: ring, Intaker: e.intake,
		Logger: slog.New(e.logs), Now: e.clock.Now,
		LoginDelay: time.Millisecond, MaxLoginDelay: 4 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	e.srv, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.addr, e.stop = testenv.ServeLoopback(t, e.srv.Serve, e.srv.running.Load)
	return e
}

// dial logs in with signer over a fresh TCP connection; the net.Conn is
// returned so a test can cut it.
func (e *env) dial(signer ssh.Signer) (*ssh.Client, net.Conn, error) {
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		return nil, nil, err
	}
	cfg := &ssh.ClientConfig{
		User:            "vendor",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(e.hostKey),
		Timeout:         10 * time.Second,
	}
	sc, chans, reqs, err := ssh.NewClientConn(c, e.addr, cfg)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return ssh.NewClient(sc, chans, reqs), c, nil
}

func (e *env) client(tenant string) *sftp.Client {
	e.t.Helper()
	sc, _, err := e.dial(e.keys[tenant])
	if err != nil {
		e.t.Fatalf("dial %s: %v", tenant, err)
	}
	c, err := sftp.NewClient(sc)
	if err != nil {
		sc.Close()
		e.t.Fatalf("sftp %s: %v", tenant, err)
	}
	e.t.Cleanup(func() { c.Close(); sc.Close() })
	return c
}

// tenantFile reads a file of a tenant's tree on disk ("" if missing).
func (e *env) tenantFile(tenant, rel string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(e.dir, "tenants", tenant, rel))
	if err != nil {
		return "", false
	}
	return string(b), true
}

func (e *env) folderNames(tenant, folder string) []string {
	ents, err := os.ReadDir(filepath.Join(e.dir, "tenants", tenant, folder))
	if err != nil {
		return nil
	}
	var out []string
	for _, en := range ents {
		out = append(out, en.Name())
	}
	return out
}

func put(t *testing.T, c *sftp.Client, name string, data []byte) error {
	t.Helper()
	f, err := c.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
