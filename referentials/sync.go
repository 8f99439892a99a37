package referentials

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Fetcher reads a feed from upstream. changed is false when upstream says
// nothing changed since the last fetch (HTTP 304, empty drop directory).
type Fetcher interface {
	Fetch(ctx context.Context) (feed Feed, changed bool, err error)
}

// Acker is implemented by fetchers that must learn the outcome of an import
// (DirFetcher moves the dropped files to done/ or rejected/).
type Acker interface {
	Ack(ctx context.Context, feed Feed, importErr error) error
}

// HTTPFetcher polls an URL with conditional requests (If-None-Match with
// the last ETag, If-Modified-Since with the last Last-Modified). The body is
// one feed file: File says its name (for format detection) or Table/Format
// are set explicitly. The validators are remembered only after the caller
// reports success through Ack, so a refused feed is fetched again.
type HTTPFetcher struct {
	Client  *http.Client // required
	URL     string
	Name    string // file name used for detection, e.g. "amc.json"; default: last URL segment
	Table   Table  // optional, with Format, to skip detection
	Format  Format
	MaxSize int64 // default 64 MiB

	mu                  sync.Mutex
	etag, lastModified  string // validators of the last applied feed
	pendETag, pendLastM string
}

// Fetch implements Fetcher.
func (h *HTTPFetcher) Fetch(ctx context.Context) (Feed, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return Feed{}, false, errorf(ErrFetch, err, "request")
	}
	h.mu.Lock()
	if h.etag != "" {
		req.Header.Set("If-None-Match", h.etag)
	}
	if h.lastModified != "" {
		req.Header.Set("If-Modified-Since", h.lastModified)
	}
	h.mu.Unlock()
	resp, err := h.Client.Do(req)
	if err != nil {
		return Feed{}, false, errorf(ErrFetch, err, "GET %s", h.URL)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return Feed{}, false, nil
	case http.StatusOK:
	default:
		return Feed{}, false, errorf(ErrFetch, nil, "GET %s: status %s", h.URL, resp.Status)
	}
	limit := h.MaxSize
	if limit <= 0 {
		limit = 64 << 20
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return Feed{}, false, errorf(ErrFetch, err, "read %s", h.URL)
	}
	if int64(len(body)) > limit {
		return Feed{}, false, errorf(ErrFetch, nil, "%s: larger than %d bytes", h.URL, limit)
	}
	name := h.Name
	if name == "" {
		name = h.URL[strings.LastIndex(h.URL, "/")+1:]
		if i := strings.IndexAny(name, "?#"); i >= 0 {
			name = name[:i]
		}
	}
	var f FeedFile
	if h.Format != "" {
		f = FeedFile{Name: name, Table: h.Table, Format: h.Format, Data: body}
	} else if f, err = DetectFile(name, body); err != nil {
		return Feed{}, false, err
	}
	h.mu.Lock()
	h.pendETag, h.pendLastM = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	h.mu.Unlock()
	return Feed{Source: h.URL, Files: []FeedFile{f}}, true, nil
}

// Ack remembers the validators once the feed was applied (or was unchanged).
func (h *HTTPFetcher) Ack(_ context.Context, _ Feed, importErr error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if importErr == nil || errors.Is(importErr, ErrPublish) {
		h.etag, h.lastModified = h.pendETag, h.pendLastM
	}
	return nil
}

// DirFetcher takes the files dropped in Dir as one feed. Writers must drop
// files atomically (write elsewhere or under a dot-name, then rename);
// names starting with '.' are ignored. After the import, Ack moves the
// files to Dir/done/ or Dir/rejected/ with the version or a .errors file.
type DirFetcher struct {
	Dir string
	Now func() time.Time // required: stamps moved files
}

// Fetch implements Fetcher.
func (d *DirFetcher) Fetch(ctx context.Context) (Feed, bool, error) {
	if err := ctx.Err(); err != nil {
		return Feed{}, false, err
	}
	ents, err := os.ReadDir(d.Dir)
	if err != nil {
		return Feed{}, false, errorf(ErrFetch, err, "read %s", d.Dir)
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return Feed{}, false, nil
	}
	slices.Sort(names)
	feed := Feed{Source: "dir:" + d.Dir}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(d.Dir, n))
		if err != nil {
			return Feed{}, false, errorf(ErrFetch, err, "read %s", n)
		}
		f, err := DetectFile(n, b)
		if err != nil {
			// Keep it in the feed without a format: the import refuses it
			// with a line error and Ack moves it to rejected/.
			f = FeedFile{Name: n, Data: b}
		}
		feed.Files = append(feed.Files, f)
	}
	return feed, true, nil
}

// Ack moves the feed's files out of the drop directory.
func (d *DirFetcher) Ack(_ context.Context, feed Feed, importErr error) error {
	sub := "done"
	if importErr != nil && !errors.Is(importErr, ErrPublish) {
		sub = "rejected"
	}
	dst := filepath.Join(d.Dir, sub, d.Now().UTC().Format("20060102T150405.000000000Z"))
	if err := os.MkdirAll(dst, 0o750); err != nil {
		return err
	}
	for _, f := range feed.Files {
		if err := os.Rename(filepath.Join(d.Dir, f.Name), filepath.Join(dst, f.Name)); err != nil {
			return err
		}
	}
	if sub == "rejected" {
		if err := os.WriteFile(filepath.Join(dst, ".errors"), []byte(importErr.Error()+"\n"), 0o640); err != nil {
			return err
		}
	}
	return nil
}

// Syncer applies upstream feeds to a Repo.
type Syncer struct {
	Repo    *Repo
	Fetcher Fetcher
	// Confirm applies feeds even when they remove more than the Repo's
	// MaxRemovalShare. Leave false: a refused feed is reported, and an
	// operator re-imports it with confirmation.
	Confirm bool
	Logger  *slog.Logger
}

// SyncOnce fetches and imports once. It returns the import Result; when
// upstream had nothing new, Result.Unchanged is true.
func (s *Syncer) SyncOnce(ctx context.Context) (Result, error) {
	feed, changed, err := s.Fetcher.Fetch(ctx)
	if err != nil {
		return Result{}, err
	}
	if !changed {
		cur := s.Repo.Current().Version
		return Result{Version: cur, Unchanged: true}, nil
	}
	res, err := s.Repo.Import(ctx, feed, ImportOptions{Confirm: s.Confirm})
	if a, ok := s.Fetcher.(Acker); ok {
		if aerr := a.Ack(ctx, feed, err); aerr != nil && err == nil {
			err = fmt.Errorf("ack: %w", aerr)
		}
	}
	return res, err
}

// Run calls SyncOnce at every tick until ctx ends. Each outcome goes to
// report (which may be nil); errors do not stop the loop. Pass a
// time.Ticker's C in production, a channel you feed in tests.
func (s *Syncer) Run(ctx context.Context, ticks <-chan time.Time, report func(Result, error)) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticks:
			res, err := s.SyncOnce(ctx)
			if err != nil && s.Logger != nil {
				s.Logger.LogAttrs(ctx, slog.LevelWarn, "referential sync failed", slog.String("error", err.Error()))
			}
			if report != nil {
				report(res, err)
			}
		}
	}
}
