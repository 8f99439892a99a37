package returns

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octgw/oct/formats/arl"
)

var testSecret = []byte("whsec-0123456789abcdef-TOPSECRET")

// hookServer is a loopback webhook receiver that verifies every request
// and answers from a script (one entry per attempt, the last repeated).
type hookServer struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	script []int // status per attempt; 0 = cut the connection
	got    []hookRequest
}

type hookRequest struct {
	env      WebhookEnvelope
	body     []byte
	delivery string
	ts       string
	sigOK    bool
}

func newHookServer(t *testing.T, script ...int) *hookServer {
	h := &hookServer{t: t, script: script}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve)) // 127.0.0.1
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookServer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var env WebhookEnvelope
	jerr := json.Unmarshal(body, &env)
	req := hookRequest{env: env, body: body, delivery: r.Header.Get(HeaderDelivery), ts: r.Header.Get(HeaderTimestamp),
		sigOK: jerr == nil && r.Method == http.MethodPost && VerifySignature(testSecret, body, r.Header.Get(HeaderSignature))}
	h.mu.Lock()
	n := len(h.got)
	h.got = append(h.got, req)
	status := http.StatusNoContent
	if len(h.script) > 0 {
		status = h.script[min(n, len(h.script)-1)]
	}
	h.mu.Unlock()
	if status == 0 {
		hj, ok := w.(http.Hijacker)
		if !ok {
			h.t.Error("no hijacker")
			return
		}
		c, _, err := hj.Hijack()
		if err == nil {
			c.Close()
		}
		return
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "2")
	}
	w.WriteHeader(status)
}

func (h *hookServer) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.got...)
}

// recordWaits is a Wait that records the backoffs and returns at once.
type recordWaits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (r *recordWaits) wait(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.d = append(r.d, d)
	r.mu.Unlock()
	return ctx.Err()
}

func (h *hookServer) webhook(waits *recordWaits) *Webhook {
	w := &Webhook{URL: h.srv.URL + "/hooks/oct", Secret: testSecret, Client: h.srv.Client(),
		MaxAttempts: 5, Backoff: 100 * time.Millisecond, MaxBackoff: time.Second,
		Now: func() time.Time { return time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) }}
	if waits != nil {
		w.Wait = waits.wait
	}
	return w
}

// TestWebhookSignature: one POST whose signature verifies, with the
// envelope's fields and headers consistent and the content intact.
func TestWebhookSignature(t *testing.T) {
	h := newHookServer(t)
	w := h.webhook(nil)
	w.Info = func(_ context.Context, tenant, name string) (ReturnInfo, error) {
		return ReturnInfo{Lot: "L1", Received: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}, nil
	}
	data := []byte("000 ARL CONTENT\n")
	name := "arl-0123456789abcdef-0.txt"
	if err := w.Relay(t.Context(), tenantA, name, data); err != nil {
		t.Fatal(err)
	}
	got := h.requests()
	if len(got) != 1 || !got[0].sigOK {
		t.Fatalf("requests %d, signature ok %v", len(got), len(got) == 1 && got[0].sigOK)
	}
	r := got[0]
	sum := sha256.Sum256(data)
	if r.env.ID != "arl-0123456789abcdef-0" || r.delivery != r.env.ID || r.env.Tenant != tenantA || r.env.Kind != KindARL ||
		r.env.Lot != "L1" || r.env.Name != name || r.env.SHA256 != hex.EncodeToString(sum[:]) || !bytes.Equal(r.env.Content, data) ||
		!r.env.Received.Equal(time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)) || r.ts != strconv.FormatInt(r.env.Sent.Unix(), 10) {
		t.Fatalf("envelope %+v headers %s %s", r.env, r.delivery, r.ts)
	}
	var raw map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil || raw["content_base64"] != base64.StdEncoding.EncodeToString(data) {
		t.Fatalf("body %s", r.body)
	}
	// A tampered body or another secret does not verify.
	if VerifySignature(testSecret, append([]byte(" "), r.body...), Sign(testSecret, r.body)) ||
		VerifySignature([]byte("another-secret-of-16+"), r.body, Sign(testSecret, r.body)) {
		t.Fatal("signature verifies what it should not")
	}
}

// TestWebhookRetries: cut connection, 503, 429 (Retry-After 2s) and 408
// are retried with growing, jittered, bounded backoffs, then 204 ends it;
// every attempt carries the same delivery id and a valid signature.
func TestWebhookRetries(t *testing.T) {
	h := newHookServer(t, 0, http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusRequestTimeout, http.StatusNoContent)
	waits := &recordWaits{}
	w := h.webhook(waits)
	if err := w.Relay(t.Context(), tenantA, "rsp-0123456789abcdef-1.txt", []byte("RSP")); err != nil {
		t.Fatal(err)
	}
	got := h.requests()
	if len(got) != 5 {
		t.Fatalf("%d attempts", len(got))
	}
	for _, r := range got {
		if !r.sigOK || r.delivery != "rsp-0123456789abcdef-1" || r.env.Kind != KindRSP {
			t.Fatalf("attempt %+v", r)
		}
	}
	if len(waits.d) != 4 {
		t.Fatalf("waits %v", waits.d)
	}
	for i, d := range waits.d {
		b := min(w.Backoff<<i, w.MaxBackoff)
		lo, hi := b/2, b
		if i == 2 { // after the 429: Retry-After 2s, capped at MaxBackoff
			lo, hi = w.MaxBackoff, w.MaxBackoff+1
		}
		if d < lo || d >= hi {
			t.Fatalf("wait %d = %v, want [%v, %v)", i, d, lo, hi)
		}
	}
}

// TestWebhookPermanent: a 400 is not retried and is ErrWebhookRefused;
// 500 until the attempts run out is ErrWebhookUnavailable.
func TestWebhookPermanent(t *testing.T) {
	h := newHookServer(t, http.StatusBadRequest)
	waits := &recordWaits{}
	err := h.webhook(waits).Relay(t.Context(), tenantA, "arl-x-0.txt", []byte("A"))
	var we *WebhookError
	if !errors.Is(err, ErrWebhookRefused) || errors.Is(err, ErrWebhookUnavailable) || !errors.As(err, &we) || we.Status != 400 || we.Attempts != 1 {
		t.Fatalf("err %v", err)
	}
	if len(h.requests()) != 1 || len(waits.d) != 0 {
		t.Fatalf("%d attempts, %d waits", len(h.requests()), len(waits.d))
	}

	h5 := newHookServer(t, http.StatusInternalServerError)
	w := h5.webhook(&recordWaits{})
	w.MaxAttempts = 3
	err = w.Relay(t.Context(), tenantA, "arl-x-0.txt", []byte("A"))
	if !errors.Is(err, ErrWebhookUnavailable) || !errors.As(err, &we) || we.Status != 500 || we.Attempts != 3 || len(h5.requests()) != 3 {
		t.Fatalf("err %v, %d attempts", err, len(h5.requests()))
	}
}

// TestWebhookContextCancel: a cancelled context ends a delivery in
// progress (request hanging) and one waiting to retry, with the context's
// error, and nothing is attempted after it.
func TestWebhookContextCancel(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body so that the server watches the connection and
		// cancels r.Context() when the client goes away.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case arrived <- struct{}{}:
		default:
		}
		select { // hang until the client gives up (or the test ends)
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	w := &Webhook{URL: srv.URL, Secret: testSecret, Client: srv.Client()}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Relay(ctx, tenantA, "arl-x-0.txt", []byte("A")) }()
	<-arrived
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrWebhookUnavailable) {
		t.Fatalf("err %v", err)
	}

	// Cancelled while waiting for the next attempt (real timer, long backoff).
	h := newHookServer(t, http.StatusServiceUnavailable)
	w2 := h.webhook(nil)
	w2.Backoff, w2.MaxBackoff = time.Hour, time.Hour
	ctx2, cancel2 := context.WithCancel(t.Context())
	w2.Logger = slog.New(cancelOnAttemptHandler{cancel: cancel2})
	err = w2.Relay(ctx2, tenantA, "arl-x-0.txt", []byte("A"))
	if !errors.Is(err, context.Canceled) || len(h.requests()) != 1 {
		t.Fatalf("err %v, %d attempts", err, len(h.requests()))
	}
}

// cancelOnAttemptHandler cancels when the webhook logs a failed attempt:
// the cancel lands exactly before the backoff wait.
type cancelOnAttemptHandler struct{ cancel context.CancelFunc }

func (h cancelOnAttemptHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h cancelOnAttemptHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "attempt failed") {
		h.cancel()
	}
	return nil
}
func (h cancelOnAttemptHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h cancelOnAttemptHandler) WithGroup(string) slog.Handler      { return h }

// TestWebhookLogsNoSecret: whatever happens (success, retries, refusal,
// network failure), the logs hold neither the secret, nor a signature,
// nor the URL's token, nor the content.
func TestWebhookLogsNoSecret(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	content := []byte("000 NIR 1840575123456 DUPONT JEAN")
	for _, script := range [][]int{{204}, {0, 503, 204}, {400}, {500}} {
		h := newHookServer(t, script...)
		w := h.webhook(&recordWaits{})
		w.MaxAttempts = 3
		w.Logger = log
		u := strings.Replace(h.srv.URL, "http://", "http://user:PASSWORDX@", 1)
		w.URL = u + "/hook?token=TOKENSECRET"
		_ = w.Relay(t.Context(), tenantA, "arl-x-0.txt", content)
		for _, r := range h.requests() {
			if s := Sign(testSecret, r.body); strings.Contains(logs.String(), strings.TrimPrefix(s, "sha256=")) {
				t.Fatal("signature in logs")
			}
		}
	}
	// A closed server: network errors carry the URL, which must be scrubbed.
	h := newHookServer(t)
	h.srv.Close()
	w := h.webhook(&recordWaits{})
	w.MaxAttempts, w.Logger = 2, log
	w.URL = strings.Replace(h.srv.URL, "http://", "http://user:PASSWORDX@", 1) + "/hook?token=TOKENSECRET"
	err := w.Relay(t.Context(), tenantA, "arl-x-0.txt", content)
	if !errors.Is(err, ErrWebhookUnavailable) {
		t.Fatalf("err %v", err)
	}
	out := logs.String() + err.Error()
	for _, bad := range []string{string(testSecret), "TOPSECRET", "TOKENSECRET", "PASSWORDX", "DUPONT", "1840575123456",
		base64.StdEncoding.EncodeToString(content)} {
		if strings.Contains(out, bad) {
			t.Fatalf("%q in logs or error:\n%s", bad, out)
		}
	}
	if !strings.Contains(logs.String(), "webhook") {
		t.Fatal("nothing logged")
	}
}

// TestWebhookConfig: no secret, a short one, or a bad URL is refused
// before anything is sent.
func TestWebhookConfig(t *testing.T) {
	for _, w := range []*Webhook{{URL: "http://127.0.0.1:1/"}, {URL: "http://127.0.0.1:1/", Secret: []byte("short")},
		{URL: "ftp://127.0.0.1/", Secret: testSecret}, {URL: "", Secret: testSecret}} {
		if err := w.Relay(t.Context(), tenantA, "arl-x-0.txt", nil); !errors.Is(err, ErrWebhookConfig) {
			t.Fatalf("%v", err)
		}
	}
}

// TestMultiAndTenantWebhooks: Multi calls every relay even when one fails
// and joins the errors; TenantWebhooks does nothing for a tenant without
// a webhook.
func TestMultiAndTenantWebhooks(t *testing.T) {
	errA := errors.New("a down")
	var calls []string
	rec := func(id string, err error) Relay {
		return RelayFunc(func(_ context.Context, tenant, name string, _ []byte) error {
			calls = append(calls, id+":"+tenant+"/"+name)
			return err
		})
	}
	errB := errors.New("b down")
	err := Multi{rec("a", errA), nil, rec("b", errB), rec("c", nil)}.Relay(t.Context(), tenantA, "n", nil)
	if !errors.Is(err, errA) || !errors.Is(err, errB) || len(calls) != 3 {
		t.Fatalf("err %v calls %v", err, calls)
	}
	if err := (Multi{rec("c", nil)}).Relay(t.Context(), tenantA, "n", nil); err != nil {
		t.Fatal(err)
	}
	h := newHookServer(t)
	hooks := TenantWebhooks(func(tenant string) *Webhook {
		if tenant == tenantA {
			return h.webhook(nil)
		}
		return nil
	})
	if err := hooks.Relay(t.Context(), tenantB, "arl-x-0.txt", []byte("A")); err != nil || len(h.requests()) != 0 {
		t.Fatalf("tenant without webhook: %v, %d requests", err, len(h.requests()))
	}
	if err := hooks.Relay(t.Context(), tenantA, "arl-x-0.txt", []byte("A")); err != nil || len(h.requests()) != 1 {
		t.Fatalf("tenant with webhook: %v, %d requests", err, len(h.requests()))
	}
}

// TestWebhookWithProcessor: wired next to the folders, the processor's
// relay reaches the tenant's webhook with the ARL bytes; processing the
// same message again relays it again under the same delivery id.
func TestWebhookWithProcessor(t *testing.T) {
	e := newEnv(t)
	h := newHookServer(t)
	proc, err := NewProcessor(Options{Journal: e.st, Blobs: e.blobs, Logger: quietLogger(),
		Now: func() time.Time { return e.now },
		Relay: Multi{FoldersRelay(e.folders), TenantWebhooks(func(tenant string) *Webhook {
			if tenant == tenantA {
				return h.webhook(nil)
			}
			return nil
		})}})
	if err != nil {
		t.Fatal(err)
	}
	e.addLot(lotSpec{id: "L1", invoices: []string{"000000101"}})
	ack := arlFile(t, arl.ARL{FileID: "F00001", LotNumber: 1, Positive: true})
	raw := message(t, "arl-hook", ack)
	for i := 0; i < 2; i++ {
		out, err := proc.Process(t.Context(), raw)
		if err != nil || out.Relayed != 1 || out.Duplicate != (i == 1) {
			t.Fatalf("process %d: %+v %v", i, out, err)
		}
	}
	got := h.requests()
	if len(got) != 2 || got[0].delivery != got[1].delivery || !got[0].sigOK || got[0].env.Kind != KindARL ||
		got[0].env.Tenant != tenantA || !bytes.Equal(got[0].env.Content, ack) {
		t.Fatalf("webhook got %d requests", len(got))
	}
	if len(e.relayed(tenantA)) != 1 {
		t.Fatal("folder relay missing")
	}
}
