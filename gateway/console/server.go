package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/intake/penalty"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// Options configure the console.
type Options struct {
	Store      store.Store
	Queue      *anomalies.Queue // required for /console/
	Agents     []Agent          // who may log in (LoadAgents)
	Logger     *slog.Logger
	Clock      anomalies.Clock
	SessionTTL time.Duration // default 12h
	// Timeout bounds the store work of one request (default 10s).
	Timeout time.Duration
	// Blobs opens raw files for download (users with the raw permission);
	// nil: no download.
	Blobs BlobOpener
	// Referentials backs the versions and diffs page; nil: the page says
	// "not configured".
	Referentials Referentials
	// SecureCookie marks the session cookie Secure even on plain HTTP
	// requests (TLS ended by a proxy in front); over TLS it always is.
	SecureCookie bool
	// DashboardBudget bounds the time the dashboard spends counting lots
	// by state (default 2s); what it could not count is said so.
	DashboardBudget time.Duration
}

// Console serves the overview and the support pages.
type Console struct {
	o     Options
	log   *slog.Logger
	now   func() time.Time
	sess  *sessions
	mux   *http.ServeMux
	names []string

	failMu sync.Mutex
	fails  *penalty.Table // failed logins per source address
}

// ErrConfig reports console options that cannot work.
var ErrConfig = errors.New("console-config")

// New returns the console. Mount it with Routes.
func New(o Options) (*Console, error) {
	if o.Store == nil || o.Queue == nil {
		return nil, fmt.Errorf("%w: Store and Queue are required", ErrConfig)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.DashboardBudget <= 0 {
		o.DashboardBudget = 2 * time.Second
	}
	clock := o.Clock
	if clock == nil {
		clock = anomalies.ClockFunc(time.Now)
	}
	c := &Console{o: o, log: o.Logger, now: func() time.Time { return clock.Now().UTC() }, mux: http.NewServeMux()}
	// a typed nil (a node without referential or blobs) is "not configured"
	if isNil(o.Referentials) {
		o.Referentials = nil
	}
	if isNil(o.Blobs) {
		o.Blobs = nil
	}
	for _, a := range o.Agents {
		if err := a.Check(); err != nil {
			return nil, err
		}
	}
	c.o = o
	c.sess = newSessions(o.Agents, o.SessionTTL, c.now)
	c.fails = penalty.New(time.Second, time.Minute, time.Hour, 10000)
	for _, a := range o.Agents {
		if (user{a.normal()}).CanAct() { // anomalies go to admin and support users only
			c.names = append(c.names, a.Name)
		}
	}
	sort.Strings(c.names)
	c.mux.HandleFunc("GET /console/login", c.loginPage)
	c.mux.HandleFunc("POST /console/login", c.loginPost)
	c.mux.HandleFunc("POST /console/logout", c.authed(c.logout))
	for _, r := range c.routes() {
		c.mux.HandleFunc(r.pattern, r.h)
	}
	c.mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		secureHeaders(w)
		http.Error(w, "no such page", http.StatusNotFound)
	})
	return c, nil
}

type route struct {
	pattern string
	h       http.HandlerFunc
}

// routes are the console's pages behind a login; every handler checks the
// user's role and scope itself (authed only checks the session and CSRF).
func (c *Console) routes() []route {
	return []route{
		{"GET /console/{$}", c.authed(c.queuePage)},
		{"GET /console/dashboard", c.authed(c.dashboardPage)},
		{"GET /console/search", c.authed(c.searchPage)},
		{"GET /console/anomaly/{id}", c.authed(c.anomalyPage)},
		{"POST /console/anomaly/{id}/{action}", c.authed(c.anomalyAction)},
		{"GET /console/bulk", c.authed(c.acting(c.bulkPage))},
		{"POST /console/bulk", c.authed(c.acting(c.bulkPost))},
		{"GET /console/lot/{id}", c.authed(c.lotPage)},
		{"GET /console/lot/{id}/raw", c.authed(c.lotRaw)},
		{"GET /console/file/{id}", c.authed(c.filePage)},
		{"GET /console/file/{id}/raw", c.authed(c.fileRaw)},
		{"GET /console/referentials", c.authed(c.referentialsPage)},
	}
}

// Routes are the patterns to register on the API mux: "GET /{$}" (a
// redirect to the dashboard, which needs a login) and every console page
// under "/console/".
func (c *Console) Routes() map[string]http.Handler {
	return map[string]http.Handler{"GET /{$}": Handler(c.o.Store, c.log), "/console/": c}
}

// OnDuty is an anomalies.Roster of the agents logged in now, every team
// alike (use it when no roster is configured).
func (c *Console) OnDuty(_ context.Context, _ string, _ time.Time) ([]string, error) {
	return c.sess.onDuty(), nil
}

// ServeHTTP serves /console/.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	c.mux.ServeHTTP(w, r)
}

func isNil(x any) bool {
	if x == nil {
		return true
	}
	v := reflect.ValueOf(x)
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Interface, reflect.Func, reflect.Slice, reflect.Chan:
		return v.IsNil()
	}
	return false
}

func secureHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

type ctxKey struct{}

type reqSession struct {
	*session
	id string
}

func (s reqSession) u() user { return user{s.user} }

// acting requires a role that may act (admin, support): 403 otherwise.
func (c *Console) acting(h func(http.ResponseWriter, *http.Request, reqSession)) func(http.ResponseWriter, *http.Request, reqSession) {
	return func(w http.ResponseWriter, r *http.Request, s reqSession) {
		if !s.u().CanAct() {
			c.forbidden(w, s)
			return
		}
		h(w, r, s)
	}
}

func (c *Console) forbidden(w http.ResponseWriter, s reqSession) {
	c.log.Info("console: refused by role", "agent", s.agent, "role", s.user.Role)
	c.render(w, http.StatusForbidden, "error", &s, "your role may not do this")
}

// notFound answers an id out of the user's scope exactly like a missing one.
func (c *Console) notFound(w http.ResponseWriter, s reqSession) {
	c.fail(w, s, store.ErrNotFound)
}

// authed requires a session (GET: redirect to the login page; POST: 403)
// and, for POST, the session's CSRF token.
func (c *Console) authed(h func(http.ResponseWriter, *http.Request, reqSession)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		secureHeaders(w)
		s, id := c.sess.get(r)
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "not logged in", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodPost && !csrfOK(s, r) {
			c.log.Warn("console: CSRF token missing or wrong", "agent", s.agent, "path", r.URL.Path)
			http.Error(w, "invalid or missing CSRF token: reload the page", http.StatusForbidden)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), c.o.Timeout)
		defer cancel()
		h(w, r.WithContext(ctx), reqSession{s, id})
	}
}

func (c *Console) render(w http.ResponseWriter, status int, name string, s *reqSession, data any) {
	v := struct {
		Agent, CSRF, Now string
		Role             Role
		Scope            string
		CanAct, CanRaw   bool
		Data             any
	}{Now: c.now().Format("2006-01-02 15:04 MST"), Data: data}
	if s != nil {
		u := s.u()
		v.Agent, v.CSRF, v.Role, v.Scope, v.CanAct, v.CanRaw = s.agent, s.csrf, u.Role, u.Scope(), u.CanAct(), u.CanRaw()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages[name].ExecuteTemplate(w, "layout", v); err != nil {
		c.log.Warn("console render failed", "page", name, "error", err)
	}
}

// fail answers an error of the store or of an action.
func (c *Console) fail(w http.ResponseWriter, s reqSession, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, store.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, anomalies.ErrBadRequest):
		status = http.StatusBadRequest
	case errors.Is(err, anomalies.ErrNotAllowed), errors.Is(err, anomalies.ErrNoLot), errors.Is(err, store.ErrConflict),
		errors.Is(err, lifecycle.ErrIllegal), errors.Is(err, anomalies.ErrNoRule), errors.Is(err, anomalies.ErrNoAgent):
		status = http.StatusConflict
	default:
		c.log.Warn("console request failed", "agent", s.agent, "error", err)
	}
	c.render(w, status, "error", &s, anomalies.MaskNIR(err.Error()))
}

// --- login ---

func safeNext(next string) string {
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/console/"
	}
	return next
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	secureHeaders(w)
	c.render(w, http.StatusOK, "login", nil, map[string]string{"Next": safeNext(r.URL.Query().Get("next"))})
}

func (c *Console) loginPost(w http.ResponseWriter, r *http.Request) {
	secureHeaders(w)
	name, pw := r.PostFormValue("name"), r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	addr, _, _ := net.SplitHostPort(r.RemoteAddr)
	c.failMu.Lock()
	wait := c.fails.Remaining(addr, c.now())
	c.failMu.Unlock()
	if wait > 0 { // repeated failures from this address: refused without checking the password
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		c.render(w, http.StatusTooManyRequests, "login", nil, map[string]string{"Next": next, "Error": "too many failed logins: wait a moment"})
		return
	}
	id, ok := c.sess.login(name, pw)
	c.failMu.Lock()
	if ok {
		c.fails.OK(addr)
	} else {
		c.fails.Fail(addr, c.now())
	}
	c.failMu.Unlock()
	if !ok {
		c.log.Info("console login refused", "agent", name)
		c.render(w, http.StatusUnauthorized, "login", nil, map[string]string{"Next": next, "Error": "unknown agent or wrong password"})
		return
	}
	c.log.Info("console login", "agent", name)
	c.audit(r.Context(), "agent:"+name, "console-login", user{c.sess.who[name]}, "")
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/console/", HttpOnly: true, Secure: r.TLS != nil || c.o.SecureCookie,
		SameSite: http.SameSiteStrictMode, MaxAge: int(c.o.SessionTTL / time.Second)})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s reqSession) {
	c.sess.logout(s.id)
	c.audit(r.Context(), "agent:"+s.agent, "console-logout", s.u(), "")
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console/", HttpOnly: true, MaxAge: -1, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// --- queue ---

type filterForm struct {
	Kind, Tenant, Destination, State, Assignee, Age string
}

func (f filterForm) Query() string {
	v := url.Values{}
	for k, x := range map[string]string{"kind": f.Kind, "tenant": f.Tenant, "destination": f.Destination, "state": f.State, "assignee": f.Assignee, "age": f.Age} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v.Encode()
}

func readFilter(get func(string) string) (filterForm, anomalies.Filter, error) {
	ff := filterForm{Kind: get("kind"), Tenant: get("tenant"), Destination: get("destination"), State: get("state"),
		Assignee: get("assignee"), Age: get("age")}
	f := anomalies.Filter{Kind: ff.Kind, Tenant: ff.Tenant, Destination: ff.Destination, Assignee: ff.Assignee, State: lifecycle.State(ff.State)}
	switch ff.State {
	case "":
		ff.State, f.State = string(anomalies.StateActive), anomalies.StateActive
	case "all":
		f.State = ""
	}
	if ff.Age != "" {
		h, err := strconv.ParseFloat(ff.Age, 64)
		if err != nil || h < 0 || h > 24*3650 {
			return ff, f, fmt.Errorf("%w: age is a number of hours", anomalies.ErrBadRequest)
		}
		f.OlderThan = time.Duration(h * float64(time.Hour))
	}
	return ff, f, nil
}

type queueView struct {
	Filter  filterForm
	Items   []anomalies.Item
	Kinds   []string
	States  []string
	Agents  []string
	Limited bool
}

var filterStates = []string{string(anomalies.StateActive), "open", "assigned", "resolved", "handed_back", "cancelled", "all"}

func (c *Console) queuePage(w http.ResponseWriter, r *http.Request, s reqSession) {
	ff, f, err := readFilter(r.URL.Query().Get)
	if err != nil {
		c.fail(w, s, err)
		return
	}
	f.Limit = 500
	scopeFilter(s.u(), &ff, &f)
	items, err := c.list(r.Context(), s.u(), f)
	if err != nil {
		c.fail(w, s, err)
		return
	}
	c.render(w, http.StatusOK, "queue", &s, queueView{Filter: ff, Items: items, Kinds: anomalies.Kinds(), States: filterStates,
		Agents: c.names, Limited: len(items) == f.Limit})
}

// --- anomaly ---

type invoiceRow struct {
	store.Invoice
	Suggested bool // pre-checked for a rebuild
}

type anomalyView struct {
	anomalies.Detail
	Lot      *store.Lot
	Invoices []invoiceRow
	Agents   []string
	Codes    []string
	ActionID string
	Done     string
	Err      string
}

func newActionID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *Console) anomalyPage(w http.ResponseWriter, r *http.Request, s reqSession) {
	d, err := c.o.Queue.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, s, err)
		return
	}
	if !s.u().seesAnomaly(d.Anomaly) {
		c.notFound(w, s)
		return
	}
	v := anomalyView{Detail: d, Agents: c.names, Codes: anomalies.ReasonCodes, ActionID: newActionID(),
		Done: r.URL.Query().Get("done"), Err: r.URL.Query().Get("err")}
	if d.Lot != "" {
		if lot, err := c.o.Store.Lot(r.Context(), d.Lot); err == nil && s.u().seesLot(lot) {
			v.Lot = &lot
			invs, err := c.o.Store.Invoices(r.Context(), lot.ID)
			if err != nil {
				c.fail(w, s, err)
				return
			}
			for _, inv := range invs {
				v.Invoices = append(v.Invoices, invoiceRow{Invoice: inv, Suggested: inv.State == lifecycle.InvoiceRejected || len(inv.Codes) > 0})
			}
		}
	}
	c.render(w, http.StatusOK, "anomaly", &s, v)
}

func (c *Console) anomalyAction(w http.ResponseWriter, r *http.Request, s reqSession) {
	id, action := r.PathValue("id"), r.PathValue("action")
	ctx, q := r.Context(), c.o.Queue
	if a, err := c.o.Store.Anomaly(ctx, id); err != nil || !s.u().seesAnomaly(a) {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			c.fail(w, s, err)
			return
		}
		c.notFound(w, s)
		return
	}
	if !s.u().CanAct() {
		c.forbidden(w, s)
		return
	}
	actor := s.u().actor()
	code, note, actionID := r.PostFormValue("code"), r.PostFormValue("note"), r.PostFormValue("action_id")
	var err error
	done := action
	switch action {
	case "assign":
		to := r.PostFormValue("agent")
		switch to {
		case "":
			err = fmt.Errorf("%w: choose an agent", anomalies.ErrBadRequest)
		case "auto":
			to, err = q.AutoAssign(ctx, id, actor)
		default:
			if !c.known(to) {
				err = fmt.Errorf("%w: unknown agent %q", anomalies.ErrBadRequest, to)
			} else {
				err = q.Assign(ctx, id, to, actor)
			}
		}
		done = "assigned to " + to
	case "unassign":
		err = q.Unassign(ctx, id, actor)
	case "comment":
		err = q.Comment(ctx, id, actor, r.PostFormValue("text"))
		done = "comment added"
	case "resend":
		err = q.Resend(ctx, id, actionID, actor)
		done = "resend requested"
	case "rebuild":
		drop := r.PostForm["drop"]
		if drop == nil {
			drop = []string{}
		}
		var res anomalies.RebuildResult
		res, err = q.Rebuild(ctx, id, drop, actionID, actor)
		done = fmt.Sprintf("rebuilt as %s (lot number %03d)", res.New, res.Number)
	case "cancel":
		if r.PostFormValue("lot_too") == "1" {
			err = q.CancelLot(ctx, id, actor, code, note)
		} else {
			err = q.Cancel(ctx, id, actor, code, note)
		}
		done = "cancelled"
	case "resolve":
		err = q.Resolve(ctx, id, actor, code, note)
		done = "resolved"
	case "handback":
		err = q.HandBack(ctx, id, actor, code, note)
		done = "handed back to the vendor"
	case "notify":
		err = q.NotifyAgain(ctx, id, actor)
		done = "vendor notified"
	default:
		c.render(w, http.StatusNotFound, "error", &s, "unknown action")
		return
	}
	back := "/console/anomaly/" + url.PathEscape(id)
	switch {
	case err == nil:
		c.log.Info("console action", "agent", s.agent, "anomaly", id, "action", action)
		http.Redirect(w, r, back+"?done="+url.QueryEscape(done), http.StatusSeeOther)
	case errors.Is(err, anomalies.ErrNotify):
		http.Redirect(w, r, back+"?err="+url.QueryEscape(done+", but the vendor was not notified: use “notify again”"), http.StatusSeeOther)
	case errors.Is(err, store.ErrNotFound) && action != "rebuild" && action != "resend":
		c.fail(w, s, err)
	default:
		c.log.Info("console action refused", "agent", s.agent, "anomaly", id, "action", action, "error", err)
		http.Redirect(w, r, back+"?err="+url.QueryEscape(anomalies.MaskNIR(err.Error())), http.StatusSeeOther)
	}
}

func (c *Console) known(agent string) bool {
	i := sort.SearchStrings(c.names, agent)
	return i < len(c.names) && c.names[i] == agent
}

// --- bulk ---

type bulkView struct {
	Filter   filterForm
	Count    int
	Preview  []anomalies.Item
	Limit    int
	Actions  []string
	Codes    []string
	Agents   []string
	Kinds    []string
	States   []string
	ActionID string
	Result   *anomalies.BulkResult
	Request  *anomalies.BulkRequest
}

func (c *Console) bulkPage(w http.ResponseWriter, r *http.Request, s reqSession) {
	q := r.URL.Query()
	ff, f, err := readFilter(q.Get)
	if err != nil {
		c.fail(w, s, err)
		return
	}
	limit := 50
	if x := q.Get("limit"); x != "" {
		if limit, err = strconv.Atoi(x); err != nil || limit < 1 || limit > anomalies.MaxBulk {
			c.fail(w, s, fmt.Errorf("%w: limit is 1..%d", anomalies.ErrBadRequest, anomalies.MaxBulk))
			return
		}
	}
	v := bulkView{Filter: ff, Limit: limit, Actions: anomalies.BulkActions, Codes: anomalies.ReasonCodes, Agents: c.names,
		Kinds: anomalies.Kinds(), States: filterStates, ActionID: newActionID()}
	if v.Count, err = c.o.Queue.Count(r.Context(), f); err != nil {
		c.fail(w, s, err)
		return
	}
	if v.Preview, err = c.o.Queue.Preview(r.Context(), f, limit); err != nil {
		c.fail(w, s, err)
		return
	}
	c.render(w, http.StatusOK, "bulk", &s, v)
}

func (c *Console) bulkPost(w http.ResponseWriter, r *http.Request, s reqSession) {
	ff, f, err := readFilter(r.PostFormValue)
	if err != nil {
		c.fail(w, s, err)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		c.fail(w, s, fmt.Errorf("%w: tick the confirmation box", anomalies.ErrBadRequest))
		return
	}
	limit, _ := strconv.Atoi(r.PostFormValue("limit"))
	req := anomalies.BulkRequest{ID: r.PostFormValue("action_id"), Filter: f, Action: r.PostFormValue("action"), Limit: limit,
		Actor: s.u().actor(), Assignee: r.PostFormValue("agent"), Code: r.PostFormValue("code"), Note: r.PostFormValue("note")}
	if req.Action == anomalies.BulkAssign && !c.known(req.Assignee) {
		c.fail(w, s, fmt.Errorf("%w: unknown agent %q", anomalies.ErrBadRequest, req.Assignee))
		return
	}
	res, err := c.o.Queue.Bulk(r.Context(), req)
	if err != nil {
		c.fail(w, s, err)
		return
	}
	c.log.Info("console bulk action", "agent", s.agent, "action", req.Action, "id", req.ID, "done", res.Done, "skipped", res.Skipped, "failed", res.Failed)
	c.render(w, http.StatusOK, "bulk", &s, bulkView{Filter: ff, Limit: limit, Result: &res, Request: &req})
}

// --- lot and file ---

type lotView struct {
	Lot          store.Lot
	File         store.File
	Siblings     []store.Lot
	ReplacedBy   []store.Lot
	Invoices     []store.Invoice
	Attempts     []store.Attempt
	Expectations []store.Expectation
	Returns      []store.Return
	ReturnsCut   bool
	Anomalies    []store.Anomaly
	Events       []store.Event
	FileVisible  bool // the user may see the whole file (not an insurer)
	Raw          bool // the raw download link is shown
	Timeline     []tlEntry
	// Linked are the lots tied across flows (PEC request ↔ invoices that
	// carry its number, B2 lot ↔ its SCOR attachments), in the user's scope.
	Linked      []store.Lot
	LinkedInvs  []store.Invoice
	LinkedLabel string
}

// maxReturnScan bounds the tenant feed read to find a lot's returns.
const maxReturnScan = 5000

func (c *Console) lotPage(w http.ResponseWriter, r *http.Request, s reqSession) {
	ctx, st := r.Context(), c.o.Store
	var v lotView
	var err error
	if v.Lot, err = st.Lot(ctx, r.PathValue("id")); err != nil {
		c.fail(w, s, err)
		return
	}
	u := s.u()
	if !u.seesLot(v.Lot) {
		c.notFound(w, s)
		return
	}
	id := v.Lot.ID
	steps := []func() error{
		func() (err error) { v.File, err = st.File(ctx, v.Lot.File); return },
		func() (err error) {
			v.Siblings, err = st.Lots(ctx, store.LotQuery{File: v.Lot.File, Limit: 1000})
			return
		},
		func() (err error) { v.Invoices, err = st.Invoices(ctx, id); return },
		func() (err error) { v.Attempts, err = st.Attempts(ctx, id); return },
		func() (err error) { v.Expectations, err = st.Expectations(ctx, id); return },
		func() (err error) {
			v.Anomalies, err = st.Anomalies(ctx, store.AnomalyQuery{Subject: "lot:" + id, Limit: 200})
			return
		},
		func() (err error) { v.Events, err = st.Events(ctx, "lot:"+id); return },
		func() error {
			var after int64
			for read := 0; read < maxReturnScan; {
				rs, err := st.Returns(ctx, v.Lot.Tenant, after, 500)
				if err != nil {
					return err
				}
				for _, x := range rs {
					if x.Lot == id {
						v.Returns = append(v.Returns, x)
					}
				}
				read += len(rs)
				if len(rs) < 500 {
					return nil
				}
				after = rs[len(rs)-1].Seq
			}
			v.ReturnsCut = true
			return nil
		},
	}
	for _, step := range steps {
		if err := step(); err != nil && !errors.Is(err, store.ErrNotFound) {
			c.fail(w, s, err)
			return
		}
	}
	v.Siblings = u.filterLots(v.Siblings)
	for _, l := range v.Siblings {
		if l.Replaces == id {
			v.ReplacedBy = append(v.ReplacedBy, l)
		}
	}
	var seen []store.Anomaly
	for _, a := range v.Anomalies {
		if u.seesAnomaly(a) {
			seen = append(seen, a)
		}
	}
	v.Anomalies = seen
	v.FileVisible = u.seesFileOwn(v.File)
	v.Raw = u.CanRaw() && c.o.Blobs != nil && v.Lot.Blob != ""
	if links, err := gateway.LinksOf(ctx, st, v.Lot, v.Invoices); err != nil {
		c.fail(w, s, err)
		return
	} else if links != nil {
		if links.B2Lot != nil {
			v.Linked = append(v.Linked, *links.B2Lot)
		}
		v.Linked = u.filterLots(append(append(v.Linked, links.SCOR...), links.PECRequests...))
		for _, inv := range links.Invoices {
			if l, err := st.Lot(ctx, inv.Lot); err == nil && u.seesLot(l) {
				v.LinkedInvs = append(v.LinkedInvs, inv)
			}
		}
	}
	v.Timeline = timeline(v)
	c.render(w, http.StatusOK, "lot", &s, v)
}

type fileView struct {
	File store.File
	Lots []store.Lot
	Own  bool // the user sees the whole file (else only its lots in scope)
	Raw  bool
}

func (c *Console) filePage(w http.ResponseWriter, r *http.Request, s reqSession) {
	var v fileView
	var err error
	if v.File, err = c.o.Store.File(r.Context(), r.PathValue("id")); err != nil {
		c.fail(w, s, err)
		return
	}
	if v.Lots, err = c.o.Store.Lots(r.Context(), store.LotQuery{File: v.File.ID, Limit: 1000}); err != nil {
		c.fail(w, s, err)
		return
	}
	u := s.u()
	v.Own = u.seesFileOwn(v.File)
	v.Lots = u.filterLots(v.Lots)
	if !v.Own && len(v.Lots) == 0 {
		c.notFound(w, s)
		return
	}
	if !v.Own { // an insurer: only its lots, nothing of the vendor's file
		v.File = store.File{ID: v.File.ID, Tenant: v.File.Tenant, State: v.File.State, ReceivedAt: v.File.ReceivedAt}
	}
	v.Raw = v.Own && u.CanRaw() && c.o.Blobs != nil && v.File.SHA256 != ""
	c.render(w, http.StatusOK, "file", &s, v)
}

// audit journals what a user did (login, logout, a raw download) as an
// event of subject; the anomaly actions are journalled by the queue with
// the same actor (name/role).
func (c *Console) audit(ctx context.Context, subject, typ string, u user, reason string) error {
	err := c.o.Store.Commit(ctx, &store.Change{Actor: u.actor(), Events: []store.Event{{Subject: subject, Type: typ, Actor: u.actor(), Reason: reason}}})
	if err != nil {
		c.log.Warn("console: audit event not written", "subject", subject, "type", typ, "agent", u.Name, "error", err)
	}
	return err
}

// scopeFilter narrows a queue filter to the user's scope: a vendor's
// tenant is forced; an insurer's destination must be one of its own ("":
// every one of them, see list).
func scopeFilter(u user, ff *filterForm, f *anomalies.Filter) {
	switch u.Role {
	case RoleVendor:
		ff.Tenant, f.Tenant = u.Tenant, u.Tenant
	case RoleInsurer:
		if ff.Destination != "" && !u.hasDest(ff.Destination) {
			ff.Destination, f.Destination = "", ""
		}
	}
}

// list is Queue.List within the user's scope: an insurer without a
// destination filter gets its destinations' items merged, most urgent
// first, at most f.Limit.
func (c *Console) list(ctx context.Context, u user, f anomalies.Filter) ([]anomalies.Item, error) {
	if u.Role != RoleInsurer || f.Destination != "" {
		items, err := c.o.Queue.List(ctx, f)
		return scopeItems(u, items), err
	}
	var all []anomalies.Item
	for _, d := range u.Destinations {
		g := f
		g.Destination = d
		items, err := c.o.Queue.List(ctx, g)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Due.Before(all[j].Due) })
	if f.Limit > 0 && len(all) > f.Limit {
		all = all[:f.Limit]
	}
	return scopeItems(u, all), nil
}

// scopeItems is a last check that nothing out of scope is shown.
func scopeItems(u user, items []anomalies.Item) []anomalies.Item {
	out := items[:0:0]
	for _, it := range items {
		if u.seesAnomaly(it.Anomaly) {
			out = append(out, it)
		}
	}
	return out
}
