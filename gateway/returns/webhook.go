package returns

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook headers.
const (
	HeaderSignature = "X-OCT-Signature" // "sha256=" + hex HMAC-SHA256 of the body with the tenant's secret
	HeaderTimestamp = "X-OCT-Timestamp" // Unix seconds when the attempt was made (also "sent" in the body)
	HeaderDelivery  = "X-OCT-Delivery"  // the envelope id: the same for every attempt and every re-relay
)

// Webhook errors (errors.Is).
var (
	ErrWebhookConfig = errors.New("returns: webhook misconfigured")
	// ErrWebhookRefused: the receiver answered a 4xx other than 408 and
	// 429 (or a 3xx): retrying the same delivery will not help.
	ErrWebhookRefused = errors.New("returns: webhook refused the delivery")
	// ErrWebhookUnavailable: network errors, 408, 429 or 5xx until the
	// attempts ran out.
	ErrWebhookUnavailable = errors.New("returns: webhook unavailable")
)

// WebhookError details a failed delivery. It matches ErrWebhookRefused
// or ErrWebhookUnavailable with errors.Is, and the cause of the last
// attempt (a context error, a network error) with errors.Is/As.
type WebhookError struct {
	Delivery string // envelope id
	Attempts int
	Status   int   // HTTP status of the last attempt; 0 for a network error
	Err      error // ErrWebhookRefused or ErrWebhookUnavailable
	Last     error // cause of the last attempt, if not a status

	retryAfter time.Duration
}

func (e *WebhookError) Error() string {
	s := fmt.Sprintf("%v: delivery %s after %d attempt(s)", e.Err, e.Delivery, e.Attempts)
	if e.Status != 0 {
		s += ": HTTP " + strconv.Itoa(e.Status)
	}
	if e.Last != nil {
		s += ": " + e.Last.Error()
	}
	return s
}

// Unwrap gives the class and the cause.
func (e *WebhookError) Unwrap() []error {
	if e.Last != nil {
		return []error{e.Err, e.Last}
	}
	return []error{e.Err}
}

// WebhookEnvelope is the JSON body POSTed for one relayed return file.
type WebhookEnvelope struct {
	ID       string    `json:"id"`            // delivery id, stable: use it to drop duplicates
	Tenant   string    `json:"tenant"`        // the tenant the return is relayed to
	Kind     string    `json:"kind"`          // "arl" or "rsp"
	Lot      string    `json:"lot,omitempty"` // lot id, when Webhook.Info knows it
	Name     string    `json:"name"`          // file name, as dropped in the returns/ folder
	Received time.Time `json:"received"`      // when the gateway took the return in (or relayed it, without Info)
	Sent     time.Time `json:"sent"`          // this attempt; equals X-OCT-Timestamp, signed with the body
	SHA256   string    `json:"sha256"`        // hex sha256 of the content
	Content  []byte    `json:"content_base64"`
}

// ReturnInfo is what a relay may learn about a return beyond its tenant,
// name and bytes (the Relay method set carries no more).
type ReturnInfo struct {
	ID       string // overrides the delivery id derived from the name
	Lot      string
	Received time.Time
}

// Webhook relays each return file to a tenant's HTTPS endpoint as a
// signed JSON envelope. It implements Relay and is safe for concurrent use
// once configured; its fields must not change afterwards.
//
// A delivery is retried with exponential backoff and jitter on network
// errors, 408, 429 and 5xx, at most MaxAttempts times, and stops when ctx
// ends; other 4xx and 3xx answers are permanent. The receiver must verify
// the signature and drop a delivery id it already has: the same return is
// relayed again when a message is processed again.
type Webhook struct {
	URL    string
	Secret []byte       // HMAC-SHA256 key (required; at least 16 bytes)
	Client *http.Client // [a client with a 30s timeout]; redirects are never followed
	// MaxAttempts bounds the attempts of one delivery [5].
	MaxAttempts int
	// Backoff is the wait before the second attempt, doubled for each
	// further one up to MaxBackoff, each wait drawn uniformly in
	// [b/2, b) [1s]; MaxBackoff [1m]. A Retry-After in seconds longer than
	// the backoff is honoured, up to MaxBackoff.
	Backoff    time.Duration
	MaxBackoff time.Duration
	Now        func() time.Time // [time.Now]
	// Info, optional, tells the lot and reception time of a return; its
	// error is logged and the delivery goes on without them.
	Info   func(ctx context.Context, tenant, name string) (ReturnInfo, error)
	Logger *slog.Logger // [discard]; the secret, the body and the URL's query are never logged
	// Wait waits d or until ctx ends [a timer]; tests replace it.
	Wait func(ctx context.Context, d time.Duration) error
}

// Validate checks the configuration.
func (w *Webhook) Validate() error {
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%w: URL must be http(s)://host/…", ErrWebhookConfig)
	}
	if len(w.Secret) < 16 {
		return fmt.Errorf("%w: secret must be at least 16 bytes", ErrWebhookConfig)
	}
	return nil
}

// Sign returns the X-OCT-Signature value of body under secret, for
// receivers written in Go and for tests.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether sig (an X-OCT-Signature value) is the
// signature of body under secret, in constant time.
func VerifySignature(secret, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(sig))
}

// DeliveryID is the envelope id of a relayed file: its name without the
// extension ("arl-<message sha256[:16]>-<part>"), stable across re-relays.
func DeliveryID(name string) string {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return name[:i]
	}
	return name
}

// kindOf reads the kind from a relay name (see correlate: kind-sum-part.txt).
func kindOf(name string) string {
	k, _, _ := strings.Cut(name, "-")
	switch k {
	case KindARL, KindRSP:
		return k
	}
	return KindUnknown
}

// Relay implements Relay: one signed POST, retried as documented.
func (w *Webhook) Relay(ctx context.Context, tenant, name string, data []byte) error {
	if err := w.Validate(); err != nil {
		return err
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sum := sha256.Sum256(data)
	env := WebhookEnvelope{ID: DeliveryID(name), Tenant: tenant, Kind: kindOf(name), Name: name,
		SHA256: hex.EncodeToString(sum[:]), Content: data}
	if w.Info != nil {
		info, err := w.Info(ctx, tenant, name)
		if err != nil {
			log.Warn("returns: webhook: no return info", "tenant", tenant, "delivery", env.ID, "err", err)
		} else {
			if info.ID != "" {
				env.ID = info.ID
			}
			env.Lot, env.Received = info.Lot, info.Received.UTC()
		}
	}
	if env.Received.IsZero() {
		env.Received = now().UTC()
	}
	attempts := w.MaxAttempts
	if attempts <= 0 {
		attempts = 5
	}
	backoff, maxBackoff := w.Backoff, w.MaxBackoff
	if backoff <= 0 {
		backoff = time.Second
	}
	if maxBackoff <= 0 {
		maxBackoff = time.Minute
	}
	client := w.client()
	target := redactURL(w.URL)
	var last *WebhookError
	for n := 1; n <= attempts; n++ {
		if n > 1 {
			d := jittered(min(backoff<<(n-2), maxBackoff))
			if last != nil && last.Status != 0 {
				d = max(d, min(last.retryAfter, maxBackoff))
			}
			if err := w.wait(ctx, d); err != nil {
				last.Last, last.Attempts = err, n-1
				return last
			}
		}
		status, retryAfter, err := w.post(ctx, client, now, &env)
		switch {
		case err == nil && status >= 200 && status < 300:
			log.Info("returns: webhook delivered", "tenant", tenant, "delivery", env.ID, "kind", env.Kind,
				"status", status, "attempts", n, "url", target)
			return nil
		case err != nil:
			last = &WebhookError{Delivery: env.ID, Attempts: n, Err: ErrWebhookUnavailable, Last: err}
			if ctx.Err() != nil {
				last.Last = ctx.Err()
				return last
			}
		case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
			last = &WebhookError{Delivery: env.ID, Attempts: n, Status: status, Err: ErrWebhookUnavailable, retryAfter: retryAfter}
		default:
			log.Warn("returns: webhook refused the delivery", "tenant", tenant, "delivery", env.ID,
				"status", status, "attempts", n, "url", target)
			return &WebhookError{Delivery: env.ID, Attempts: n, Status: status, Err: ErrWebhookRefused}
		}
		log.Info("returns: webhook attempt failed", "tenant", tenant, "delivery", env.ID, "attempt", n,
			"status", last.Status, "err", last.Last, "url", target)
	}
	log.Warn("returns: webhook unavailable", "tenant", tenant, "delivery", env.ID, "attempts", attempts, "url", target)
	return last
}

// post makes one attempt; err is a network error (or ctx's).
func (w *Webhook) post(ctx context.Context, client *http.Client, now func() time.Time, env *WebhookEnvelope) (status int, retryAfter time.Duration, err error) {
	sent := now().UTC().Truncate(time.Second)
	env.Sent = sent
	body, err := json.Marshal(env)
	if err != nil {
		return 0, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "oct-returns-webhook/1")
	req.Header.Set(HeaderSignature, Sign(w.Secret, body))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(sent.Unix(), 10))
	req.Header.Set(HeaderDelivery, env.ID)
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, scrubURLError(err)
	}
	defer resp.Body.Close()
	// Drain a little so that the connection can be reused; never logged.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s > 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	return resp.StatusCode, retryAfter, nil
}

func (w *Webhook) client() *http.Client {
	c := http.Client{Timeout: 30 * time.Second}
	if w.Client != nil {
		c = *w.Client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func (w *Webhook) wait(ctx context.Context, d time.Duration) error {
	if w.Wait != nil {
		return w.Wait(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// jittered draws uniformly in [d/2, d).
func jittered(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half)
}

// redactURL keeps scheme, host and path: a token in the query or user
// info never reaches the logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// scrubURLError drops the URL (which may carry a token) from a client
// error, keeping the cause for errors.Is/As.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, redactURL(ue.URL), ue.Err)
	}
	return err
}

// Multi relays to every relay in turn (e.g. FoldersRelay and a tenant's
// webhook), all of them even when one fails, and joins their errors.
// nil entries are skipped.
type Multi []Relay

// Relay implements Relay.
func (m Multi) Relay(ctx context.Context, tenant, name string, data []byte) error {
	var errs []error
	for _, r := range m {
		if r == nil {
			continue
		}
		if err := r.Relay(ctx, tenant, name, data); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// TenantWebhooks relays to the webhook of the tenant, when lookup gives
// one (nil: the tenant has no webhook, nothing to do). lookup is called
// for every relay, so a configuration reload takes effect at once.
type TenantWebhooks func(tenant string) *Webhook

// Relay implements Relay.
func (f TenantWebhooks) Relay(ctx context.Context, tenant, name string, data []byte) error {
	w := f(tenant)
	if w == nil {
		return nil
	}
	return w.Relay(ctx, tenant, name, data)
}
