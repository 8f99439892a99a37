package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Redis is a redis-server started for a test (docs/components.md §6): bound
// to 127.0.0.1 on a free port, no RDB snapshots, AOF on, every file under
// Dir. Readiness is PING answered by PONG (not an open port: a server
// loading its AOF answers -LOADING).
type Redis struct {
	Addr string // 127.0.0.1:PORT
	Port int
	Dir  string
	Proc *Proc

	bin  string
	opts RedisOptions
}

// RedisOptions tune StartRedis.
type RedisOptions struct {
	// AppendFsync is the AOF fsync policy: "always" (durable before the
	// reply), "everysec" (Redis' default) or "no". Default "everysec".
	AppendFsync string
	// Dir reuses an existing data directory (a restart on the same AOF).
	// Default: a new temporary directory.
	Dir string
}

// StartRedis runs redis-server in the foreground for the test, waits for
// PONG and stops it by PID (SIGTERM, then waiting for the exit, ≈2 s with
// AOF) when the test ends. It skips unless OCT_INTEGRATION=1, and skips (fails
// under CI) when redis-server is missing: install the Debian package
// redis-server.
func StartRedis(t testing.TB, o RedisOptions) *Redis {
	t.Helper()
	Integration(t)
	bin := Need(t, "redis-server")[0]
	if o.AppendFsync == "" {
		o.AppendFsync = "everysec"
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	port := FreePort(t)
	r := &Redis{Addr: "127.0.0.1:" + strconv.Itoa(port), Port: port, Dir: o.Dir, bin: bin, opts: o}
	r.start(t)
	return r
}

func (r *Redis) start(t testing.TB) {
	t.Helper()
	args := []string{
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(r.Port),
		"--protected-mode", "yes",
		"--save", "",
		"--appendonly", "yes",
		"--appendfsync", r.opts.AppendFsync,
		"--dir", r.Dir,
		"--logfile", filepath.Join(r.Dir, "redis.log"),
		"--daemonize", "no",
	}
	r.Proc = Start(t, Spec{
		Name:         "redis-server",
		Path:         r.bin,
		Args:         args,
		Dir:          r.Dir,
		Ready:        PingReady(r.Addr),
		ReadyTimeout: 30 * time.Second, // a long AOF takes a while to load
		StopTimeout:  20 * time.Second,
	})
}

// Stop sends SIGTERM and waits until the process has exited (Redis flushes
// and fsyncs its AOF first).
func (r *Redis) Stop() { r.Proc.Stop(0, 20*time.Second) }

// Restart stops the server (if still running) and starts a new one on the
// same port and data directory, waiting for PONG, i.e. until the AOF is
// loaded.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	r.Stop()
	r.start(t)
}

// Client returns a go-redis client for the server, closed when the test ends.
func (r *Redis) Client(t testing.TB) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: r.Addr, Protocol: 3})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// LogTail returns the server's log file (for failure messages).
func (r *Redis) LogTail() string {
	b, err := os.ReadFile(filepath.Join(r.Dir, "redis.log"))
	if err != nil {
		return err.Error()
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// PingReady is a readiness probe for Redis: PING answered by PONG. While
// Redis loads its AOF it answers -LOADING, which is not ready.
func PingReady(addr string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
		defer c.Close()
		pong, err := c.Ping(ctx).Result()
		if err != nil {
			return err
		}
		if pong != "PONG" {
			return fmt.Errorf("redis answered %q: %w", pong, ErrNotReady)
		}
		return nil
	}
}
