package fhir_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octgw/oct/formats/certificate"
	"github.com/octgw/oct/gateway/deliver/fhir"
	dhttps "github.com/octgw/oct/gateway/deliver/https"
	"github.com/octgw/oct/internal/testenv"
)

// feedServer serves GET /ssa/<ep>/Task with FHIR search semantics over a
// list of Task versions (gt / ge, _sort=_lastUpdated, _count), and counts
// requests.
type feedServer struct {
	mu       sync.Mutex
	tasks    []certificate.StatusUpdate
	requests []string
}

func (f *feedServer) add(us ...certificate.StatusUpdate) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks = append(f.tasks, us...)
}

func (f *feedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.URL.RawQuery)
	q := r.URL.Query()
	if r.URL.Path != "/ssa/cpam/Task" || q.Get("_sort") != "_lastUpdated" {
		http.Error(w, "bad", 400)
		return
	}
	var since time.Time
	incl := false
	if v := q.Get("_lastUpdated"); v != "" {
		incl = strings.HasPrefix(v, "ge")
		since, _ = time.Parse(time.RFC3339Nano, v[2:])
	}
	n, _ := strconv.Atoi(q.Get("_count"))
	var page []certificate.StatusUpdate
	for _, u := range f.tasks {
		if since.IsZero() || u.Updated.After(since) || incl && u.Updated.Equal(since) {
			page = append(page, u)
		}
	}
	sort.SliceStable(page, func(i, j int) bool { return page[i].Updated.Before(page[j].Updated) })
	if len(page) > n {
		page = page[:n]
	}
	b, err := certificate.MarshalTaskBundle(page)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Content-Type", fhir.ContentType)
	w.Write(b)
}

// recorder is a Handler that records the Tasks handed to it and can fail
// on one task id.
type recorder struct {
	mu     sync.Mutex
	got    []string // "taskid/status"
	failOn string
	seen   chan struct{}
}

func (r *recorder) Handle(_ context.Context, source string, raw []byte) error {
	u, err := certificate.ParseTask(raw)
	if err != nil || source != "ssa-cpam" {
		return errors.New("bad task or source")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failOn == u.TaskID {
		return errors.New("store down")
	}
	r.got = append(r.got, u.TaskID+"/"+string(u.Status))
	if r.seen != nil {
		select {
		case r.seen <- struct{}{}:
		default:
		}
	}
	return nil
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func upd(id string, st certificate.Status, at time.Time) certificate.StatusUpdate {
	u := certificate.StatusUpdate{TaskID: id, CertificateID: "C" + id, Status: st, Updated: at}
	if st.NeedsReason() {
		u.ReasonCode = "RC01"
	}
	return u
}

// TestPoller: pages of 2 over 6 Task versions, three of them at the same
// instant (a page ends among them): every version handled exactly once, in
// order; the cursor survives a new Poller on the same directory; a handler
// error stops the round and the Task comes again (at least once) without
// the ones before it; more ties than a page widens the page.
func TestPoller(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	fs := &feedServer{}
	srv, cfg := mtlsServer(t, fs)
	dir := t.TempDir()
	rec := &recorder{}
	newPoller := func(page, maxPage int) *fhir.Poller {
		p, err := fhir.NewPoller(fhir.PollerConfig{Feeds: []fhir.Feed{{Name: "ssa-cpam", URL: srv.URL + "/ssa/cpam/"}}, HTTPS: cfg,
			Handler: rec, Cursors: fhir.FileCursors{Dir: dir}, PageSize: page, MaxPageSize: maxPage})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ctx := context.Background()
	fs.add(upd("T1", certificate.StatusReceived, t0), upd("T2", certificate.StatusReceived, t0.Add(time.Second)),
		upd("T3", certificate.StatusReceived, t0.Add(time.Second)), upd("T4", certificate.StatusReceived, t0.Add(time.Second)),
		upd("T1", certificate.StatusUnderReview, t0.Add(2*time.Second)), upd("T1", certificate.StatusAccepted, t0.Add(3*time.Second)))
	p := newPoller(2, 8)
	if err := p.PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"T1/received", "T2/received", "T3/received", "T4/received", "T1/under_review", "T1/accepted"}
	if got := rec.all(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v", got)
	}
	if !strings.Contains(fs.requests[1], "_lastUpdated=ge2026-03-02T09%3A00%3A01Z") || !strings.Contains(fs.requests[0], "_count=2") ||
		strings.Contains(fs.requests[0], "_lastUpdated=") {
		t.Fatalf("requests %v", fs.requests)
	}
	// A new Poller (restart) on the same cursor directory: nothing again.
	p = newPoller(2, 8)
	if err := p.PollOnce(ctx); err != nil || len(rec.all()) != 6 {
		t.Fatalf("after restart: %v %v", err, rec.all())
	}
	// A failing handler: the round stops at T6 and T6 comes again; T5
	// (handled) does not.
	fs.add(upd("T5", certificate.StatusReceived, t0.Add(4*time.Second)), upd("T6", certificate.StatusReceived, t0.Add(4*time.Second)),
		upd("T7", certificate.StatusReceived, t0.Add(5*time.Second)))
	rec.mu.Lock()
	rec.failOn = "T6"
	rec.mu.Unlock()
	if err := p.PollOnce(ctx); err == nil || !strings.Contains(err.Error(), "store down") {
		t.Fatalf("want the handler's error, got %v", err)
	}
	rec.mu.Lock()
	rec.failOn = ""
	rec.mu.Unlock()
	if err := newPoller(2, 8).PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	want = append(want, "T5/received", "T6/received", "T7/received")
	if got := rec.all(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v", got)
	}
	// Five Tasks at one instant with pages of 2: the poller widens the
	// page to get past them; with MaxPageSize 2 it reports ErrStuck.
	at := t0.Add(time.Minute)
	for i := 0; i < 5; i++ {
		fs.add(upd("U"+strconv.Itoa(i), certificate.StatusReceived, at))
	}
	if err := newPoller(1, 1).PollOnce(ctx); !errors.Is(err, fhir.ErrStuck) {
		t.Fatalf("want ErrStuck, got %v (%v)", err, rec.all())
	}
	if err := newPoller(2, 8).PollOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rec.all(); len(got) != len(want)+5 || got[len(got)-1] != "U4/received" {
		t.Fatalf("got %v", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || filepath.Ext(ents[0].Name()) != ".json" {
		t.Fatalf("cursor dir %v", ents)
	}
}

// TestPollerRunStops: Run handles the feed, and returns once ctx is
// cancelled.
func TestPollerRunStops(t *testing.T) {
	fs := &feedServer{}
	fs.add(upd("T1", certificate.StatusReceived, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)))
	srv, cfg := mtlsServer(t, fs)
	rec := &recorder{seen: make(chan struct{}, 1)}
	p, err := fhir.NewPoller(fhir.PollerConfig{Feeds: []fhir.Feed{{Name: "ssa-cpam", URL: srv.URL + "/ssa/cpam"}}, HTTPS: cfg,
		Handler: rec, Cursors: fhir.FileCursors{Dir: t.TempDir()}, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case <-rec.seen:
	case <-time.After(20 * time.Second):
		t.Fatal("Run handled nothing")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestPollerConfig(t *testing.T) {
	cc, _ := testenv.ClientCert(t, "x")
	base := fhir.PollerConfig{HTTPS: cfgWith(cc), Handler: &recorder{}, Cursors: fhir.FileCursors{Dir: t.TempDir()}}
	for name, mod := range map[string]func(*fhir.PollerConfig){
		"no handler": func(c *fhir.PollerConfig) { c.Handler = nil },
		"no cursors": func(c *fhir.PollerConfig) { c.Cursors = nil },
		"http feed":  func(c *fhir.PollerConfig) { c.Feeds = []fhir.Feed{{Name: "a", URL: "http://x"}} },
		"no name":    func(c *fhir.PollerConfig) { c.Feeds = []fhir.Feed{{URL: "https://x"}} },
	} {
		c := base
		mod(&c)
		if _, err := fhir.NewPoller(c); err == nil {
			t.Fatal(name)
		}
	}
}

func cfgWith(cc tls.Certificate) dhttps.Config { return dhttps.Config{ClientCert: cc} }

// TestFileCursors: a missing cursor is the zero Cursor; Save then Load
// round-trips (the instant to the nanosecond, the keys); a corrupt file is
// an error, not a silent restart from zero; no temporary file is left.
func TestFileCursors(t *testing.T) {
	dir := t.TempDir()
	fc := fhir.FileCursors{Dir: filepath.Join(dir, "sub")}
	ctx := context.Background()
	c, err := fc.Load(ctx, "ssa-a")
	if err != nil || !c.At.IsZero() || len(c.Seen) != 0 {
		t.Fatalf("%+v %v", c, err)
	}
	at := time.Date(2026, 3, 2, 9, 0, 0, 123456789, time.UTC)
	if err := fc.Save(ctx, "ssa-a", fhir.Cursor{At: at, Seen: []string{"k1", "k2"}}); err != nil {
		t.Fatal(err)
	}
	if err := fc.Save(ctx, "ssa-b", fhir.Cursor{At: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	c, err = fc.Load(ctx, "ssa-a")
	if err != nil || !c.At.Equal(at) || strings.Join(c.Seen, ",") != "k1,k2" {
		t.Fatalf("%+v %v", c, err)
	}
	ents, _ := os.ReadDir(fc.Dir)
	if len(ents) != 2 {
		t.Fatalf("%v", ents)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
		os.WriteFile(filepath.Join(fc.Dir, e.Name()), []byte("{broken"), 0o600)
	}
	if _, err := fc.Load(ctx, "ssa-a"); err == nil {
		t.Fatal("corrupt cursor loaded")
	}
}

// TestPollerFeedsFunc: the feeds of each round come from FeedsFunc (the
// referential in force): a feed that appears later is read at the next
// round, one with a bad URL is skipped.
func TestPollerFeedsFunc(t *testing.T) {
	fs := &feedServer{}
	fs.add(upd("T1", certificate.StatusReceived, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)))
	srv, cfg := mtlsServer(t, fs)
	rec := &recorder{}
	var feeds []fhir.Feed
	p, err := fhir.NewPoller(fhir.PollerConfig{FeedsFunc: func() []fhir.Feed { return feeds }, HTTPS: cfg,
		Handler: rec, Cursors: fhir.FileCursors{Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.PollOnce(ctx); err != nil || len(rec.all()) != 0 {
		t.Fatalf("no feed yet: %v %v", err, rec.all())
	}
	feeds = []fhir.Feed{{Name: "bad", URL: "ftp://nowhere"}, {Name: "ssa-cpam", URL: srv.URL + "/ssa/cpam"}}
	if err := p.PollOnce(ctx); err != nil || strings.Join(rec.all(), " ") != "T1/received" {
		t.Fatalf("after the referential named it: %v %v", err, rec.all())
	}
}
