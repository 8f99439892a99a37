// Package sqlite is the Store on embedded SQLite (modernc.org/sqlite, pure
// Go), the default for a single node.
//
// Durability: the database runs in WAL mode with synchronous=FULL, so a
// transaction is fsync'd when COMMIT returns, and CreateFile, Commit, Lease
// and Extend return only after their COMMIT. One writer goroutine owns the
// only write connection; with group commit (the default) it takes every
// request waiting when it becomes free, applies each one inside its own
// SAVEPOINT (a request that fails is rolled back alone) and commits them all
// with one fsync. Reads use a separate pool of query-only connections, which
// WAL lets run alongside the writer.
package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/octgw/oct/gateway/store"
)

// Options configure Open.
type Options struct {
	// Path of the database file; its -wal and -shm files live beside it.
	Path string
	// Now is the clock (default time.Now). Event times, lease expiries and
	// default timestamps come from it.
	Now func() time.Time
	// NoGroupCommit turns group commit off: one transaction (and fsync) per
	// call. Group commit is on by default; this exists for benchmarks.
	NoGroupCommit bool
	// MaxBatch bounds how many requests share one transaction (default 256).
	MaxBatch int
	// Readers is the size of the read connection pool (default 4).
	Readers int
	// BusyTimeout is how long a connection waits for a lock held by another
	// process (default 5s).
	BusyTimeout time.Duration
	// Logger receives operational messages (default slog.Default()). No
	// record content is logged, only ids, counts and errors.
	Logger *slog.Logger
}

// Store is the SQLite journal. It implements store.Store.
type Store struct {
	now      func() time.Time
	log      *slog.Logger
	maxBatch int

	wdb   *sql.DB
	w     *sql.Conn
	stmts map[string]*sql.Stmt // writer goroutine only
	head  chainHead            // writer goroutine only
	rdb   *sql.DB

	batches, requests atomic.Int64

	reqs      chan *request
	quit      chan struct{}
	done      chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// chainHead is the last event of the log as the writer's transaction sees
// it, loaded once per batch and restored when a request rolls back.
type chainHead struct {
	ok   bool
	seq  int64
	hash string
}

// Stats are counters of the writer since Open.
type Stats struct {
	Batches  int64 // transactions committed or attempted
	Requests int64 // requests applied in them
}

// Stats returns the writer's counters; Requests/Batches is the mean batch
// size of group commit.
func (s *Store) Stats() Stats {
	return Stats{Batches: s.batches.Load(), Requests: s.requests.Load()}
}

// request is one write waiting for the writer goroutine.
type request struct {
	ctx   context.Context
	fn    func(w *wtx) error
	reply chan error // buffered: the writer never blocks on it
}

// Open opens (creating if needed) the database at o.Path, applies pending
// migrations and starts the writer.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Path == "" || strings.ContainsAny(o.Path, "?#") {
		return nil, fmt.Errorf("sqlite: invalid path %q", o.Path)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.NoGroupCommit {
		o.MaxBatch = 1
	}
	if o.Readers <= 0 {
		o.Readers = 4
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	common := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=synchronous(FULL)&_pragma=foreign_keys(0)",
		o.BusyTimeout.Milliseconds())

	s := &Store{
		now:      o.Now,
		log:      o.Logger.With("component", "store.sqlite"),
		maxBatch: o.MaxBatch,
		stmts:    map[string]*sql.Stmt{},
		reqs:     make(chan *request),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	var err error
	// The writer's page cache holds a whole group-committed batch: with the
	// 2 MB default, large batches spilled dirty pages into the WAL in the
	// middle of the transaction (a pwrite per page; profile in
	// docs/benchmarks.md).
	s.wdb, err = sql.Open("sqlite", o.Path+"?"+common+"&_pragma=journal_mode(WAL)&_pragma=cache_size(-65536)")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	fail := func(err error) (*Store, error) {
		if s.w != nil {
			_ = s.w.Close()
		}
		_ = s.wdb.Close()
		if s.rdb != nil {
			_ = s.rdb.Close()
		}
		return nil, err
	}
	if s.w, err = s.wdb.Conn(ctx); err != nil {
		return fail(fmt.Errorf("sqlite: open: %w", err))
	}
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fail(fmt.Errorf("sqlite: open: %w", err))
	}
	if !strings.EqualFold(mode, "wal") {
		return fail(fmt.Errorf("sqlite: open: journal_mode is %q, want wal", mode))
	}
	from, to, err := migrate(ctx, s.w)
	if err != nil {
		return fail(err)
	}
	if from != to {
		s.log.Info("schema migrated", "from", from, "to", to)
	}
	s.rdb, err = sql.Open("sqlite", o.Path+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		return fail(fmt.Errorf("sqlite: open readers: %w", err))
	}
	s.rdb.SetMaxOpenConns(o.Readers)
	s.rdb.SetMaxIdleConns(o.Readers)
	if err := s.rdb.PingContext(ctx); err != nil {
		return fail(fmt.Errorf("sqlite: open readers: %w", err))
	}
	go s.run()
	return s, nil
}

// Close stops the writer (requests already taken are committed and
// answered), then closes every connection. Later calls get store.ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.quit)
		<-s.done
		for _, st := range s.stmts {
			_ = st.Close()
		}
		errW := s.w.Close()
		errWDB := s.wdb.Close()
		errR := s.rdb.Close()
		s.closeErr = errors.Join(errW, errWDB, errR)
	})
	return s.closeErr
}

// Ping reports whether the store can serve.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	var one int
	if err := s.rdb.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return s.readErr(err)
	}
	return nil
}

// do hands fn to the writer goroutine and waits until its transaction is
// committed (or fn failed). If ctx ends while the request is already in the
// writer's hands, the caller gets ctx.Err() and the change may or may not
// have been applied.
func (s *Store) do(ctx context.Context, fn func(w *wtx) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request{ctx: ctx, fn: fn, reply: make(chan error, 1)}
	select {
	case s.reqs <- r:
	case <-s.quit:
		return store.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run is the writer goroutine.
func (s *Store) run() {
	defer close(s.done)
	batch := make([]*request, 0, s.maxBatch)
	for {
		select {
		case <-s.quit:
			return
		case r := <-s.reqs:
			batch = append(batch[:0], r)
		}
	gather:
		for len(batch) < s.maxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		s.runBatch(batch)
		clear(batch)
	}
}

// runBatch applies a batch of requests in one transaction, one SAVEPOINT
// each, commits, then answers every request.
func (s *Store) runBatch(batch []*request) {
	ctx := context.Background() // the writer finishes what it took, even on Close
	results := make([]error, len(batch))
	answer := func() {
		for i, r := range batch {
			r.reply <- results[i]
		}
	}
	failAll := func(err error) {
		_, _ = s.w.ExecContext(ctx, "ROLLBACK")
		s.head = chainHead{}
		for i := range results {
			if results[i] == nil {
				results[i] = err
			}
		}
		answer()
	}
	s.batches.Add(1)
	s.requests.Add(int64(len(batch)))
	s.head = chainHead{}
	if _, err := s.wexec("BEGIN IMMEDIATE"); err != nil {
		s.log.Error("begin failed", "err", err)
		for i := range results {
			results[i] = fmt.Errorf("sqlite: begin: %w", err)
		}
		answer()
		return
	}
	ok := 0
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		if _, err := s.wexec("SAVEPOINT req"); err != nil {
			failAll(fmt.Errorf("sqlite: savepoint: %w", err))
			return
		}
		before := s.head
		if err := s.apply(r); err != nil {
			results[i] = err
			s.head = before
			if _, rerr := s.wexec("ROLLBACK TO req"); rerr != nil {
				// The transaction itself is gone (I/O error, disk full...).
				s.log.Error("rollback to savepoint failed", "err", rerr)
				failAll(fmt.Errorf("sqlite: batch aborted: %w", rerr))
				return
			}
		} else {
			ok++
		}
		if _, err := s.wexec("RELEASE req"); err != nil {
			failAll(fmt.Errorf("sqlite: release: %w", err))
			return
		}
	}
	if ok == 0 {
		_, _ = s.w.ExecContext(ctx, "ROLLBACK")
		answer()
		return
	}
	if _, err := s.wexec("COMMIT"); err != nil {
		s.log.Error("commit failed", "err", err, "batch", len(batch))
		failAll(fmt.Errorf("sqlite: commit: %w", err))
		return
	}
	answer()
}

// apply runs one request's function; a panic in it fails that request
// instead of killing the writer (which would leave every caller waiting).
func (s *Store) apply(r *request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("write request panicked", "panic", fmt.Sprint(p))
			err = fmt.Errorf("sqlite: write request panicked: %v", p)
		}
	}()
	w := &wtx{s: s, now: s.now().UTC()}
	if err := r.fn(w); err != nil {
		return err
	}
	return w.flushDays()
}

// wtx is the writer's view of the transaction of one request.
type wtx struct {
	s   *Store
	now time.Time
	// days are the day counters this request adds to (tenant, kind, state
	// entered), written once per key when it succeeds (flushDays).
	days map[dayKey]int64
}

type dayKey struct{ tenant, kind, state string }

// stmt returns the writer's prepared statement for query (writer
// goroutine only).
func (s *Store) stmt(query string) (*sql.Stmt, error) {
	if st := s.stmts[query]; st != nil {
		return st, nil
	}
	st, err := s.w.PrepareContext(context.Background(), query)
	if err != nil {
		return nil, err
	}
	s.stmts[query] = st
	return st, nil
}

// wexec runs a statement on the write connection.
func (s *Store) wexec(query string, args ...any) (sql.Result, error) {
	st, err := s.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(context.Background(), args...)
}

func (w *wtx) stmt(query string) (*sql.Stmt, error) { return w.s.stmt(query) }

func (w *wtx) exec(query string, args ...any) (sql.Result, error) {
	st, err := w.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(context.Background(), args...)
}

func (w *wtx) queryRow(query string, args ...any) *sql.Row {
	st, err := w.stmt(query)
	if err != nil {
		// Let Scan report the error: run it unprepared.
		return w.s.w.QueryRowContext(context.Background(), query, args...)
	}
	return st.QueryRowContext(context.Background(), args...)
}

func (w *wtx) query(query string, args ...any) (*sql.Rows, error) {
	st, err := w.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(context.Background(), args...)
}

// appendEvent chains e after the last event and inserts it. Seq, Time,
// PrevHash and Hash are set here.
func (w *wtx) appendEvent(e store.Event) error {
	h := &w.s.head
	if !h.ok {
		err := w.queryRow(`SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1`).Scan(&h.seq, &h.hash)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			h.seq, h.hash = 0, store.GenesisHash
		case err != nil:
			return fmt.Errorf("sqlite: chain head: %w", err)
		}
		h.ok = true
	}
	e.Seq = h.seq + 1
	e.Time = w.now
	e.PrevHash = h.hash
	e.Hash = store.EventHash(h.hash, e)
	_, err := w.exec(`INSERT INTO events(seq, time, subject, type, from_state, to_state, actor, reason, data, prev_hash, hash)
		VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		e.Seq, tn(e.Time), e.Subject, e.Type, string(e.From), string(e.To), e.Actor, e.Reason, nullBytes(e.Data), e.PrevHash, e.Hash)
	if err != nil {
		return fmt.Errorf("sqlite: append event: %w", err)
	}
	h.seq, h.hash = e.Seq, e.Hash
	return nil
}

// readErr maps errors of the read pool after Close to store.ErrClosed.
func (s *Store) readErr(err error) error {
	if err == nil {
		return nil
	}
	if s.closed.Load() {
		return store.ErrClosed
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return fmt.Errorf("sqlite: %w", err)
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	var e *msqlite.Error
	if errors.As(err, &e) {
		c := e.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// dup turns a uniqueness violation into store.ErrDuplicate.
func dup(what, id string, err error) error {
	if isUnique(err) {
		return fmt.Errorf("sqlite: %s %s: %w", what, id, store.ErrDuplicate)
	}
	return fmt.Errorf("sqlite: %s %s: %w", what, id, err)
}

// tn stores a time as unix nanoseconds, the zero time as 0.
func tn(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// nt is the inverse of tn; times come back in UTC.
func nt(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// randomID is 128 random bits in hex, for job ids and lease tokens.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}
