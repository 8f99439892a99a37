package referentials

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Publisher receives the diff of every new version (e.g. to drop it in the
// vendors' SFTP referentials/ folders, see WriteDiffJSONL). It is called
// after the version is durable; an error does not undo the version.
type Publisher interface {
	Publish(ctx context.Context, diff Diff) error
}

// DefaultMaxRemovalShare is the share of a table's entries a feed may remove
// without confirmation.
const DefaultMaxRemovalShare = 0.2

// Config of a Repo.
type Config struct {
	Store     Store            // required
	Now       func() time.Time // required: the clock (time.Now in production)
	Publisher Publisher        // optional
	// MaxRemovalShare: a feed removing more than this share of a table's
	// entries is refused with *RemovalError unless confirmed. 0 means
	// DefaultMaxRemovalShare; 1 or more disables the guard.
	MaxRemovalShare float64
	Domain          string       // AMO mail domain, default rss.fr
	Logger          *slog.Logger // optional
}

// Repo is the versioned referential. Reads (Current) are lock-free;
// imports are serialised.
type Repo struct {
	cfg Config
	mu  sync.Mutex // serialises imports
	cur atomic.Pointer[Snapshot]
}

// Open loads the latest stored version (or starts empty, version 0).
func Open(ctx context.Context, cfg Config) (*Repo, error) {
	if cfg.Store == nil || cfg.Now == nil {
		return nil, errorf(ErrStore, nil, "referentials.Open: Store and Now are required")
	}
	if cfg.MaxRemovalShare == 0 {
		cfg.MaxRemovalShare = DefaultMaxRemovalShare
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Repo{cfg: cfg}
	vs, err := cfg.Store.Versions(ctx)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		r.cur.Store(emptySnapshot())
		return r, nil
	}
	s, err := r.load(ctx, vs[len(vs)-1].ID)
	if err != nil {
		return nil, err
	}
	r.cur.Store(s)
	return r, nil
}

// Current returns the version in force. Routing takes one per decision.
func (r *Repo) Current() *Snapshot { return r.cur.Load() }

// ImportOptions tune one import.
type ImportOptions struct {
	// Confirm applies a feed even if it removes more than MaxRemovalShare.
	Confirm bool
}

// Result of an import.
type Result struct {
	Version   Version
	Diff      Diff
	Unchanged bool // the content equals the current version: no new version
}

// Import parses, validates and applies a feed as a new version. A feed with
// any bad line is refused whole with *ImportError (errors.Is ErrImport);
// a feed removing too much with *RemovalError. If the Publisher fails the
// version stays committed and the error is ErrPublish.
func (r *Repo) Import(ctx context.Context, feed Feed, opt ImportOptions) (Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	p, errs := parseFeed(feed, ParseOptions{Domain: r.cfg.Domain})
	cur := r.Current()
	next := cur.Data()
	var tables []Table
	for _, t := range allTables {
		if !p.tables[t] {
			continue
		}
		tables = append(tables, t)
		switch t {
		case TableAMO:
			next.AMO = p.data.AMO
		case TableAMC:
			next.AMC = p.data.AMC
		case TableConventions:
			next.Conventions = p.data.Conventions
		}
	}
	if len(errs) == 0 {
		errs = checkReferences(next)
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b LineError) int {
			return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
		})
		return Result{}, &ImportError{Source: feed.Source, Lines: errs}
	}
	canonical(&next)
	sum, err := hashData(next)
	if err != nil {
		return Result{}, errorf(ErrStore, err, "hash")
	}
	if sum == cur.Version.SHA256 {
		return Result{Version: cur.Version, Diff: Diff{From: cur.Version.ID, To: cur.Version.ID, Changes: []Change{}}, Unchanged: true}, nil
	}
	v := Version{
		ID: cur.Version.ID + 1, SHA256: sum, ImportedAt: r.cfg.Now().UTC(), Source: feed.Source,
		Tables: tables, Confirmed: opt.Confirm,
	}
	snap := newSnapshot(v, next)
	snap.Version.Counts = snap.counts()
	diff, err := DiffSnapshots(cur, snap)
	if err != nil {
		return Result{}, err
	}
	removed := map[Table]int{}
	prev := cur.counts()
	for _, t := range tables {
		n := diff.Count(t, Removed)
		if n == 0 {
			continue
		}
		removed[t] = n
		if !opt.Confirm && r.cfg.MaxRemovalShare < 1 && float64(n) > r.cfg.MaxRemovalShare*float64(prev[t]) {
			return Result{}, &RemovalError{Table: t, Removed: n, Previous: prev[t], Limit: r.cfg.MaxRemovalShare}
		}
	}
	if len(removed) > 0 {
		snap.Version.Removed = removed
	}
	if err := r.cfg.Store.Put(ctx, Record{Version: snap.Version, Data: next}); err != nil {
		return Result{}, err
	}
	r.cur.Store(snap)
	r.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "referential version imported",
		slog.Uint64("version", v.ID), slog.String("source", v.Source), slog.String("sha256", v.SHA256),
		slog.Int("added", diff.Count("", Added)), slog.Int("removed", diff.Count("", Removed)), slog.Int("changed", diff.Count("", Changed)))
	res := Result{Version: snap.Version, Diff: diff}
	if r.cfg.Publisher != nil {
		if err := r.cfg.Publisher.Publish(ctx, diff); err != nil {
			return res, errorf(ErrPublish, err, "version %d committed, publish failed", v.ID)
		}
	}
	return res, nil
}

func (r *Repo) load(ctx context.Context, id uint64) (*Snapshot, error) {
	if id == 0 {
		return emptySnapshot(), nil
	}
	if c := r.Current(); c != nil && c.Version.ID == id {
		return c, nil
	}
	rec, err := r.cfg.Store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return newSnapshot(rec.Version, rec.Data), nil
}

// Diff shows what changed from version v1 to version v2 (0 = empty).
// Backs `oct referential diff V1 V2`.
func (r *Repo) Diff(ctx context.Context, v1, v2 uint64) (Diff, error) {
	a, err := r.load(ctx, v1)
	if err != nil {
		return Diff{}, err
	}
	b, err := r.load(ctx, v2)
	if err != nil {
		return Diff{}, err
	}
	return DiffSnapshots(a, b)
}

// Changes is the diff from sinceVersion to the current version, for
// GET /v1/referentials/amc/changes?since=VERSION (filter with
// Diff.Only(TableAMC, TableConventions)). A since above the current version
// is ErrVersionNotFound.
func (r *Repo) Changes(ctx context.Context, sinceVersion uint64) (Diff, error) {
	cur := r.Current()
	if sinceVersion > cur.Version.ID {
		return Diff{}, errorf(ErrVersionNotFound, nil, "version %d is after the current version %d", sinceVersion, cur.Version.ID)
	}
	return r.Diff(ctx, sinceVersion, cur.Version.ID)
}

// Versions lists the stored versions, oldest first.
func (r *Repo) Versions(ctx context.Context) ([]Version, error) { return r.cfg.Store.Versions(ctx) }

// Publish sends the diff from sinceVersion to the current version to the
// Publisher again (after an ErrPublish).
func (r *Repo) Publish(ctx context.Context, sinceVersion uint64) error {
	if r.cfg.Publisher == nil {
		return nil
	}
	d, err := r.Changes(ctx, sinceVersion)
	if err != nil {
		return err
	}
	if err := r.cfg.Publisher.Publish(ctx, d); err != nil {
		return errorf(ErrPublish, err, "publish %d..%d", d.From, d.To)
	}
	return nil
}
