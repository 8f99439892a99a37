package fhir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/octgw/oct/formats/certificate"
	"github.com/octgw/oct/gateway/deliver"
	dhttps "github.com/octgw/oct/gateway/deliver/https"
	"github.com/octgw/oct/internal/durable"
)

// Handler receives each Task of an SSA feed, raw (a FHIR R4 Task JSON),
// with the name of the feed it came from. The Poller calls it at least
// once per Task (again after a crash or an error before the cursor was
// saved): it must be idempotent. A nil error lets the cursor pass the
// Task; an error stops this feed's round, and the Task comes again at the
// next round (a Task that can never be handled must be set aside by the
// handler, which then returns nil).
type Handler interface {
	Handle(ctx context.Context, source string, raw []byte) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, source string, raw []byte) error

// Handle implements Handler.
func (f HandlerFunc) Handle(ctx context.Context, source string, raw []byte) error {
	return f(ctx, source, raw)
}

// Cursor is where a feed was read up to: every Task last updated before At
// was handled, and so were those at At whose keys are in Seen (ties: several
// Tasks can share one instant, and a page can end among them).
type Cursor struct {
	At   time.Time `json:"at"`
	Seen []string  `json:"seen,omitempty"` // keys (sha-256 of the raw Task) handled at At
}

// CursorStore persists the cursor of each feed.
type CursorStore interface {
	// Load returns the cursor of source, the zero Cursor when none was
	// saved.
	Load(ctx context.Context, source string) (Cursor, error)
	Save(ctx context.Context, source string, c Cursor) error
}

// FileCursors is a CursorStore with one JSON file per feed under Dir
// (<Dir>/<sha-256 of the source name, 16 hex>.json), written to a temporary
// file, fsynced and renamed into place, then the directory fsynced.
type FileCursors struct{ Dir string }

func (f FileCursors) path(source string) string { return filepath.Join(f.Dir, cursorName(source)) }

func cursorName(source string) string {
	sum := sha256.Sum256([]byte(source))
	return "ssa-cursor-" + hex.EncodeToString(sum[:8]) + ".json"
}

// Load implements CursorStore.
func (f FileCursors) Load(_ context.Context, source string) (Cursor, error) {
	b, err := os.ReadFile(f.path(source))
	if errors.Is(err, os.ErrNotExist) {
		return Cursor{}, nil
	}
	if err != nil {
		return Cursor{}, err
	}
	var c struct {
		Source string `json:"source"`
		Cursor
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return Cursor{}, fmt.Errorf("fhir: cursor file of %s: %w", source, err)
	}
	return c.Cursor, nil
}

// Save implements CursorStore.
func (f FileCursors) Save(_ context.Context, source string, c Cursor) error {
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(struct {
		Source string `json:"source"`
		Cursor
	}{source, c})
	if err != nil {
		return err
	}
	return durable.WriteFile(f.Dir, cursorName(source), func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// Feed is one SSA status feed.
type Feed struct {
	Name string // source name handed to the Handler and key of the cursor (the SSA destination id)
	URL  string // FHIR base: GET {URL}/Task?…
}

// PollerConfig configures a Poller. Zero values take the defaults in
// brackets.
type PollerConfig struct {
	Feeds []Feed
	// FeedsFunc, when set, gives the feeds of each round instead of Feeds
	// (the SSA endpoints of the referential in force); a feed whose URL is
	// not valid is logged and skipped.
	FeedsFunc func() []Feed
	HTTPS     dhttps.Config // client certificate (required) and roots, as for the Sender
	Handler   Handler       // required
	Cursors   CursorStore   // required
	// Interval between rounds of Run [30s].
	Interval time.Duration
	// PageSize is the _count asked [100]; MaxPageSize bounds it when a
	// page holds nothing but Tasks already seen at the cursor instant and
	// the poller widens it [1000].
	PageSize, MaxPageSize int
	// MaxPages bounds the pages read per feed in one round [20]: a large
	// backlog is read over several rounds.
	MaxPages int
	Logger   *slog.Logger // [discard]
}

// Poller reads the Task feeds of SSA endpoints and hands every Task to the
// Handler, in lastUpdated order, advancing each feed's cursor only past
// Tasks the Handler accepted.
type Poller struct {
	cfg    PollerConfig
	client *http.Client
	log    *slog.Logger
}

// ErrStuck is returned (wrapped) by a round when more Tasks than
// MaxPageSize share one lastUpdated instant: the feed cannot move past them.
var ErrStuck = errors.New("fhir: too many Tasks at one lastUpdated instant")

// NewPoller checks cfg.
func NewPoller(cfg PollerConfig) (*Poller, error) {
	if cfg.Handler == nil || cfg.Cursors == nil {
		return nil, fmt.Errorf("%w: the SSA poller needs a Handler and a CursorStore", deliver.ErrConfig)
	}
	for _, f := range cfg.Feeds {
		if f.Name == "" {
			return nil, fmt.Errorf("%w: SSA feed without a name", deliver.ErrConfig)
		}
		if _, err := dhttps.Endpoint(f.URL); err != nil {
			return nil, err
		}
	}
	client, err := dhttps.NewClient(&cfg.HTTPS)
	if err != nil {
		return nil, err
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 100
	}
	if cfg.MaxPageSize < cfg.PageSize {
		cfg.MaxPageSize = max(1000, cfg.PageSize)
	}
	if cfg.MaxPages <= 0 {
		cfg.MaxPages = 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Poller{cfg: cfg, client: client, log: cfg.Logger}, nil
}

// Run polls every feed, then every Interval, until ctx ends; it returns
// nil then. Errors of a round are logged, not returned.
func (p *Poller) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	defer p.client.CloseIdleConnections()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := p.PollOnce(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("fhir: SSA feed round failed", "err", err)
		}
		t.Reset(p.cfg.Interval)
	}
}

// PollOnce reads each feed once, up to MaxPages pages, and returns the
// errors of the feeds that failed (joined).
func (p *Poller) PollOnce(ctx context.Context) error {
	var errs []error
	feeds := p.cfg.Feeds
	if p.cfg.FeedsFunc != nil {
		feeds = nil
		for _, f := range p.cfg.FeedsFunc() {
			if _, err := dhttps.Endpoint(f.URL); err != nil || f.Name == "" {
				p.log.Warn("fhir: SSA feed skipped", "feed", f.Name, "err", err)
				continue
			}
			feeds = append(feeds, f)
		}
	}
	for _, f := range feeds {
		if err := p.pollFeed(ctx, f); err != nil {
			errs = append(errs, fmt.Errorf("feed %s: %w", f.Name, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// entry is one Task of a page.
type entry struct {
	raw []byte
	at  time.Time
	key string
}

func (p *Poller) pollFeed(ctx context.Context, f Feed) error {
	cur, err := p.cfg.Cursors.Load(ctx, f.Name)
	if err != nil {
		return err
	}
	count := p.cfg.PageSize
	for page := 0; page < p.cfg.MaxPages; page++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, err := p.fetch(ctx, f, cur.At, count)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, k := range cur.Seen {
			seen[k] = true
		}
		fresh := 0
		var herr error
		for _, e := range entries {
			if e.at.Before(cur.At) || e.at.Equal(cur.At) && seen[e.key] {
				continue // at or before the cursor and already handled
			}
			fresh++
			if err := p.cfg.Handler.Handle(ctx, f.Name, e.raw); err != nil {
				herr = err
				break
			}
			if e.at.After(cur.At) {
				cur = Cursor{At: e.at}
				seen = map[string]bool{}
			}
			cur.Seen = append(cur.Seen, e.key)
			seen[e.key] = true
		}
		if fresh > 0 {
			if err := p.cfg.Cursors.Save(ctx, f.Name, cur); err != nil {
				return err
			}
		}
		if herr != nil {
			return fmt.Errorf("handler: %w", herr)
		}
		if len(entries) < count {
			return nil // the last page
		}
		if fresh == 0 {
			// A full page of Tasks already handled at the cursor instant:
			// ask for more at once to get past them.
			if count >= p.cfg.MaxPageSize {
				return fmt.Errorf("%w (%d at %s)", ErrStuck, len(entries), cur.At.Format(time.RFC3339Nano))
			}
			count = min(count*2, p.cfg.MaxPageSize)
			continue
		}
		count = p.cfg.PageSize
	}
	return nil
}

// fetch GETs one page of Tasks last updated at or after since, sorted
// oldest first.
func (p *Poller) fetch(ctx context.Context, f Feed, since time.Time, count int) ([]entry, error) {
	u, _ := url.Parse(f.URL)
	q := url.Values{}
	if !since.IsZero() {
		q.Set("_lastUpdated", "ge"+since.UTC().Format(time.RFC3339Nano))
	}
	q.Set("_sort", "_lastUpdated")
	q.Set("_count", strconv.Itoa(count))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, dhttps.JoinPath(u, "/Task")+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", ContentType)
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, dhttps.DoError(ctx, "get", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, certificate.MaxTaskBundleBytes+1))
	if err != nil {
		return nil, dhttps.DoError(ctx, "get", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, dhttps.StatusError("get", resp.StatusCode, dhttps.Reply(resp.StatusCode, body))
	}
	if len(body) > certificate.MaxTaskBundleBytes {
		return nil, fmt.Errorf("fhir: Task page over %d bytes", certificate.MaxTaskBundleBytes)
	}
	return parsePage(body)
}

// parsePage splits a searchset Bundle into its Task entries (other
// resources, such as an OperationOutcome with search.mode outcome, are
// skipped), each with its instant (meta.lastUpdated, else lastModified) and
// key, sorted by instant (stable).
func parsePage(body []byte) ([]entry, error) {
	var b struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.ResourceType != "Bundle" {
		return nil, fmt.Errorf("fhir: the Task page is not a FHIR Bundle")
	}
	out := make([]entry, 0, len(b.Entry))
	for i, e := range b.Entry {
		var t struct {
			ResourceType string `json:"resourceType"`
			Meta         struct {
				LastUpdated string `json:"lastUpdated"`
			} `json:"meta"`
			LastModified string `json:"lastModified"`
		}
		if json.Unmarshal(e.Resource, &t) != nil || t.ResourceType != "Task" {
			continue
		}
		ts := t.Meta.LastUpdated
		if ts == "" {
			ts = t.LastModified
		}
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return nil, fmt.Errorf("fhir: Task entry %d has no usable lastUpdated/lastModified", i)
		}
		raw := bytes.Clone(e.Resource)
		sum := sha256.Sum256(raw)
		out = append(out, entry{raw: raw, at: at.UTC(), key: hex.EncodeToString(sum[:16])})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out, nil
}
