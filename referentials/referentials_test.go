package referentials

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return t0 }

func newRepo(t *testing.T, dir string, cfg Config) *Repo {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	st, err := NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store = st
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	r, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustImport(t *testing.T, r *Repo, feed Feed, opt ImportOptions) Result {
	t.Helper()
	res, err := r.Import(context.Background(), feed, opt)
	if err != nil {
		t.Fatalf("import %s: %v", feed.Source, err)
	}
	return res
}

func csvFeed(src string, table Table, body string) Feed {
	return Feed{Source: src, Files: []FeedFile{{Name: string(table) + ".csv", Table: table, Format: FormatCSV, Data: []byte(body)}}}
}

func TestDemoFeedLookups(t *testing.T) {
	r := newRepo(t, "", Config{})
	res := mustImport(t, r, DemoFeed(), ImportOptions{})
	if res.Version.ID != 1 || len(res.Version.SHA256) != 64 || res.Version.Source != "demo" {
		t.Fatalf("version = %+v", res.Version)
	}
	if got := res.Version.Counts; got[TableAMO] != 11 || got[TableAMC] != 5 || got[TableConventions] != 7 {
		t.Fatalf("counts = %v", got)
	}
	s := r.Current()
	e, ok := s.AMO("01", "422", t0)
	if !ok || e.Mailbox != "01422@422.01.rss.fr" || e.Cipher != AES128 || e.Test {
		t.Fatalf("01422 = %+v %v", e, ok)
	}
	// Caisse 421 is routed to organisme 422.
	if e, _ := s.AMO("01", "421", t0); e.Mailbox != "01422@422.01.rss.fr" {
		t.Fatalf("01421 mailbox = %q", e.Mailbox)
	}
	if e, _ := s.AMO("01", "996", t0); !e.Test || e.Mailbox != "01996@996.01.rss.fr" {
		t.Fatalf("test caisse = %+v", e)
	}
	// Scheduled change: 3des until 2026-07-01, aes128 from then on.
	switchAt := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	if e, _ := s.AMO("01", "511", switchAt.Add(-time.Nanosecond)); e.Cipher != TripleDES {
		t.Fatalf("before switch cipher = %s", e.Cipher)
	}
	if e, _ := s.AMO("01", "511", switchAt); e.Cipher != AES128 {
		t.Fatalf("at switch cipher = %s", e.Cipher)
	}
	if _, ok := s.AMO("01", "999", t0); ok {
		t.Fatal("unknown caisse found")
	}
	// AMC number as found in a B2 type 2 record (10 chars, zero padded).
	a, ok := s.AMC("0000420000", t0)
	if !ok || a.Operator != "SANTEPHARM" || a.Regroupement != "SP" {
		t.Fatalf("AMC = %+v %v", a, ok)
	}
	c, _ := s.Convention("SANTEPHARM", "optics", t0)
	if c.Transport != HTTPS || !c.Accepts(NormPEC) {
		t.Fatalf("optics convention = %+v", c)
	}
	c, _ = s.Convention("SANTEPHARM", "pharmacy", t0)
	if c.Transport != SMTP || c.Address != "sp005@005.sp.spcentresante.fr" || c.Accepts(NormPEC) {
		t.Fatalf("pharmacy convention = %+v", c)
	}
	sw := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if c, _ := s.Convention("DEMOPLAT", "nurse", sw.Add(-time.Second)); c.Transport != SFTP {
		t.Fatalf("DEMOPLAT before = %s", c.Transport)
	}
	if c, _ := s.Convention("DEMOPLAT", "nurse", sw); c.Transport != HTTPS {
		t.Fatalf("DEMOPLAT after = %s", c.Transport)
	}
}

func TestSESAMTables(t *testing.T) {
	rg, err := os.ReadFile("testdata/regroupement-sesam.csv")
	if err != nil {
		t.Fatal(err)
	}
	cv, err := os.ReadFile("testdata/convention-sesam.csv")
	if err != nil {
		t.Fatal(err)
	}
	f1, err := DetectFile("table de regroupement.csv", rg)
	if err != nil || f1.Table != TableAMC || f1.Format != FormatSESAM {
		t.Fatalf("detect regroupement: %+v %v", f1, err)
	}
	f2, err := DetectFile("table de convention.csv", cv)
	if err != nil || f2.Table != TableConventions || f2.Format != FormatSESAM {
		t.Fatalf("detect convention: %+v %v", f2, err)
	}
	r := newRepo(t, "", Config{})
	mustImport(t, r, Feed{Source: "sesam", Files: []FeedFile{f1, f2}}, ImportOptions{})
	s := r.Current()
	a, ok := s.AMC("00420000", t0)
	if !ok || a.Name != "AXA" || a.Operator != "SANTEPHARM" {
		t.Fatalf("AMC = %+v", a)
	}
	c, ok := s.Convention("SANTEPHARM", "pharmacy", t0)
	if !ok || c.Address != "sp005@005.sp.spcentresante.fr" || c.ThirdParty != "T" || c.Ident != "ORSP1" ||
		c.Name != "Santé-Pharma & SP Santé" || c.Extra["col15"] != "4" || !c.Accepts(NormDRE) {
		t.Fatalf("convention = %+v", c)
	}
}

func TestLatin1(t *testing.T) {
	body := []byte("C;0;;00420000;MUTUELLE G\xc9N\xc9RALE;SP;;;SANTEPHARM;Sant\xe9\n")
	f, err := DetectFile("rg.csv", body)
	if err != nil {
		t.Fatal(err)
	}
	p, errs := parseFeed(Feed{Files: []FeedFile{f}}, ParseOptions{})
	if len(errs) != 0 || p.data.AMC[0].Name != "MUTUELLE GÉNÉRALE" {
		t.Fatalf("%v %+v", errs, p.data.AMC)
	}
}

func TestImportRefusedWholeWithEveryLine(t *testing.T) {
	r := newRepo(t, "", Config{})
	body, err := os.ReadFile("testdata/amo-bad.csv")
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Import(context.Background(), csvFeed("bad", TableAMO, string(body)), ImportOptions{})
	var ie *ImportError
	if !errors.Is(err, ErrImport) || !errors.As(err, &ie) {
		t.Fatalf("err = %v", err)
	}
	type k struct {
		line        int
		field, code string
	}
	want := map[k]bool{
		{2, "caisse", LineInvalid}:    true,
		{3, "transport", LineInvalid}: true,
		{4, "caisse", LineDuplicate}:  true,
		{5, "cipher", LineInvalid}:    true,
		{5, "from", LineInvalid}:      true,
	}
	got := map[k]bool{}
	for _, l := range ie.Lines {
		got[k{l.Line, l.Field, l.Code}] = true
	}
	for w := range want {
		if !got[w] {
			t.Errorf("missing %+v in %v", w, ie.Lines)
		}
	}
	if len(ie.Lines) != len(want) {
		t.Errorf("got %d lines, want %d: %v", len(ie.Lines), len(want), ie.Lines)
	}
	if r.Current().Version.ID != 0 {
		t.Fatal("a refused feed created a version")
	}
}

func TestUnknownColumnAndOperator(t *testing.T) {
	r := newRepo(t, "", Config{})
	_, err := r.Import(context.Background(), csvFeed("x", TableAMC, "amc;name;colour\n00420000;AXA;blue\n"), ImportOptions{})
	var ie *ImportError
	if !errors.As(err, &ie) || ie.Lines[0].Code != LineUnknownColumn || ie.Lines[0].Field != "colour" || ie.Lines[0].Line != 1 {
		t.Fatalf("err = %v", err)
	}
	_, err = r.Import(context.Background(), csvFeed("x", TableAMC, "amc;name;regroupement;operator\n00420000;AXA;SP;NOBODY\n"), ImportOptions{})
	if !errors.As(err, &ie) || ie.Lines[0].Code != LineUnknownOperator || ie.Lines[0].Line != 2 {
		t.Fatalf("err = %v", err)
	}
}

func TestJSONLineNumbers(t *testing.T) {
	doc := `{
  "amo": [
    {"grand_regime": "01", "caisse": "422", "organisme": "422", "transport": "smtp", "cipher": "aes128", "mailbox": "", "test": false},
    {"grand_regime": "01", "caisse": "4x2", "organisme": "422", "transport": "smtp", "cipher": "aes128", "mailbox": "", "test": false},
    {"grand_regime": "01", "caisse": "511", "colour": "red"}
  ]
}`
	r := newRepo(t, "", Config{})
	_, err := r.Import(context.Background(), Feed{Source: "j", Files: []FeedFile{{Name: "amo.json", Format: FormatJSON, Data: []byte(doc)}}}, ImportOptions{})
	var ie *ImportError
	if !errors.As(err, &ie) || len(ie.Lines) != 2 {
		t.Fatalf("err = %v", err)
	}
	if ie.Lines[0].Line != 4 || ie.Lines[0].Field != "caisse" || ie.Lines[1].Line != 5 || ie.Lines[1].Code != LineSyntax {
		t.Fatalf("lines = %+v", ie.Lines)
	}
	// A valid JSON document round-trips through a version.
	good := `{"amo":[{"grand_regime":"01","caisse":"422","test":false}]}`
	res := mustImport(t, r, Feed{Source: "j", Files: []FeedFile{{Name: "amo.json", Format: FormatJSON, Data: []byte(good)}}}, ImportOptions{})
	if e, _ := r.Current().AMO("01", "422", t0); e.Mailbox != "01422@422.01.rss.fr" || res.Version.ID != 1 {
		t.Fatalf("entry = %+v", e)
	}
}

const amcV2 = `amc;name;regroupement;operator
00420000;AXA SANTE;SP;SANTEPHARM
22222222;MUTUELLE DEMO DEUX;DP;DEMOPLAT
33333333;PREVOYANCE DEMO;DP;DEMOPLAT
44444444;NOUVELLE AMC;DP;DEMOPLAT
99999999;AMC DE TEST;TS;AMCTEST
`

type recPublisher struct {
	mu    sync.Mutex
	diffs []Diff
	fail  error
}

func (p *recPublisher) Publish(_ context.Context, d Diff) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.diffs = append(p.diffs, d)
	return p.fail
}

func TestVersionsDiffsPersistence(t *testing.T) {
	dir := t.TempDir()
	pub := &recPublisher{}
	r := newRepo(t, dir, Config{Publisher: pub})
	v1 := mustImport(t, r, DemoFeed(), ImportOptions{})
	v2 := mustImport(t, r, csvFeed("upd", TableAMC, amcV2), ImportOptions{})
	if v2.Version.ID != 2 || v2.Version.SHA256 == v1.Version.SHA256 {
		t.Fatalf("v2 = %+v", v2.Version)
	}
	d := v2.Diff
	if d.Count(TableAMC, Added) != 1 || d.Count(TableAMC, Removed) != 1 || d.Count(TableAMC, Changed) != 1 || len(d.Changes) != 3 {
		t.Fatalf("diff = %+v", d)
	}
	for _, c := range d.Changes {
		switch c.Op {
		case Added:
			if c.Key != "44444444" || c.Before != nil {
				t.Errorf("added %+v", c)
			}
		case Removed:
			if c.Key != "11111111" || c.After != nil {
				t.Errorf("removed %+v", c)
			}
		case Changed:
			if c.Key != "00420000" || !bytes.Contains(c.After, []byte("AXA SANTE")) {
				t.Errorf("changed %+v", c)
			}
		}
	}
	if len(pub.diffs) != 2 || pub.diffs[1].From != 1 || pub.diffs[1].To != 2 {
		t.Fatalf("published %+v", pub.diffs)
	}
	// Same content again: no new version, nothing published.
	again := mustImport(t, r, csvFeed("upd", TableAMC, amcV2), ImportOptions{})
	if !again.Unchanged || again.Version.ID != 2 || len(pub.diffs) != 2 {
		t.Fatalf("reimport = %+v", again)
	}
	ch, err := r.Changes(context.Background(), 1)
	if err != nil || len(ch.Changes) != 3 {
		t.Fatalf("changes = %+v %v", ch, err)
	}
	if _, err := r.Changes(context.Background(), 9); !errors.Is(err, ErrVersionNotFound) {
		t.Fatalf("changes since 9: %v", err)
	}
	full, err := r.Diff(context.Background(), 0, 2)
	if err != nil || full.Count("", Added) != 11+5+7 {
		t.Fatalf("diff 0..2 = %d %v", full.Count("", Added), err)
	}
	if amc := full.Only(TableAMC); amc.Count("", "") != 5 {
		t.Fatalf("Only = %d", amc.Count("", ""))
	}
	// Reopen from the directory: version 2 in force, versions listed.
	r2 := newRepo(t, dir, Config{})
	if got := r2.Current().Version; got.ID != 2 || got.SHA256 != v2.Version.SHA256 {
		t.Fatalf("reopened = %+v", got)
	}
	if _, ok := r2.Current().AMC("44444444", t0); !ok {
		t.Fatal("reopened snapshot lacks the new AMC")
	}
	vs, err := r2.Versions(context.Background())
	if err != nil || len(vs) != 2 || vs[0].ID != 1 || vs[1].Source != "upd" {
		t.Fatalf("versions = %+v %v", vs, err)
	}
	d2, err := r2.Diff(context.Background(), 1, 2)
	if err != nil || len(d2.Changes) != 3 {
		t.Fatalf("diff after reopen = %+v %v", d2, err)
	}
	// The store never overwrites.
	st := &DirStore{Dir: dir}
	if err := st.Put(context.Background(), Record{Version: Version{ID: 2}}); !errors.Is(err, ErrVersionExists) {
		t.Fatalf("overwrite: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	if len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
}

func TestRemovalGuard(t *testing.T) {
	r := newRepo(t, "", Config{MaxRemovalShare: 0.5})
	mustImport(t, r, DemoFeed(), ImportOptions{})
	small := "amc;name;regroupement;operator\n00420000;AXA;SP;SANTEPHARM\n"
	_, err := r.Import(context.Background(), csvFeed("shrink", TableAMC, small), ImportOptions{})
	var re *RemovalError
	if !errors.Is(err, ErrTooManyRemovals) || !errors.As(err, &re) || re.Removed != 4 || re.Previous != 5 || re.Table != TableAMC {
		t.Fatalf("err = %v", err)
	}
	if r.Current().Version.ID != 1 {
		t.Fatal("refused feed applied")
	}
	res := mustImport(t, r, csvFeed("shrink", TableAMC, small), ImportOptions{Confirm: true})
	if res.Version.ID != 2 || !res.Version.Confirmed || res.Version.Removed[TableAMC] != 4 {
		t.Fatalf("confirmed = %+v", res.Version)
	}
}

func TestPublishFailureKeepsVersion(t *testing.T) {
	pub := &recPublisher{fail: errors.New("sftp down")}
	r := newRepo(t, "", Config{Publisher: pub})
	res, err := r.Import(context.Background(), DemoFeed(), ImportOptions{})
	if !errors.Is(err, ErrPublish) || res.Version.ID != 1 || r.Current().Version.ID != 1 {
		t.Fatalf("res %+v err %v", res.Version, err)
	}
	pub.fail = nil
	if err := r.Publish(context.Background(), 0); err != nil || len(pub.diffs) != 2 {
		t.Fatalf("republish: %v %d", err, len(pub.diffs))
	}
}

func TestDiffFileRoundTrip(t *testing.T) {
	r := newRepo(t, "", Config{})
	mustImport(t, r, DemoFeed(), ImportOptions{})
	res := mustImport(t, r, csvFeed("upd", TableAMC, amcV2), ImportOptions{})
	dirs := []string{t.TempDir(), t.TempDir()}
	if err := (DirPublisher{Dirs: dirs}).Publish(context.Background(), res.Diff); err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		f, err := os.Open(filepath.Join(dir, DiffFileName(res.Diff)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReadDiffJSONL(f)
		f.Close()
		if err != nil || got.From != 1 || got.To != 2 || len(got.Changes) != 3 || got.ToSHA != res.Version.SHA256 {
			t.Fatalf("read back %+v %v", got, err)
		}
	}
	var buf bytes.Buffer
	if err := WriteDiffJSONL(&buf, res.Diff); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], `{"format":"oct-referential-diff/1"`) {
		t.Fatalf("file = %s", buf.String())
	}
	// A truncated file is detected.
	if _, err := ReadDiffJSONL(strings.NewReader(strings.Join(lines[:3], "\n"))); err == nil {
		t.Fatal("truncated diff accepted")
	}
}

func TestHTTPSyncConditional(t *testing.T) {
	var mu sync.Mutex
	body, etag := amcV2, `"v2"`
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Header.Get("If-None-Match"))
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Write([]byte(body))
	}))
	defer srv.Close()
	r := newRepo(t, "", Config{})
	mustImport(t, r, DemoFeed(), ImportOptions{})
	s := &Syncer{Repo: r, Fetcher: &HTTPFetcher{Client: srv.Client(), URL: srv.URL + "/feeds/amc.csv"}}
	ctx := context.Background()
	res, err := s.SyncOnce(ctx)
	if err != nil || res.Version.ID != 2 {
		t.Fatalf("first sync %+v %v", res.Version, err)
	}
	res, err = s.SyncOnce(ctx)
	if err != nil || !res.Unchanged || res.Version.ID != 2 {
		t.Fatalf("second sync %+v %v", res, err)
	}
	// Upstream publishes a broken feed: refused, validators not remembered.
	mu.Lock()
	body, etag = "amc;name;regroupement;operator\n123;X;SP;SANTEPHARM\n", `"v3"`
	mu.Unlock()
	if _, err := s.SyncOnce(ctx); !errors.Is(err, ErrImport) {
		t.Fatalf("broken feed: %v", err)
	}
	mu.Lock()
	body, etag = strings.Replace(amcV2, "NOUVELLE AMC", "NOUVELLE AMC SA", 1), `"v4"`
	mu.Unlock()
	res, err = s.SyncOnce(ctx)
	if err != nil || res.Version.ID != 3 {
		t.Fatalf("fourth sync %+v %v", res.Version, err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"", `"v2"`, `"v2"`, `"v2"`}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Fatalf("If-None-Match sent = %q, want %q", seen, want)
	}
}

func TestDirSyncAndRun(t *testing.T) {
	drop := t.TempDir()
	r := newRepo(t, "", Config{})
	s := &Syncer{Repo: r, Fetcher: &DirFetcher{Dir: drop, Now: fixedNow}}
	ctx, cancel := context.WithCancel(context.Background())
	ticks := make(chan time.Time)
	results := make(chan error)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ticks, func(_ Result, err error) { results <- err }) }()

	for _, f := range DemoFeed().Files {
		if err := os.WriteFile(filepath.Join(drop, f.Name), f.Data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ticks <- t0
	if err := <-results; err != nil {
		t.Fatal(err)
	}
	if r.Current().Version.ID != 1 {
		t.Fatal("dropped feed not imported")
	}
	if m, _ := filepath.Glob(filepath.Join(drop, "done", "*", "amo.csv")); len(m) != 1 {
		t.Fatalf("not moved to done: %v", m)
	}
	// Empty directory: nothing to do.
	ticks <- t0
	if err := <-results; err != nil || r.Current().Version.ID != 1 {
		t.Fatalf("empty tick: %v", err)
	}
	// A bad drop goes to rejected/ with its errors.
	if err := os.WriteFile(filepath.Join(drop, "amo.csv"), []byte("grand_regime;caisse\n1;2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ticks <- t0
	if err := <-results; !errors.Is(err, ErrImport) {
		t.Fatalf("bad drop: %v", err)
	}
	m, _ := filepath.Glob(filepath.Join(drop, "rejected", "*", ".errors"))
	if len(m) != 1 {
		t.Fatalf("no .errors: %v", m)
	}
	if b, _ := os.ReadFile(m[0]); !bytes.Contains(b, []byte("grand_regime")) {
		t.Fatalf(".errors = %s", b)
	}
	// A file nobody can read is rejected too, not retried forever.
	if err := os.WriteFile(filepath.Join(drop, "notes.txt"), []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ticks <- t0
	if err := <-results; !errors.Is(err, ErrImport) {
		t.Fatalf("unknown drop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(drop, "notes.txt")); !os.IsNotExist(err) {
		t.Fatalf("unknown file left in the drop directory: %v", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}

func TestMailboxes(t *testing.T) {
	r := newRepo(t, "", Config{})
	mustImport(t, r, DemoFeed(), ImportOptions{})
	m := r.Current().Mailboxes(t0)
	// 11 AMO lines, 01511 twice (one in force), 01421 shares 01422's mailbox; 2 SMTP conventions.
	if len(m) != 9+2 || m[0] != "01131@131.01.rss.fr" {
		t.Fatalf("mailboxes = %v", m)
	}
}

func TestCSVBareQuote(t *testing.T) {
	r := newRepo(t, "", Config{})
	body := "grand_regime;caisse\n01;422\n01\"7@1;751\n01;131\n"
	_, err := r.Import(context.Background(), csvFeed("q", TableAMO, body), ImportOptions{})
	var ie *ImportError
	if !errors.As(err, &ie) || len(ie.Lines) != 1 || ie.Lines[0].Line != 3 || ie.Lines[0].Code != LineSyntax {
		t.Fatalf("err = %v", err)
	}
}

// TestDemoFeedAt: the simulated endpoints replace the demo ones (which the
// demo data really names).
func TestDemoFeedAt(t *testing.T) {
	var before, after []byte
	for _, f := range DemoFeed().Files {
		before = append(before, f.Data...)
	}
	for _, f := range DemoFeedAt("https://127.0.0.1:1/ssa/SSA01", "https://127.0.0.1:2/amc/SANTEPHARM").Files {
		after = append(after, f.Data...)
	}
	if !bytes.Contains(before, []byte(DemoSSAEndpoint)) || !bytes.Contains(before, []byte(DemoPECEndpoint)) {
		t.Fatal("the demo data no longer names the SSA and PEC endpoints")
	}
	if bytes.Contains(after, []byte(DemoSSAEndpoint)) || bytes.Contains(after, []byte(DemoPECEndpoint)) || !bytes.Contains(after, []byte("https://127.0.0.1:1/ssa/SSA01")) ||
		!bytes.Contains(after, []byte("https://127.0.0.1:2/amc/SANTEPHARM")) {
		t.Fatal("endpoints not replaced")
	}
}
