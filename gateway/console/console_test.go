package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/anomalies/anomaliestest"
	"github.com/octgw/oct/gateway/console"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

type env struct {
	t   testing.TB
	f   *anomaliestest.Fixture
	srv *httptest.Server
	c   *http.Client

	console *console.Console
	agents  []console.Agent
}

// agents of the tests, password "secret-<name>": alice and bob (support),
// root (admin), rachel (support with the raw permission), carol (vendor
// acme), dave (vendor acme, raw), ivan (insurer CPAM-130) and olga
// (insurer CPAM-751 and CPAM-999).
var testAgents = []console.Agent{
	{Name: "alice"}, {Name: "bob", Role: console.RoleSupport}, {Name: "root", Role: console.RoleAdmin},
	{Name: "rachel", Role: console.RoleSupport, Perms: []string{console.PermRaw}},
	{Name: "carol", Role: console.RoleVendor, Tenant: "acme"},
	{Name: "dave", Role: console.RoleVendor, Tenant: "acme", Perms: []string{console.PermRaw}},
	{Name: "ivan", Role: console.RoleInsurer, Destinations: []string{"CPAM-130"}},
	{Name: "olga", Role: console.RoleInsurer, Destinations: []string{"CPAM-751", "CPAM-999"}},
}

// newEnv serves the console on a loopback httptest server, with
// testAgents and a few lots and anomalies:
//
//	L1 acme → CPAM-751 arl_negative, anomaly A1
//	L2 beta → CPAM-130 delivery_failed, anomaly A2; A3 on its file
//	L3 acme → CPAM-130 sent (no ARL yet), no anomaly
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, anomaliestest.New(t))
}

// newEnvWith is newEnv over the fixture f (which may hold more data).
func newEnvWith(t testing.TB, f *anomaliestest.Fixture) *env {
	t.Helper()
	q, err := anomalies.New(anomalies.Options{Store: f.Store, Blobs: f.Blobs, Clock: f.Clock,
		Rules: []anomalies.Rule{{Team: "support"}}, Roster: anomalies.StaticRoster{"support": {"bob"}}})
	if err != nil {
		t.Fatal(err)
	}
	var agents []console.Agent
	for _, a := range testAgents {
		h, _ := bcrypt.GenerateFromPassword([]byte("secret-"+a.Name), bcrypt.MinCost)
		a.Hash = string(h)
		agents = append(agents, a)
	}
	c, err := console.New(console.Options{Store: f.Store, Queue: q, Agents: agents, Clock: f.Clock, Blobs: f.Blobs, Referentials: newRefs(t)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for p, h := range c.Routes() {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.NewLot(anomaliestest.LotSpec{ID: "L1", Tenant: "acme", Destination: "CPAM-751", Invoices: 4},
		lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotSent, lifecycle.LotARLNegative)
	f.NewLot(anomaliestest.LotSpec{ID: "L2", Tenant: "beta", Destination: "CPAM-130"}, lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotDeliveryFailed)
	f.NewLot(anomaliestest.LotSpec{ID: "L3", Tenant: "acme", Destination: "CPAM-130", Number: 2}, lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotSent)
	f.Anomaly("A1", anomalies.KindARLNegative, "lot:L1", "acme", "CPAM-751", 24*time.Hour)
	f.Anomaly("A2", anomalies.KindDeliveryFailed, "lot:L2", "beta", "CPAM-130", 4*time.Hour)
	f.Anomaly("A3", anomalies.KindRefused, "file:F-L2", "beta", "", 24*time.Hour)
	f.Clock.Advance(5 * time.Hour)
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &env{t: t, f: f, srv: srv, c: cl, console: c, agents: agents}
}

func (e *env) do(method, path string, form url.Values) (int, string, http.Header) {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := e.c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`)
var actionRe = regexp.MustCompile(`name="action_id" value="([0-9a-f]+)"`)

func (e *env) login(name string) string {
	e.t.Helper()
	code, _, h := e.do("POST", "/console/login", url.Values{"name": {name}, "password": {"secret-" + name}, "next": {"/console/"}})
	if code != http.StatusSeeOther || h.Get("Location") != "/console/" {
		e.t.Fatalf("login: %d %v", code, h)
	}
	_, page, _ := e.do("GET", "/console/", nil)
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		e.t.Fatal("no CSRF token on the queue page")
	}
	return m[1]
}

func TestLoginRequired(t *testing.T) {
	e := newEnv(t)
	code, _, h := e.do("GET", "/console/anomaly/A1", nil)
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/login?next=") {
		t.Fatalf("%d %v", code, h)
	}
	if code, _, _ := e.do("POST", "/console/anomaly/A1/resolve", url.Values{"code": {"fixed"}}); code != http.StatusForbidden {
		t.Fatalf("anonymous POST: %d", code)
	}
	code, page, _ := e.do("POST", "/console/login", url.Values{"name": {"alice"}, "password": {"wrong"}})
	if code != http.StatusUnauthorized || !strings.Contains(page, "wrong password") {
		t.Fatalf("wrong password: %d", code)
	}
	// A second failure from the same address at once is refused without
	// checking the password, with Retry-After.
	code, _, h = e.do("POST", "/console/login", url.Values{"name": {"alice"}, "password": {"secret-alice"}})
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("login right after a failure: %d %v", code, h)
	}
	e.f.Clock.Advance(2 * time.Second)
	if code, _, _ := e.do("POST", "/console/login", url.Values{"name": {"mallory"}, "password": {"x"}}); code != http.StatusUnauthorized {
		t.Fatalf("unknown agent: %d", code)
	}
	e.f.Clock.Advance(10 * time.Second)
	// an open redirect is not followed
	code, _, h = e.do("POST", "/console/login", url.Values{"name": {"alice"}, "password": {"secret-alice"}, "next": {"//evil.example/"}})
	if code != http.StatusSeeOther || h.Get("Location") != "/console/" {
		t.Fatalf("next: %v", h.Get("Location"))
	}
	if !strings.Contains(h.Get("Set-Cookie"), "HttpOnly") || !strings.Contains(h.Get("Set-Cookie"), "SameSite=Strict") {
		t.Fatalf("cookie %q", h.Get("Set-Cookie"))
	}
}

func TestQueueFilterAndOverview(t *testing.T) {
	e := newEnv(t)
	e.login("alice")
	_, page, h0 := e.do("GET", "/console/?tenant=beta", nil)
	if !strings.Contains(page, "A2") || !strings.Contains(page, "A3") || strings.Contains(page, ">A1<") {
		t.Fatalf("tenant filter: %s", page)
	}
	if !strings.Contains(h0.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("CSP %q", h0.Get("Content-Security-Policy"))
	}
	_, page, _ = e.do("GET", "/console/?kind=delivery-failed&age=4", nil)
	if !strings.Contains(page, ">A2<") || strings.Contains(page, ">A3<") || !strings.Contains(page, "overdue") {
		t.Fatalf("kind filter: %s", page)
	}
	if code, _, _ := e.do("GET", "/console/?age=abc", nil); code != http.StatusBadRequest {
		t.Fatalf("bad age: %d", code)
	}
	// GET / shows nothing to anybody: it sends to the dashboard, which
	// needs a login.
	e.c.Jar, _ = cookiejar.New(nil)
	code, page, h := e.do("GET", "/", nil)
	if code != http.StatusSeeOther || h.Get("Location") != "/console/dashboard" || strings.Contains(page, "acme") {
		t.Fatalf("GET / anonymous: %d %v %q", code, h, page)
	}
	code, _, h = e.do("GET", "/console/dashboard", nil)
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/login?next=%2Fconsole%2Fdashboard") {
		t.Fatalf("dashboard anonymous: %d %v", code, h)
	}
}

func TestAnomalyActions(t *testing.T) {
	e := newEnv(t)
	csrf := e.login("alice")
	// no or wrong token: refused
	if code, _, _ := e.do("POST", "/console/anomaly/A2/assign", url.Values{"agent": {"bob"}}); code != http.StatusForbidden {
		t.Fatalf("no CSRF: %d", code)
	}
	if code, _, _ := e.do("POST", "/console/anomaly/A2/assign", url.Values{"agent": {"bob"}, "csrf": {strings.Repeat("0", 64)}}); code != http.StatusForbidden {
		t.Fatalf("wrong CSRF: %d", code)
	}
	code, _, h := e.do("POST", "/console/anomaly/A2/assign", url.Values{"agent": {"bob"}, "csrf": {csrf}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "done=") {
		t.Fatalf("assign %d %v", code, h)
	}
	if a, _ := e.f.Store.Anomaly(e.f.Ctx, "A2"); a.Assignee != "bob" {
		t.Fatalf("%+v", a)
	}
	if code, _, h := e.do("POST", "/console/anomaly/A2/assign", url.Values{"agent": {"mallory"}, "csrf": {csrf}}); code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "err=") {
		t.Fatalf("unknown agent %d %v", code, h)
	}
	e.do("POST", "/console/anomaly/A2/comment", url.Values{"text": {"called the CPAM, NIR 1 84 12 75 123 456 78"}, "csrf": {csrf}})
	_, page, _ := e.do("GET", "/console/anomaly/A2", nil)
	if !strings.Contains(page, "called the CPAM") || strings.Contains(page, "123 456") || !strings.Contains(page, "assigned to bob") {
		t.Fatalf("page: %s", page)
	}
	// send again: delivery_failed -> routed + sign job
	aid := actionRe.FindStringSubmatch(page)[1]
	for range 2 { // a double click
		e.do("POST", "/console/anomaly/A2/resend", url.Values{"action_id": {aid}, "csrf": {csrf}})
	}
	if jobs := e.f.Jobs(anomalies.JobSign); len(jobs) != 1 {
		t.Fatalf("%d sign jobs", len(jobs))
	}
	code, _, _ = e.do("POST", "/console/anomaly/A2/resolve", url.Values{"code": {"resent"}, "note": {"ok now"}, "csrf": {csrf}})
	if a, _ := e.f.Store.Anomaly(e.f.Ctx, "A2"); code != http.StatusSeeOther || a.State != lifecycle.AnomalyResolved {
		t.Fatalf("resolve %d %+v", code, a)
	}
	// rebuild L1 leaving out its second invoice
	_, page, _ = e.do("GET", "/console/anomaly/A1", nil)
	invs, _ := e.f.Store.Invoices(e.f.Ctx, "L1")
	aid = actionRe.FindStringSubmatch(page)[1]
	code, _, h = e.do("POST", "/console/anomaly/A1/rebuild", url.Values{"action_id": {aid}, "drop": {invs[1].Number}, "csrf": {csrf}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "rebuilt") {
		t.Fatalf("rebuild %d %v", code, h)
	}
	lots, _ := e.f.Store.Lots(e.f.Ctx, store.LotQuery{File: "F-L1"})
	if len(lots) != 2 || lots[1].Replaces != "L1" || lots[1].Invoices != 3 {
		t.Fatalf("%+v", lots)
	}
	_, page, _ = e.do("GET", "/console/lot/L1", nil)
	for _, want := range []string{"rebuilt", lots[1].ID, invs[1].Number, "dropped", "L1-a1"} {
		if !strings.Contains(page, want) {
			t.Fatalf("lot page lacks %q", want)
		}
	}
	_, page, _ = e.do("GET", "/console/file/F-L1", nil)
	if !strings.Contains(page, lots[1].ID) {
		t.Fatal("file page")
	}
	if code, _, _ := e.do("GET", "/console/anomaly/nope", nil); code != http.StatusNotFound {
		t.Fatalf("missing anomaly %d", code)
	}
}

func TestBulkPages(t *testing.T) {
	e := newEnv(t)
	csrf := e.login("alice")
	_, page, _ := e.do("GET", "/console/bulk?state=active&tenant=beta&limit=10", nil)
	if !strings.Contains(page, "<strong>2</strong>") {
		t.Fatalf("count: %s", page)
	}
	aid := actionRe.FindStringSubmatch(page)[1]
	form := url.Values{"csrf": {csrf}, "action_id": {aid}, "tenant": {"beta"}, "state": {"active"}, "action": {"assign"}, "agent": {"alice"}, "limit": {"1"}}
	if code, _, _ := e.do("POST", "/console/bulk", form); code != http.StatusBadRequest {
		t.Fatalf("unconfirmed: %d", code)
	}
	form.Set("confirm", "yes")
	for i, want := range []string{"1 done, 0 skipped", "0 done, 1 skipped"} {
		code, page, _ := e.do("POST", "/console/bulk", form)
		if code != http.StatusOK || !strings.Contains(page, want) {
			t.Fatalf("run %d: %d %s", i, code, page)
		}
	}
	n, _ := anomalies.New(anomalies.Options{Store: e.f.Store, Clock: e.f.Clock})
	if c, _ := n.Count(e.f.Ctx, anomalies.Filter{Assignee: "alice", State: lifecycle.AnomalyAssigned}); c != 1 {
		t.Fatalf("%d assigned", c)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	csrf := e.login("bob")
	if code, _, _ := e.do("POST", "/console/logout", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther {
		t.Fatal(code)
	}
	if code, _, _ := e.do("GET", "/console/", nil); code != http.StatusSeeOther {
		t.Fatalf("still logged in: %d", code)
	}
}
