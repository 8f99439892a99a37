package console_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/anomalies/anomaliestest"
	"github.com/octgw/oct/gateway/console"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/referentials"
)

// newRefs is a real referential repository in t.TempDir() with two
// versions: the demo feed, then the demo feed without its last AMC line.
func newRefs(t testing.TB) *referentials.Repo {
	t.Helper()
	st, err := referentials.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	repo, err := referentials.Open(t.Context(), referentials.Config{Store: st, Now: func() time.Time { return anomaliestest.T0 },
		MaxRemovalShare: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	feed := referentials.DemoFeed()
	if _, err := repo.Import(t.Context(), feed, referentials.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, f := range feed.Files {
		if f.Table == referentials.TableAMC {
			lines := bytes.Split(bytes.TrimRight(f.Data, "\n"), []byte("\n"))
			feed.Files[i].Data = append(bytes.Join(lines[:len(lines)-1], []byte("\n")), '\n')
		}
	}
	feed.Source = "demo, one AMC less"
	if res, err := repo.Import(t.Context(), feed, referentials.ImportOptions{}); err != nil || res.Version.ID != 2 {
		t.Fatalf("second import: %+v %v", res.Version, err)
	}
	return repo
}

// loginAs logs e's client in as name (a fresh cookie jar) and returns the
// CSRF token.
func (e *env) loginAs(name string) string {
	e.t.Helper()
	e.logout()
	e.f.Clock.Advance(2 * time.Minute) // clear of any login penalty
	return e.login(name)
}

func (e *env) logout() {
	e.c.Jar, _ = cookiejar.New(nil)
}

// TestRoutesByRole walks every console route for every role: out-of-scope
// ids answer 404 exactly like missing ones, forbidden actions 403, and a
// route added without a line here fails the test.
func TestRoutesByRole(t *testing.T) {
	e := newEnv(t)
	type row struct {
		method, path string
		pattern      string
		want         map[string]int // agent -> status; missing agents: 200 for GET
	}
	all := func(code int) map[string]int {
		m := map[string]int{}
		for _, a := range testAgents {
			m[a.Name] = code
		}
		return m
	}
	with := func(base map[string]int, kv ...any) map[string]int {
		m := map[string]int{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(int)
		}
		return m
	}
	const ok, see, forb, nf = http.StatusOK, http.StatusSeeOther, http.StatusForbidden, http.StatusNotFound
	rows := []row{
		{"GET", "/console/", "GET /console/{$}", all(ok)},
		{"GET", "/console/dashboard", "GET /console/dashboard", all(ok)},
		{"GET", "/console/search?lot=L1", "GET /console/search", all(ok)},
		{"GET", "/console/referentials?from=1&to=2", "GET /console/referentials", all(ok)},
		// A1: acme, CPAM-751. A2: beta, CPAM-130. A3: beta, no destination.
		{"GET", "/console/anomaly/A1", "GET /console/anomaly/{id}", with(all(ok), "ivan", nf)},
		{"GET", "/console/anomaly/A2", "", with(all(ok), "carol", nf, "dave", nf, "olga", nf)},
		{"GET", "/console/anomaly/A3", "", with(all(ok), "carol", nf, "dave", nf, "olga", nf, "ivan", nf)},
		{"GET", "/console/anomaly/nope", "", all(nf)},
		{"POST", "/console/anomaly/A1/comment", "POST /console/anomaly/{id}/{action}",
			with(all(see), "carol", forb, "dave", forb, "ivan", nf, "olga", forb)},
		{"POST", "/console/anomaly/A2/comment", "", with(all(see), "carol", nf, "dave", nf, "ivan", forb, "olga", nf)},
		{"POST", "/console/anomaly/nope/comment", "", all(nf)},
		{"GET", "/console/bulk?tenant=beta", "GET /console/bulk", with(all(ok), "carol", forb, "dave", forb, "ivan", forb, "olga", forb)},
		{"POST", "/console/bulk", "POST /console/bulk", with(all(http.StatusBadRequest), "carol", forb, "dave", forb, "ivan", forb, "olga", forb)},
		// L1 acme → CPAM-751; L2 beta → CPAM-130; L3 acme → CPAM-130.
		{"GET", "/console/lot/L1", "GET /console/lot/{id}", with(all(ok), "ivan", nf)},
		{"GET", "/console/lot/L2", "", with(all(ok), "carol", nf, "dave", nf, "olga", nf)},
		{"GET", "/console/lot/L3", "", with(all(ok), "olga", nf)},
		{"GET", "/console/lot/nope", "", all(nf)},
		{"GET", "/console/lot/L1/raw", "GET /console/lot/{id}/raw", map[string]int{"alice": forb, "bob": forb, "root": ok, "rachel": ok,
			"carol": forb, "dave": ok, "ivan": nf, "olga": forb}},
		{"GET", "/console/lot/L2/raw", "", map[string]int{"alice": forb, "bob": forb, "root": ok, "rachel": ok,
			"carol": nf, "dave": nf, "ivan": forb, "olga": nf}},
		{"GET", "/console/file/F-L1", "GET /console/file/{id}", with(all(ok), "ivan", nf)},
		{"GET", "/console/file/F-L2", "", with(all(ok), "carol", nf, "dave", nf, "olga", nf)},
		{"GET", "/console/file/F-L1/raw", "GET /console/file/{id}/raw", map[string]int{"alice": forb, "bob": forb, "root": ok, "rachel": ok,
			"carol": forb, "dave": ok, "ivan": nf, "olga": nf}},
		{"GET", "/console/file/F-L2/raw", "", map[string]int{"alice": forb, "bob": forb, "root": ok, "rachel": ok,
			"carol": nf, "dave": nf, "ivan": nf, "olga": nf}},
	}
	var covered []string
	for _, r := range rows {
		if r.pattern != "" {
			covered = append(covered, r.pattern)
		}
	}
	for _, p := range console.RoutePatterns(e.console) {
		if !slices.Contains(covered, p) {
			t.Errorf("route %q has no line in the role table", p)
		}
	}
	// nobody logged in: every GET sends to the login page, every POST is refused
	e.logout()
	for _, r := range rows {
		code, body, h := e.do(r.method, r.path, url.Values{})
		switch {
		case r.method == "GET" && (code != see || !strings.HasPrefix(h.Get("Location"), "/console/login?next=")):
			t.Errorf("anonymous GET %s: %d %v", r.path, code, h)
		case r.method == "POST" && code != forb:
			t.Errorf("anonymous POST %s: %d", r.path, code)
		case strings.Contains(body, "acme") || strings.Contains(body, "CPAM"):
			t.Errorf("anonymous %s %s shows data", r.method, r.path)
		}
	}
	notFoundBody := ""
	for _, a := range testAgents {
		csrf := e.loginAs(a.Name)
		for _, r := range rows {
			var form url.Values
			if r.method == "POST" {
				form = url.Values{"csrf": {csrf}, "text": {"checked by " + a.Name}}
			}
			code, body, _ := e.do(r.method, r.path, form)
			if want := r.want[a.Name]; code != want {
				t.Errorf("%s %s %s: %d, want %d", a.Name, r.method, r.path, code, want)
			}
			if code == nf && r.method == "GET" {
				// out of scope and missing look the same (no existence leak)
				if i := strings.Index(body, "<main>"); i >= 0 {
					body = body[i:strings.Index(body, "</main>")]
				}
				if notFoundBody == "" {
					notFoundBody = body
				} else if body != notFoundBody {
					t.Errorf("%s %s: this 404 differs from the others:\n%s\n%s", a.Name, r.path, body, notFoundBody)
				}
			}
		}
	}
}

// TestScopedLists checks what the lists show: the queue, the search and
// the dashboard of each role hold only what its scope allows.
func TestScopedLists(t *testing.T) {
	e := newEnv(t)
	// L6: a PEC flow lot of acme for CPAM-751 with its reference, PEC
	// number and business status
	l6 := e.f.NewLot(anomaliestest.LotSpec{ID: "L6", Tenant: "acme", Destination: "CPAM-751"}, lifecycle.LotRouted)
	l6.Flow, l6.Ref, l6.PEC, l6.Status = store.FlowPEC, "REQ-42", "PEC-777", "agreed"
	e.f.Commit(&store.Change{Lots: []store.Lot{l6}})
	type expect struct {
		agent      string
		path       string
		has, hasnt []string
	}
	for _, x := range []expect{
		{"alice", "/console/", []string{">A1<", ">A2<", ">A3<"}, nil},
		{"carol", "/console/", []string{">A1<"}, []string{">A2<", ">A3<", "bulk action"}},
		{"carol", "/console/?tenant=beta", []string{">A1<"}, []string{">A2<"}}, // the tenant filter cannot leave its scope
		{"ivan", "/console/", []string{">A2<"}, []string{">A1<", ">A3<"}},
		{"ivan", "/console/?destination=CPAM-751", []string{">A2<"}, []string{">A1<"}},
		{"olga", "/console/", []string{">A1<"}, []string{">A2<", ">A3<"}},
		// search by PS number + lot number + date: every lot has the default émetteur, number 1, date 2026-03-02 (L3: number 2)
		{"alice", "/console/search?emitter=" + emitter(e) + "&date=2026-03-02", []string{">L1<", ">L2<", ">L3<"}, nil},
		{"alice", "/console/search?emitter=" + emitter(e) + "&number=1&date=2026-03-02", []string{">L1<", ">L2<"}, []string{">L3<"}},
		{"carol", "/console/search?emitter=" + emitter(e) + "&date=2026-03-02", []string{">L1<", ">L3<"}, []string{">L2<"}},
		{"carol", "/console/search?lot=L2", []string{"nothing found"}, []string{">L2<"}},
		{"carol", "/console/search?file=F-L2", []string{"nothing found"}, []string{`href="/console/file/F-L2"`}},
		{"ivan", "/console/search?emitter=" + emitter(e), []string{">L2<", ">L3<"}, []string{">L1<"}},
		{"ivan", "/console/search?destination=CPAM-751", []string{"nothing found"}, []string{">L1<"}},
		{"ivan", "/console/search?file=F-L2", []string{">L2<"}, []string{`href="/console/file/F-L2"`}},
		{"alice", "/console/search?destination=CPAM-130", []string{">L2<", ">L3<"}, []string{">L1<"}},
		{"alice", "/console/search?file=F-L1", []string{`href="/console/file/F-L1"`}, nil},
		{"alice", "/console/search?flow=b2&tenant=acme", []string{">L1<", ">L3<"}, []string{">L2<", ">L6<"}},
		{"alice", "/console/search?flow=pec&tenant=acme", []string{">L6<"}, []string{">L1<", ">L3<"}},
		{"alice", "/console/search?ref=REQ-42", []string{">L6<", "<td>agreed</td>"}, []string{">L1<"}},
		{"olga", "/console/search?pec=PEC-777", []string{">L6<"}, nil},
		{"ivan", "/console/search?ref=REQ-42", []string{"nothing found"}, []string{">L6<"}},
		{"carol", "/console/lot/L6", []string{`<td id="lot-flow">pec</td>`, `<td id="lot-status">agreed</td>`, "REQ-42", "PEC-777"}, nil},
		// the generated lots number their invoices alike: one number, three lots
		{"alice", "/console/search?invoice=" + invoiceOf(e, "L2"), []string{">L1<", ">L2<", ">L3<"}, nil},
		{"carol", "/console/search?invoice=" + invoiceOf(e, "L2"), []string{">L1<", ">L3<"}, []string{">L2<"}},
		{"ivan", "/console/search?invoice=" + invoiceOf(e, "L2"), []string{">L2<", ">L3<"}, []string{">L1<"}},
		// the file page of an insurer: its lots only, nothing of the vendor's file
		{"ivan", "/console/file/F-L2", []string{">L2<"}, []string{"L2.b2", "sha256"}},
		{"carol", "/console/lot/L1", []string{"L1.b2"}, []string{"raw-lot"}},
		{"dave", "/console/lot/L1", []string{"raw-lot"}, nil},
		{"ivan", "/console/lot/L3", []string{"L3"}, []string{"L3.b2", "raw-lot"}},
		{"alice", "/console/anomaly/A1", []string{`id="resolve"`}, nil},
		{"carol", "/console/anomaly/A1", []string{"History"}, []string{`id="resolve"`, `id="comment"`, "/resend"}},
	} {
		e.loginAs(x.agent)
		code, page, _ := e.do("GET", x.path, nil)
		if code != http.StatusOK {
			t.Errorf("%s %s: %d", x.agent, x.path, code)
			continue
		}
		for _, s := range x.has {
			if !strings.Contains(page, s) {
				t.Errorf("%s %s: lacks %q", x.agent, x.path, s)
			}
		}
		for _, s := range x.hasnt {
			if strings.Contains(page, s) {
				t.Errorf("%s %s: shows %q", x.agent, x.path, s)
			}
		}
	}
	if code, _, _ := e.do("GET", "/console/search?number=x", nil); code != http.StatusBadRequest {
		t.Errorf("bad lot number: %d", code)
	}
}

func emitter(e *env) string {
	l, err := e.f.Store.Lot(e.f.Ctx, "L1")
	if err != nil {
		e.t.Fatal(err)
	}
	return l.Emitter
}

func invoiceOf(e *env, lot string) string {
	invs, err := e.f.Store.Invoices(e.f.Ctx, lot)
	if err != nil || len(invs) == 0 {
		e.t.Fatal(err)
	}
	return invs[0].Number
}

// TestDashboard checks the figures of the dashboard against the fixture
// and that a scoped user gets its scope's.
func TestDashboard(t *testing.T) {
	e := newEnv(t)
	// an invoice of L1 paid, one rejected; L3 acknowledged by a negative ARL later
	invs, _ := e.f.Store.Invoices(e.f.Ctx, "L2")
	e.f.Commit(&store.Change{Transitions: []store.Transition{
		{Kind: lifecycle.Invoice, ID: invs[0].ID, From: lifecycle.InvoicePending, To: lifecycle.InvoicePaid, Actor: "test"},
		{Kind: lifecycle.Invoice, ID: invs[1].ID, From: lifecycle.InvoicePending, To: lifecycle.InvoicePaid, Actor: "test"},
		{Kind: lifecycle.Invoice, ID: invs[2].ID, From: lifecycle.InvoicePending, To: lifecycle.InvoiceRejected, Actor: "test"},
	}})
	e.login("alice")
	_, page, _ := e.do("GET", "/console/dashboard", nil)
	for _, want := range []string{
		`<tr data-state="arl_negative"><td><code>arl_negative</code></td><td class="n">1</td>`,
		`<tr data-state="delivery_failed"><td><code>delivery_failed</code></td><td class="n">1</td>`,
		`<tr data-state="sent"><td><code>sent</code></td><td class="n">1</td>`,
		`<a href="/console/lot/L3">L3</a>`, // oldest unacknowledged for CPAM-130
		`id="arl-rate">100.0 % (1 / 1)`,
		`id="reject-rate">33.3 % (1 / 3)`,
		`<svg id="chart"`, `<title>2026-03-02: 2 lots sent</title>`, // L1 and L3
	} {
		if !strings.Contains(page, want) {
			t.Errorf("support dashboard lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") {
		t.Error("a script on the dashboard")
	}
	// the jobs waiting, per kind, for global roles only
	e.f.Commit(&store.Change{Enqueue: []store.Job{{Kind: "deliver", Subject: "L3", Key: "k", RunAt: e.f.Now()}}})
	if _, page, _ = e.do("GET", "/console/dashboard", nil); !strings.Contains(page, "<tr><td>deliver</td><td>1</td></tr>") {
		t.Error("support dashboard lacks the pending jobs")
	}
	e.loginAs("carol") // acme: L1 and L3, none of beta's invoices
	_, page, _ = e.do("GET", "/console/dashboard", nil)
	if strings.Contains(page, `id="pending"`) {
		t.Error("a vendor sees the gateway's job queue")
	}
	for _, want := range []string{`<tr data-state="delivery_failed"><td><code>delivery_failed</code></td><td class="n">0</td>`,
		`id="reject-rate">n/a`, `id="arl-rate">100.0 % (1 / 1)`, `<a href="/console/lot/L3">L3</a>`} {
		if !strings.Contains(page, want) {
			t.Errorf("vendor dashboard lacks %q", want)
		}
	}
	e.loginAs("olga") // CPAM-751: L1 only, no daily figures
	_, page, _ = e.do("GET", "/console/dashboard", nil)
	for _, want := range []string{`<tr data-state="arl_negative"><td><code>arl_negative</code></td><td class="n">1</td>`,
		`<tr data-state="sent"><td><code>sent</code></td><td class="n">0</td>`, `id="daily-note"`} {
		if !strings.Contains(page, want) {
			t.Errorf("insurer dashboard lacks %q", want)
		}
	}
	if strings.Contains(page, "L3") {
		t.Error("insurer dashboard shows another destination's lot")
	}
}

// TestRawDownloadAudited: a download is journalled on its lot with the
// user and role, and returns the lot's bytes.
func TestRawDownloadAudited(t *testing.T) {
	e := newEnv(t)
	e.login("rachel")
	code, body, h := e.do("GET", "/console/lot/L1/raw", nil)
	if code != http.StatusOK || !strings.Contains(h.Get("Content-Disposition"), "attachment") {
		t.Fatalf("%d %v", code, h)
	}
	l, _ := e.f.Store.Lot(e.f.Ctx, "L1")
	rc, err := e.f.Blobs.Open(e.f.Ctx, l.Blob)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	want.ReadFrom(rc)
	rc.Close()
	if body != want.String() {
		t.Fatal("downloaded bytes differ from the lot file")
	}
	evs, _ := e.f.Store.Events(e.f.Ctx, "lot:L1")
	last := evs[len(evs)-1]
	if last.Type != "raw-download" || last.Actor != "rachel/support" {
		t.Fatalf("last event %+v", last)
	}
	_, page, _ := e.do("GET", "/console/lot/L1", nil)
	if !strings.Contains(page, "raw-download") || !strings.Contains(page, "rachel/support") {
		t.Fatal("the download is not on the lot's timeline")
	}
	// the login is journalled too, and an action carries name/role
	if evs, _ := e.f.Store.Events(e.f.Ctx, "agent:rachel"); len(evs) != 1 || evs[0].Type != "console-login" {
		t.Fatalf("login events %+v", evs)
	}
}

// TestReferentialsPage: versions newest first and a diff with its counts.
func TestReferentialsPage(t *testing.T) {
	e := newEnv(t)
	e.login("carol")
	_, page, _ := e.do("GET", "/console/referentials", nil)
	if i, j := strings.Index(page, "<tr><td>2</td>"), strings.Index(page, "<tr><td>1</td>"); i < 0 || j < 0 || i > j {
		t.Fatalf("versions: %s", page)
	}
	_, page, _ = e.do("GET", "/console/referentials?from=1&to=2", nil)
	if !strings.Contains(page, "<td>amc</td><td>removed</td><td>1</td>") || !strings.Contains(page, "AMC DE TEST") {
		t.Fatalf("diff: %s", page)
	}
	if code, _, _ := e.do("GET", "/console/referentials?from=1&to=9", nil); code != http.StatusBadRequest {
		t.Fatalf("unknown version: %d", code)
	}
	// not configured: the page says so
	var none *referentials.Repo // a node without referential passes a typed nil
	e2 := e.other(console.Options{Referentials: none, SecureCookie: true})
	code, _, h := e2.do("POST", "/console/login", url.Values{"name": {"root"}, "password": {"secret-root"}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Set-Cookie"), "; Secure") {
		t.Fatalf("SecureCookie: %d %q", code, h.Get("Set-Cookie"))
	}
	e2.c.Jar.SetCookies(mustURL(t, e2.srv.URL+"/console/"), []*http.Cookie{{Name: "oct_console", Value: cookieValue(h.Get("Set-Cookie"))}})
	if _, page, _ := e2.do("GET", "/console/lot/L1", nil); strings.Contains(page, "raw-lot") {
		t.Fatal("a download link without blobs")
	}
	if _, page, _ := e2.do("GET", "/console/referentials", nil); !strings.Contains(page, `id="ref-note"`) {
		t.Fatalf("unconfigured: %s", page)
	}
}

// TestAgentsFileRoles: the file format with roles and scopes, old lines
// still loading as support.
func TestAgentsFileRoles(t *testing.T) {
	h, _ := console.HashPassword("password1")
	p := filepath.Join(t.TempDir(), "agents")
	os.WriteFile(p, []byte("old:"+h+"\n"+
		"v:"+h+" role=vendor tenant=acme perms=raw\n"+
		"i:"+h+" role=insurer destinations=CPAM-751,CPAM-130\n"+
		"a:"+h+" role=admin\n"), 0o600)
	as, err := console.LoadAgents(p)
	if err != nil || len(as) != 4 {
		t.Fatalf("%v %v", as, err)
	}
	if as[0].Role != console.RoleSupport || as[1].Tenant != "acme" || !slices.Equal(as[1].Perms, []string{"raw"}) ||
		!slices.Equal(as[2].Destinations, []string{"CPAM-130", "CPAM-751"}) || as[3].Role != console.RoleAdmin {
		t.Fatalf("%+v", as)
	}
	for _, a := range as {
		if b, err := console.ParseAgent(a.Line()); err != nil || b.Line() != a.Line() {
			t.Errorf("round trip %q: %v", a.Line(), err)
		}
	}
	for _, bad := range []string{
		"x:" + h + " role=vendor", "x:" + h + " role=insurer", "x:" + h + " role=support tenant=acme",
		"x:" + h + " role=king", "x:" + h + " perms=all", "x:" + h + " color=red", "x:" + h + " role=admin role=admin",
		"x:" + h + " role=vendor tenant=acme destinations=CPAM-751",
	} {
		if _, err := console.ParseAgent(bad); !errors.Is(err, console.ErrAgents) {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := console.New(console.Options{Store: nil}); !errors.Is(err, console.ErrConfig) {
		t.Error("New without a store")
	}
}

// TestOnlyActorsGetAnomalies: vendor and insurer users are never on duty
// nor offered as assignees, and an assignment to one is refused.
func TestOnlyActorsGetAnomalies(t *testing.T) {
	e := newEnv(t)
	e.loginAs("carol")
	e.loginAs("ivan")
	csrf := e.loginAs("alice")
	duty, _ := e.console.OnDuty(e.f.Ctx, "support", e.f.Now())
	if !slices.Equal(duty, []string{"alice"}) {
		t.Fatalf("on duty: %v", duty)
	}
	_, page, _ := e.do("GET", "/console/anomaly/A1", nil)
	if strings.Contains(page, "<option>carol</option>") || !strings.Contains(page, "<option>rachel</option>") {
		t.Fatal("assignee list")
	}
	code, _, h := e.do("POST", "/console/anomaly/A1/assign", url.Values{"agent": {"carol"}, "csrf": {csrf}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "err=") {
		t.Fatalf("assign to a vendor: %d %v", code, h)
	}
	if a, _ := e.f.Store.Anomaly(e.f.Ctx, "A1"); a.Assignee != "" {
		t.Fatalf("assigned to %q", a.Assignee)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func cookieValue(setCookie string) string {
	v, _, _ := strings.Cut(strings.TrimPrefix(setCookie, "oct_console="), ";")
	return v
}

// TestDashboardBudget: when counting runs out of time the page still
// answers, with what it counted and a note.
func TestDashboardBudget(t *testing.T) {
	e := newEnv(t)
	e2 := e.other(console.Options{DashboardBudget: time.Nanosecond})
	e2.login("alice")
	code, page, _ := e2.do("GET", "/console/dashboard", nil)
	if code != http.StatusOK || !strings.Contains(page, `id="count-cut"`) || !strings.Contains(page, `id="arl-rate"`) {
		t.Fatalf("%d %s", code, page)
	}
}

// TestDashboardCommonState: a state holding more lots than one bounded
// read across the gateway is read by the scoped user's tenant, and its
// count stays exact for that tenant.
func TestDashboardCommonState(t *testing.T) {
	e := newEnv(t)
	for _, fl := range []struct {
		id, tenant string
		n          int
	}{{"FBETA", "beta", 1001}, {"FACME", "acme", 2}} {
		if _, _, err := e.f.Store.CreateFile(e.f.Ctx, store.File{ID: fl.id, Tenant: fl.tenant, Channel: "api", SHA256: fl.id, State: lifecycle.FileReceived}, nil); err != nil {
			t.Fatal(err)
		}
		c := &store.Change{}
		for j := range fl.n {
			c.Lots = append(c.Lots, store.Lot{ID: fmt.Sprintf("%s-%04d", fl.id, j), File: fl.id, Tenant: fl.tenant, Index: j,
				Emitter: "750000001", Number: j + 1, Date: "2026-03-02", Destination: "CPAM-999", State: lifecycle.LotCreated})
		}
		e.f.Commit(c)
	}
	for who, want := range map[string]string{
		"alice": `<tr data-state="created"><td><code>created</code></td><td class="n">1000+</td>`,
		"carol": `<tr data-state="created"><td><code>created</code></td><td class="n">2</td>`,
		"ivan":  `<tr data-state="created"><td><code>created</code></td><td class="n">0</td>`,
		"olga":  `<tr data-state="created"><td><code>created</code></td><td class="n">1000+</td>`,
	} {
		e.loginAs(who)
		if _, page, _ := e.do("GET", "/console/dashboard", nil); !strings.Contains(page, want) {
			t.Errorf("%s: lacks %s", who, want)
		}
	}
}

// other is a second console over e's store and agents, with o's other
// options (a queue of its own, no blobs), served with a fresh client.
func (e *env) other(o console.Options) *env {
	e.t.Helper()
	q, err := anomalies.New(anomalies.Options{Store: e.f.Store, Clock: e.f.Clock})
	if err != nil {
		e.t.Fatal(err)
	}
	o.Store, o.Queue, o.Agents, o.Clock = e.f.Store, q, e.agents, e.f.Clock
	c, err := console.New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	e.t.Cleanup(srv.Close)
	e2 := &env{t: e.t, f: e.f, srv: srv, c: &http.Client{CheckRedirect: e.c.CheckRedirect}}
	e2.c.Jar, _ = cookiejar.New(nil)
	return e2
}
