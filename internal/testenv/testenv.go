// Package testenv starts real servers for integration tests: each one from a
// fresh temporary directory, with a readiness probe, stopped by PID and
// waited for when the test ends. Integration tests run when OCT_INTEGRATION=1
// (scripts/test sets it; CI always runs them) and skip with a clear message
// naming what is missing otherwise.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Integration skips t unless OCT_INTEGRATION=1.
func Integration(t testing.TB) {
	t.Helper()
	if os.Getenv("OCT_INTEGRATION") != "1" {
		t.Skip("integration test: set OCT_INTEGRATION=1 (scripts/test does) to run it against real servers")
	}
}

// Need skips t when one of the binaries is not on PATH (or at the absolute
// path given) and returns their resolved paths. Under CI (CI=true) a missing
// binary fails the test instead: scripts/test installs everything there.
func Need(t testing.TB, bins ...string) []string {
	t.Helper()
	out := make([]string, len(bins))
	for i, b := range bins {
		p, err := exec.LookPath(b)
		if err != nil {
			msg := fmt.Sprintf("%s not found: install it (scripts/test installs the Debian packages when run as root)", b)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		out[i] = p
	}
	return out
}

// NeedRoot skips t unless the process runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, daemons dropping privileges)")
	}
}

// Proc is a started server process.
type Proc struct {
	Name string
	Dir  string
	Cmd  *exec.Cmd
	Log  *SyncBuffer

	once sync.Once
	done chan struct{}
	err  error
}

// Spec describes a process to start.
type Spec struct {
	Name  string
	Path  string
	Args  []string
	Env   []string // added to os.Environ()
	Dir   string   // working directory ("" = a new temp dir)
	Ready func(ctx context.Context) error
	// ReadyTimeout bounds the readiness probe (default 15s).
	ReadyTimeout time.Duration
	// StopSignal is sent first at cleanup (default SIGTERM), then SIGKILL
	// after StopTimeout (default 10s).
	StopSignal  syscall.Signal
	StopTimeout time.Duration
}

// Start runs the process, waits for its readiness probe and registers its
// stop with t.Cleanup. Its combined output is kept in Log and printed when
// the test fails.
func Start(t testing.TB, s Spec) *Proc {
	t.Helper()
	if s.Dir == "" {
		s.Dir = t.TempDir()
	}
	p := &Proc{Name: s.Name, Dir: s.Dir, Log: &SyncBuffer{}, done: make(chan struct{})}
	p.Cmd = exec.Command(s.Path, s.Args...)
	p.Cmd.Dir = s.Dir
	p.Cmd.Env = append(os.Environ(), s.Env...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Log, p.Log
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", s.Name, err)
	}
	go func() { p.err = p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop(s.StopSignal, s.StopTimeout)
		if t.Failed() {
			t.Logf("--- %s output:\n%s", s.Name, p.Log.String())
		}
	})
	if s.Ready != nil {
		if s.ReadyTimeout == 0 {
			s.ReadyTimeout = 15 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.ReadyTimeout)
		defer cancel()
		if err := Poll(ctx, 10*time.Millisecond, func() (bool, error) {
			select {
			case <-p.done:
				return false, fmt.Errorf("%s exited before it was ready: %v", s.Name, p.err)
			default:
			}
			return s.Ready(ctx) == nil, nil
		}); err != nil {
			t.Fatalf("%s not ready: %v\n%s", s.Name, err, p.Log.String())
		}
	}
	return p
}

// Exited is closed when the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// Stop signals the process group and waits for the exit, escalating to
// SIGKILL after the timeout. Safe to call more than once.
func (p *Proc) Stop(sig syscall.Signal, timeout time.Duration) {
	p.once.Do(func() {
		if sig == 0 {
			sig = syscall.SIGTERM
		}
		if timeout == 0 {
			timeout = 10 * time.Second
		}
		_ = syscall.Kill(-p.Cmd.Process.Pid, sig)
		select {
		case <-p.done:
		case <-time.After(timeout):
			_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
}

// Kill sends SIGKILL to the process (not its group's children) and waits:
// the crash tests' kill -9.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Poll calls f every interval until it reports true, returns an error, or
// ctx ends. A bounded wait for a condition, never a bare sleep.
func Poll(ctx context.Context, every time.Duration, f func() (bool, error)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("condition not met: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TCPReady is a readiness probe: the address accepts connections.
func TCPReady(addr string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// GoBuild builds a main package of this module into a temp dir and returns
// the binary path (once per test binary and package path).
func GoBuild(t testing.TB, pkg string, tags ...string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := pkg + fmt.Sprint(tags)
	if p, ok := built[key]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "oct-build-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	args := []string{"build", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", joinComma(tags))
	}
	if os.Getenv("OCT_BUILD_RACE") == "1" {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, stderr.String())
	}
	built[key] = out
	return out
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

func joinComma(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(x)
	}
	return b.String()
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Contains reports whether the output holds sub.
func (s *SyncBuffer) Contains(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Contains(s.b.Bytes(), []byte(sub))
}

// ErrNotReady is what probes return while a server is starting.
var ErrNotReady = errors.New("not ready")

// Itoa is strconv.Itoa, for building command lines.
func Itoa(i int) string { return strconv.Itoa(i) }
