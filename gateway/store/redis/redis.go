// Package redis is the Store on Redis 7 (go-redis v9), for several gateway
// nodes sharing one journal. It passes the same conformance suite
// (storetest) as the SQLite store; docs/store-redis.md describes the key
// layout, the atomicity and durability guarantees and how to configure
// Redis.
//
// Atomicity: every write (CreateFile, Commit) is one Lua script that first
// validates the whole Change (compare-and-set of states, unique keys, job
// leases) and then applies it. The hash chain of the event log is computed
// in Go (Lua has no SHA-256) from the log head read just before; the script
// refuses to write ("RETRY") if the head moved in between, and the store
// reads again and recomputes. Within one process writes are serialised, so
// retries happen only when another node wrote at the same moment.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/octgw/oct/gateway/store"
)

// Options configure Open.
type Options struct {
	// Addr of the Redis server (host:port) when Client is nil. The client
	// made from it has go-redis' command retries off: a write script must
	// never run twice because its reply was lost.
	Addr string
	// Client is an existing client (a *redis.Client, a ClusterClient, a
	// failover client...). The store does not close it. Its MaxRetries
	// should be -1 for the reason above.
	Client goredis.UniversalClient
	// Prefix namespaces the keys: every key is "{Prefix}:..." so that the
	// whole store lives in one Cluster slot and several stores (tests,
	// tenants of a shared server) can share one server. Default "oct".
	Prefix string
	// Now is the clock (default time.Now). Event times, lease expiries and
	// default timestamps come from it.
	Now func() time.Time
	// Logger receives operational messages (default slog.Default()). No
	// record content is logged, only ids, counts and errors.
	Logger *slog.Logger
	// RequireFsyncAlways makes Open fail unless the server runs with
	// appendonly yes and appendfsync always, the only configuration in which
	// an acknowledged write survives a crash of the Redis host. Without it,
	// Open only logs a warning.
	RequireFsyncAlways bool
	// MaxRetries bounds how many times a write is recomputed because another
	// node moved the log head in between (default 1000).
	MaxRetries int
}

// Store is the Redis journal. It implements store.Store.
type Store struct {
	c       goredis.UniversalClient
	own     bool // c was made by Open: Close closes it
	p       string
	now     func() time.Time
	log     *slog.Logger
	retries int

	wsem      chan struct{} // one write at a time in this process
	quit      chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	conflicts atomic.Int64
}

var _ store.Store = (*Store)(nil)

// Open connects, checks that the server answers and how durable it is, and
// returns the store. It creates nothing on the server: keys appear with the
// first write.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Client == nil && o.Addr == "" {
		return nil, fmt.Errorf("redis: open: Addr or Client is required")
	}
	if o.Prefix == "" {
		o.Prefix = "oct"
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, fmt.Errorf("redis: open: prefix %q may not contain braces", o.Prefix)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 1000
	}
	s := &Store{
		c:       o.Client,
		p:       "{" + o.Prefix + "}:",
		now:     o.Now,
		log:     o.Logger.With("component", "store.redis"),
		retries: o.MaxRetries,
		wsem:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
	}
	if s.c == nil {
		s.c = goredis.NewClient(&goredis.Options{Addr: o.Addr, Protocol: 3, MaxRetries: -1})
		s.own = true
	}
	fail := func(err error) (*Store, error) {
		if s.own {
			_ = s.c.Close()
		}
		return nil, err
	}
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fail(fmt.Errorf("redis: open: %w", err))
	}
	if err := s.checkDurability(ctx, o.RequireFsyncAlways); err != nil {
		return fail(err)
	}
	// Load the scripts (a restarted server forgets them; Run falls back to
	// EVAL then).
	for _, sc := range []*goredis.Script{applyScript, leaseScript, extendScript} {
		if err := sc.Load(ctx, s.c).Err(); err != nil {
			return fail(fmt.Errorf("redis: open: load script: %w", err))
		}
	}
	return s, nil
}

// checkDurability reads the AOF settings. CONFIG may be disabled (managed
// services): then only RequireFsyncAlways makes it an error.
func (s *Store) checkDurability(ctx context.Context, require bool) error {
	cfg, err := s.c.ConfigGet(ctx, "append*").Result()
	if err != nil {
		if require {
			return fmt.Errorf("redis: open: cannot check appendfsync: %w", err)
		}
		s.log.Warn("cannot read the AOF configuration; durability unknown", "err", err)
		return nil
	}
	if cfg["appendonly"] == "yes" && cfg["appendfsync"] == "always" {
		return nil
	}
	if require {
		return fmt.Errorf("redis: open: server has appendonly=%q appendfsync=%q, want yes and always",
			cfg["appendonly"], cfg["appendfsync"])
	}
	s.log.Warn("acknowledged writes may be lost if the Redis host crashes",
		"appendonly", cfg["appendonly"], "appendfsync", cfg["appendfsync"])
	return nil
}

// Close waits for the write in progress, if any, then closes the client if
// Open made it. Later calls get store.ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.quit)
		s.wsem <- struct{}{} // the write in progress, if any, finishes first
		if s.own {
			s.closeErr = s.c.Close()
		}
	})
	return s.closeErr
}

// Ping reports whether the store can serve.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if err := s.c.Ping(ctx).Err(); err != nil {
		return s.rerr("ping", err)
	}
	return nil
}

// Conflicts counts the writes recomputed because another writer moved the
// log head (or created a record) between the read and the script.
func (s *Store) Conflicts() int64 { return s.conflicts.Load() }

// k is the full name of a key.
func (s *Store) k(suffix string) string { return s.p + suffix }

// rerr wraps an error of the client: store.ErrClosed after Close,
// store.ErrNotFound for a missing key, the context's error as is.
func (s *Store) rerr(op string, err error) error {
	if err == nil {
		return nil
	}
	if s.closed.Load() {
		return store.ErrClosed
	}
	if errors.Is(err, goredis.Nil) {
		return store.ErrNotFound
	}
	return fmt.Errorf("redis: %s: %w", op, err)
}

// start is the common preamble of every call.
func (s *Store) start(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return ctx.Err()
}

// randomID is 128 random bits in hex, for job ids and lease tokens.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}
