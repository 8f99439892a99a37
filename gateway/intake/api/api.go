// Package api is the HTTP adapter of OCT: versioned JSON endpoints under
// /v1 for vendors (push files, read their state, follow their returns),
// health and readiness probes, and Prometheus metrics. It is a thin layer
// over gateway.Intake and the store: every rule about files lives there.
package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/referentials"
)

// Intaker is the one gateway call the API needs to take a file in.
type Intaker interface {
	Intake(ctx context.Context, tenant string, src gateway.Source, r io.Reader) (gateway.Ack, error)
	Draining() bool
}

// Options configure the API.
type Options struct {
	Gateway      Intaker
	Store        store.Store
	Gatherer     prometheus.Gatherer // for /metrics; nil = no endpoint
	Logger       *slog.Logger
	MaxFileBytes int64
	RPS          float64 // per tenant
	Burst        int
	LongPollMax  time.Duration
	OpenAPI      []byte                  // served at /v1/openapi.yaml
	Extra        map[string]http.Handler // more routes ("GET /", console...), registered as given
	Referentials Changes                 // AMC referential changes feed; nil = 404
	Now          func() time.Time
}

// Changes gives the referential changes since a version.
type Changes interface {
	Changes(ctx context.Context, sinceVersion uint64) (referentials.Diff, error)
}

// API is the http.Handler.
type API struct {
	o      Options
	mux    *http.ServeMux
	mu     sync.Mutex
	limits map[string]*rate.Limiter
	tokens map[string]cachedTenant
	signal *gateway.Signal
	routes []string
}

type cachedTenant struct {
	id      string
	expires time.Time
}

// New builds the handler. sig, when not nil, wakes long-polls of the
// returns feed.
func New(o Options, sig *gateway.Signal) *API {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = 64 << 20
	}
	if o.RPS <= 0 {
		o.RPS = 200
	}
	if o.Burst <= 0 {
		o.Burst = int(o.RPS * 2)
	}
	if o.LongPollMax <= 0 {
		o.LongPollMax = 30 * time.Second
	}
	a := &API{o: o, mux: http.NewServeMux(), limits: map[string]*rate.Limiter{}, tokens: map[string]cachedTenant{}, signal: sig}
	a.handle("POST /v1/files", a.tenantOnly(a.postFile))
	a.handle("POST /v1/certificates", a.tenantOnly(a.postFlow(store.FlowCertificate)))
	a.handle("POST /v1/pec", a.tenantOnly(a.postFlow(store.FlowPEC)))
	a.handle("POST /v1/scor", a.tenantOnly(a.postFlow(store.FlowSCOR)))
	a.handle("GET /v1/files", a.tenantOnly(a.listFiles))
	a.handle("GET /v1/files/{id}", a.tenantOnly(a.getFile))
	a.handle("GET /v1/lots", a.tenantOnly(a.listLots))
	a.handle("GET /v1/lots/{id}", a.tenantOnly(a.getLot))
	a.handle("GET /v1/returns", a.tenantOnly(a.listReturns))
	a.handle("GET /v1/referentials/amc/changes", a.tenantOnly(a.amcChanges))
	a.handle("GET /v1/openapi.yaml", http.HandlerFunc(a.openapi))
	a.handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	a.handle("GET /readyz", http.HandlerFunc(a.ready))
	if o.Gatherer != nil {
		a.handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	}
	for pattern, h := range o.Extra {
		a.handle(pattern, h)
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not-found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return a
}

func (a *API) handle(pattern string, h http.Handler) {
	a.routes = append(a.routes, pattern)
	a.mux.Handle(pattern, h)
}

// Routes lists the registered "METHOD /path" patterns (the OpenAPI test
// compares them with docs/openapi.yaml).
func (a *API) Routes() []string { return append([]string(nil), a.routes...) }

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.o.Logger.Error("handler panic", "path", r.URL.Path, "panic", fmt.Sprint(v))
			writeError(w, http.StatusInternalServerError, "internal", "internal error")
		}
	}()
	w.Header().Set("X-Content-Type-Options", "nosniff")
	a.mux.ServeHTTP(w, r)
}

// ---- authentication and rate limiting

type tenantHandler func(w http.ResponseWriter, r *http.Request, tenant string)

func (a *API) tenantOnly(h tenantHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		token, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="oct"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing bearer token")
			return
		}
		tenant, err := a.tenantFor(r.Context(), strings.TrimSpace(token))
		if errors.Is(err, store.ErrNotFound) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="oct", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "unknown or disabled token")
			return
		} else if err != nil {
			writeError(w, http.StatusServiceUnavailable, "unavailable", "store unavailable, retry later")
			return
		}
		if wait, ok := a.allow(tenant); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
			writeError(w, http.StatusTooManyRequests, "rate-limited", fmt.Sprintf("more than %g requests per second", a.o.RPS))
			return
		}
		h(w, r, tenant)
	})
}

func (a *API) tenantFor(ctx context.Context, token string) (string, error) {
	hash := gateway.TokenHash(token)
	now := a.o.Now()
	a.mu.Lock()
	c, ok := a.tokens[hash]
	a.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.id, nil
	}
	t, err := a.o.Store.TenantByToken(ctx, hash)
	if err != nil {
		return "", err
	}
	if t.Disabled {
		return "", store.ErrNotFound
	}
	a.mu.Lock()
	if len(a.tokens) > 10000 { // bounded cache
		clear(a.tokens)
	}
	a.tokens[hash] = cachedTenant{t.ID, now.Add(30 * time.Second)}
	a.mu.Unlock()
	return t.ID, nil
}

func (a *API) allow(tenant string) (time.Duration, bool) {
	a.mu.Lock()
	l, ok := a.limits[tenant]
	if !ok {
		l = rate.NewLimiter(rate.Limit(a.o.RPS), a.o.Burst)
		a.limits[tenant] = l
	}
	a.mu.Unlock()
	now := a.o.Now()
	res := l.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}

// ---- files

const maxIdemKey = 128

// postFlow is POST /v1/files for one flow (certificates, PEC, SCOR).
func (a *API) postFlow(flow string) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, tenant string) {
		q := r.URL.Query()
		q.Set("flow", flow)
		r.URL.RawQuery = q.Encode()
		a.postFile(w, r, tenant)
	}
}

// flowSource reads the flow parameters of an upload: flow, and for SCOR
// the B2 lot it goes with (scor_emitter, scor_lot, scor_date) when the
// name does not carry them.
func flowSource(src *gateway.Source, q url.Values) error {
	switch f := q.Get("flow"); f {
	case "", store.FlowB2, store.FlowCertificate, store.FlowPEC, store.FlowSCOR:
		src.Flow = f
	default:
		return fmt.Errorf("flow: one of b2, certificate, pec, scor (got %q)", f)
	}
	e, n, d := q.Get("scor_emitter"), q.Get("scor_lot"), q.Get("scor_date")
	if e == "" && n == "" && d == "" {
		return nil
	}
	num, err := strconv.Atoi(n)
	if err != nil || num < 1 || num > 999 {
		return fmt.Errorf("scor_lot: the B2 lot number 1..999")
	}
	if _, err := time.Parse(time.DateOnly, d); err != nil {
		return fmt.Errorf("scor_date: the B2 lot date YYYY-MM-DD")
	}
	if e == "" || len(e) > 14 {
		return fmt.Errorf("scor_emitter: the émetteur number of the B2 lot")
	}
	src.SCOR = gateway.SCORKey{Emitter: e, Number: num, Date: d}
	return nil
}

func (a *API) postFile(w http.ResponseWriter, r *http.Request, tenant string) {
	if r.ContentLength > a.o.MaxFileBytes+64<<10 {
		writeError(w, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("body of %d bytes is above the %d-byte limit", r.ContentLength, a.o.MaxFileBytes))
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdemKey || strings.IndexFunc(key, func(c rune) bool { return c < 0x21 || c > 0x7e }) >= 0 {
		writeError(w, http.StatusBadRequest, "bad-idempotency-key", "Idempotency-Key must be 1-128 printable ASCII characters")
		return
	}
	src := gateway.Source{Channel: "api", IdemKey: key, Remote: r.RemoteAddr, Name: r.URL.Query().Get("name")}
	if err := flowSource(&src, r.URL.Query()); err != nil {
		writeError(w, http.StatusBadRequest, "bad-parameter", err.Error())
		return
	}
	body := http.MaxBytesReader(w, r.Body, a.o.MaxFileBytes+64<<10)
	var content io.Reader = body
	if mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && strings.HasPrefix(mt, "multipart/") {
		part, err := firstFilePart(multipart.NewReader(body, params["boundary"]))
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad-multipart", err.Error())
			return
		}
		defer part.Close()
		if src.Name == "" {
			src.Name = part.FileName()
		}
		content = part
	}
	if len(src.Name) > 255 {
		src.Name = src.Name[:255]
	}
	ack, err := a.o.Gateway.Intake(r.Context(), tenant, src, content)
	var mbe *http.MaxBytesError
	switch {
	case err == nil && ack.Duplicate:
		writeJSON(w, http.StatusOK, ack)
	case err == nil:
		w.Header().Set("Location", "/v1/files/"+ack.ID)
		writeJSON(w, http.StatusCreated, ack)
	case errors.Is(err, gateway.ErrTooLarge), errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("file above the %d-byte limit: nothing was stored", a.o.MaxFileBytes))
	case errors.Is(err, gateway.ErrEmpty):
		writeError(w, http.StatusBadRequest, "empty", "the body is empty: nothing was stored")
	case errors.Is(err, gateway.ErrUnknownTenant):
		writeError(w, http.StatusUnauthorized, "unauthorized", "tenant unknown or disabled")
	case errors.Is(err, gateway.ErrShuttingDown):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "shutting-down", "this node is draining: retry, another node or this one after restart will take it")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusRequestTimeout, "timeout", "the upload did not complete in time: nothing was stored")
	default:
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the file could not be stored durably: retry later")
	}
}

func firstFilePart(mr *multipart.Reader) (*multipart.Part, error) {
	for i := 0; i < 16; i++ {
		p, err := mr.NextPart()
		if err != nil {
			return nil, fmt.Errorf("no file part in the multipart body")
		}
		if p.FormName() == "file" || p.FileName() != "" {
			return p, nil
		}
		p.Close()
	}
	return nil, fmt.Errorf("no file part in the first 16 parts")
}

// fileView is GET /v1/files/{id}.
type fileView struct {
	store.File
	Ack     gateway.Ack   `json:"acknowledgement"`
	History []historyItem `json:"history"`
	LotList []store.Lot   `json:"lot_list"`
}

type historyItem struct {
	Time   time.Time       `json:"time"`
	From   lifecycle.State `json:"from,omitempty"`
	To     lifecycle.State `json:"to,omitempty"`
	Type   string          `json:"type"`
	Actor  string          `json:"actor"`
	Reason string          `json:"reason,omitempty"`
}

func history(evs []store.Event) []historyItem {
	out := make([]historyItem, 0, len(evs))
	for _, e := range evs {
		out = append(out, historyItem{e.Time, e.From, e.To, e.Type, e.Actor, e.Reason})
	}
	return out
}

func (a *API) getFile(w http.ResponseWriter, r *http.Request, tenant string) {
	f, err := a.o.Store.File(r.Context(), r.PathValue("id"))
	if err != nil || f.Tenant != tenant { // another tenant's file does not exist for you
		a.storeError(w, err, "file")
		return
	}
	ack, _ := gateway.FileAck(f)
	evs, err := a.o.Store.Events(r.Context(), "file:"+f.ID)
	if err != nil {
		a.storeError(w, err, "file")
		return
	}
	lots, err := a.o.Store.Lots(r.Context(), store.LotQuery{Tenant: tenant, File: f.ID, Limit: 1000})
	if err != nil {
		a.storeError(w, err, "file")
		return
	}
	if lots == nil {
		lots = []store.Lot{}
	}
	writeJSON(w, http.StatusOK, fileView{File: f, Ack: ack, History: history(evs), LotList: lots})
}

func (a *API) listFiles(w http.ResponseWriter, r *http.Request, tenant string) {
	after, limit, ok := paging(w, r)
	if !ok {
		return
	}
	files, err := a.o.Store.Files(r.Context(), tenant, after, limit+1)
	if err != nil {
		a.storeError(w, err, "files")
		return
	}
	next := ""
	if len(files) > limit {
		files, next = files[:limit], encodeCursor(files[limit-1].ID)
	}
	if files == nil {
		files = []store.File{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"files": files, "next_cursor": next})
}

// ---- lots

func (a *API) listLots(w http.ResponseWriter, r *http.Request, tenant string) {
	after, limit, ok := paging(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	lq := store.LotQuery{Tenant: tenant, File: q.Get("file"), Emitter: q.Get("emitter"), Date: q.Get("date"),
		Destination: q.Get("destination"), State: lifecycle.State(q.Get("state")), After: after, Limit: limit + 1,
		Flow: q.Get("flow"), Ref: q.Get("ref"), PEC: q.Get("pec")}
	if n := q.Get("number"); n != "" {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 || v > 999 {
			writeError(w, http.StatusBadRequest, "bad-parameter", "number: a lot number 0..999")
			return
		}
		lq.Number = v
	}
	if lq.Date != "" {
		if _, err := time.Parse("2006-01-02", lq.Date); err != nil {
			writeError(w, http.StatusBadRequest, "bad-parameter", "date: YYYY-MM-DD")
			return
		}
	}
	lots, err := a.o.Store.Lots(r.Context(), lq)
	if err != nil {
		a.storeError(w, err, "lots")
		return
	}
	next := ""
	if len(lots) > limit {
		lots, next = lots[:limit], encodeCursor(lots[limit-1].ID)
	}
	if lots == nil {
		lots = []store.Lot{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"lots": lots, "next_cursor": next})
}

type lotView struct {
	store.Lot
	History      []historyItem       `json:"history"`
	InvoiceList  []store.Invoice     `json:"invoice_list"`
	AttemptList  []store.Attempt     `json:"attempts"`
	Expectations []store.Expectation `json:"expectations"`
	Linked       *gateway.Links      `json:"linked,omitempty"`
}

func (a *API) getLot(w http.ResponseWriter, r *http.Request, tenant string) {
	ctx := r.Context()
	lot, err := a.o.Store.Lot(ctx, r.PathValue("id"))
	if err != nil || lot.Tenant != tenant {
		a.storeError(w, err, "lot")
		return
	}
	v := lotView{Lot: lot}
	evs, err := a.o.Store.Events(ctx, "lot:"+lot.ID)
	if err == nil {
		v.History = history(evs)
		v.InvoiceList, err = a.o.Store.Invoices(ctx, lot.ID)
	}
	if err == nil {
		v.AttemptList, err = a.o.Store.Attempts(ctx, lot.ID)
	}
	if err == nil {
		v.Expectations, err = a.o.Store.Expectations(ctx, lot.ID)
	}
	if err == nil {
		v.Linked, err = gateway.LinksOf(ctx, a.o.Store, lot, v.InvoiceList)
	}
	if err != nil {
		a.storeError(w, err, "lot")
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// ---- returns feed (long-poll)

func (a *API) listReturns(w http.ResponseWriter, r *http.Request, tenant string) {
	q := r.URL.Query()
	var after int64
	if c := q.Get("cursor"); c != "" {
		v, err := strconv.ParseInt(c, 10, 64)
		if err != nil || v < 0 {
			writeError(w, http.StatusBadRequest, "bad-cursor", "cursor: the next_cursor of a previous answer")
			return
		}
		after = v
	}
	limit := 100
	if l := q.Get("limit"); l != "" {
		v, err := strconv.Atoi(l)
		if err != nil || v < 1 || v > 1000 {
			writeError(w, http.StatusBadRequest, "bad-parameter", "limit: 1..1000")
			return
		}
		limit = v
	}
	var wait time.Duration
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, "bad-parameter", "wait: a duration such as 30s")
			return
		}
		wait = min(d, a.o.LongPollMax)
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	for {
		var ch <-chan struct{}
		if a.signal != nil {
			ch = a.signal.Wait()
		}
		rets, err := a.o.Store.Returns(r.Context(), tenant, after, limit)
		if err != nil {
			a.storeError(w, err, "returns")
			return
		}
		if len(rets) > 0 || wait == 0 || ctx.Err() != nil {
			next := after
			if len(rets) > 0 {
				next = rets[len(rets)-1].Seq
			} else {
				rets = []store.Return{}
			}
			writeJSON(w, http.StatusOK, map[string]any{"returns": rets, "next_cursor": strconv.FormatInt(next, 10)})
			return
		}
		poll := time.NewTimer(time.Second) // other nodes may have written: poll too
		select {
		case <-ch:
		case <-poll.C:
		case <-ctx.Done():
		}
		poll.Stop()
	}
}

// ---- referentials

// amcChanges is the feed practice software polls to keep its AMC tables
// current: every AMC and convention entry added, removed or changed since a
// version, and the version to ask from next time.
func (a *API) amcChanges(w http.ResponseWriter, r *http.Request, _ string) {
	if a.o.Referentials == nil {
		writeError(w, http.StatusNotFound, "not-found", "no referential on this node")
		return
	}
	var since uint64
	if s := r.URL.Query().Get("since"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad-parameter", "since: a referential version number")
			return
		}
		since = v
	}
	d, err := a.o.Referentials.Changes(r.Context(), since)
	if errors.Is(err, referentials.ErrVersionNotFound) {
		writeError(w, http.StatusNotFound, "version-not-found", fmt.Sprintf("no referential version %d", since))
		return
	} else if err != nil {
		a.o.Logger.Warn("referential changes failed", "error", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "referential unavailable, retry later")
		return
	}
	writeJSON(w, http.StatusOK, d.Only(referentials.TableAMC, referentials.TableConventions))
}

// ---- probes and documents

func (a *API) ready(w http.ResponseWriter, r *http.Request) {
	if a.o.Gateway.Draining() {
		writeError(w, http.StatusServiceUnavailable, "shutting-down", "draining")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.o.Store.Ping(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "store-unavailable", "the store does not answer")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (a *API) openapi(w http.ResponseWriter, r *http.Request) {
	if len(a.o.OpenAPI) == 0 {
		writeError(w, http.StatusNotFound, "not-found", "no OpenAPI document built in")
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(a.o.OpenAPI)
}

// ---- helpers

func paging(w http.ResponseWriter, r *http.Request) (after string, limit int, ok bool) {
	q := r.URL.Query()
	limit = 100
	if l := q.Get("limit"); l != "" {
		v, err := strconv.Atoi(l)
		if err != nil || v < 1 || v > 1000 {
			writeError(w, http.StatusBadRequest, "bad-parameter", "limit: 1..1000")
			return "", 0, false
		}
		limit = v
	}
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) > 200 {
			writeError(w, http.StatusBadRequest, "bad-cursor", "cursor: the next_cursor of a previous answer")
			return "", 0, false
		}
		after = string(b)
	}
	return after, limit, true
}

func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

func (a *API) storeError(w http.ResponseWriter, err error, what string) {
	if err == nil || errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not-found", "no such "+what)
		return
	}
	a.o.Logger.Warn("store read failed", "what", what, "error", err)
	writeError(w, http.StatusServiceUnavailable, "unavailable", "store unavailable, retry later")
}

// ErrorBody is the JSON shape of every error answer.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b ErrorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
