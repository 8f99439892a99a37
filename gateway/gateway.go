package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/nir"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// Limits bound what one intake may carry.
type Limits struct {
	MaxFileBytes  int64
	MaxRecords    int64
	MaxErrors     int
	MaxConcurrent int // intakes in flight on this node; more wait (bounded by ctx)
}

// Options builds a Gateway. Store, Blobs and NIRKey are required.
type Options struct {
	Store    store.Store
	Blobs    store.Blobs
	NIRKey   []byte // HMAC key for NIR hashes (never logged)
	Now      func() time.Time
	Logger   *slog.Logger
	Registry prometheus.Registerer
	Limits   Limits
	Router   Router
	NodeID   string
	Workers  WorkerOptions
	// KnownAMC, when set, is the pre-send business check of AMC numbers.
	KnownAMC func(string) bool
	// Outbound enables signing and delivery; without a Signer and a Sender,
	// lots rest at routed.
	Outbound OutboundOptions
	// Flows tune the certificate, PEC and SCOR flows.
	Flows FlowOptions
}

// Gateway is one node of OCT.
type Gateway struct {
	st      store.Store
	blobs   store.Blobs
	nir     *nir.Hasher
	now     func() time.Time
	log     *slog.Logger
	limits  Limits
	router  Router
	node    string
	knowAMC func(string) bool
	m       *metrics
	sem     chan struct{}
	wake    chan struct{}
	workers WorkerOptions
	out     OutboundOptions
	flows   FlowOptions
	// selector is flows.Selector, kept apart for a cheap nil check.
	selector CertificateSelector
	// scorSlots bounds the SCOR files held in memory at once.
	scorSlots chan struct{}

	adopter adopter   // g.blobs when it can take a local file without copying
	rings   sync.Pool // *[]byte of ringSize: the buffers of followed uploads

	mu       sync.Mutex
	draining bool
	entropy  io.Reader
}

// New checks the options and builds a Gateway. Call Run to start the
// workers.
func New(o Options) (*Gateway, error) {
	if o.Store == nil || o.Blobs == nil {
		return nil, errors.New("gateway: Store and Blobs are required")
	}
	hasher, err := nir.NewHasher(o.NIRKey)
	if err != nil {
		return nil, fmt.Errorf("gateway: NIRKey: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Limits.MaxFileBytes <= 0 {
		o.Limits.MaxFileBytes = 64 << 20
	}
	if o.Limits.MaxConcurrent <= 0 {
		o.Limits.MaxConcurrent = 256
	}
	if o.NodeID == "" {
		o.NodeID = "oct"
	}
	o.Workers.fill()
	o.Outbound.fill()
	m, err := newMetrics(o.Registry, o.Store)
	if err != nil {
		return nil, err
	}
	ad, _ := o.Blobs.(adopter)
	return &Gateway{
		adopter: ad,
		st:      o.Store, blobs: o.Blobs, nir: hasher, now: o.Now, log: o.Logger,
		limits: o.Limits, router: o.Router, node: o.NodeID, knowAMC: o.KnownAMC, m: m,
		sem: make(chan struct{}, o.Limits.MaxConcurrent), wake: make(chan struct{}, 1),
		workers: o.Workers, out: o.Outbound, entropy: ulid.Monotonic(rand.Reader, 0),
		flows: o.Flows, selector: o.Flows.Selector, scorSlots: make(chan struct{}, maxSCORInFlight),
	}, nil
}

// Store returns the journal the gateway writes to.
func (g *Gateway) Store() store.Store { return g.st }

// Blobs returns the raw byte store.
func (g *Gateway) Blobs() store.Blobs { return g.blobs }

// Drain makes new intakes fail with ErrShuttingDown (readiness goes down
// first, then the listener closes).
func (g *Gateway) Drain() {
	g.mu.Lock()
	g.draining = true
	g.mu.Unlock()
}

// Draining reports whether Drain was called.
func (g *Gateway) Draining() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.draining
}

func (g *Gateway) newID() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return ulid.MustNew(ulid.Timestamp(g.now()), g.entropy).String()
}

// Intake is the single entry of every channel: it stores the raw bytes
// (fsync'd), validates them, records the file with its acknowledgement and
// the next job in one durable commit, and only then returns the
// acknowledgement. Invalid content is stored too, as rejected. The same
// bytes (or the same IdemKey) from the same tenant return the first
// acknowledgement with Duplicate set, and nothing is processed twice.
func (g *Gateway) Intake(ctx context.Context, tenant string, src Source, r io.Reader) (Ack, error) {
	start := time.Now()
	ack, err := g.intake(ctx, tenant, src, r)
	g.m.observeIntake(src.Channel, ack, err, time.Since(start))
	g.logRefused(ctx, tenant, src, err)
	return ack, err
}

func (g *Gateway) logRefused(ctx context.Context, tenant string, src Source, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		g.log.LogAttrs(ctx, slog.LevelWarn, "intake refused", slog.String("tenant", tenant),
			slog.String("channel", src.Channel), slog.String("error", err.Error()))
	}
}

func (g *Gateway) intake(ctx context.Context, tenant string, src Source, r io.Reader) (Ack, error) {
	release, err := g.admit(ctx, tenant)
	if err != nil {
		return Ack{}, err
	}
	defer release()
	flow, r := sniff(src, r)
	if flow != store.FlowB2 {
		return g.intakeFlow(ctx, tenant, src, r, flow)
	}

	// Raw bytes go to the blob store while the validator reads the same
	// stream: one pass, bounded memory, nothing buffered whole.
	pr, pw := io.Pipe()
	v := g.startB2Check(pw, pr)
	var (
		sum  string
		size int64
		perr error
	)
	if f, ok := r.(*os.File); ok && g.adopter != nil && g.adopter.CanAdopt(f) {
		// An uploaded file already on this filesystem (SFTP inbox): read it
		// once and link it into the blob store, no second copy.
		sum, size, perr = g.adopter.Adopt(ctx, f, v.w, g.limits.MaxFileBytes)
	} else {
		sum, size, perr = g.blobs.Put(ctx, io.TeeReader(r, v.w), g.limits.MaxFileBytes)
	}
	rep, verr := v.finish(perr)
	return g.recordB2(ctx, tenant, src, sum, size, perr, rep, verr)
}

// admit checks that the node takes files and that the tenant exists, and
// takes one of the node's intake slots (waiting at most as long as ctx);
// release gives it back.
func (g *Gateway) admit(ctx context.Context, tenant string) (release func(), err error) {
	if g.Draining() {
		return nil, ErrShuttingDown
	}
	t, err := g.st.Tenant(ctx, tenant)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.Disabled) {
		return nil, ErrUnknownTenant
	} else if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	select {
	case g.sem <- struct{}{}:
		return func() { <-g.sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// b2Check is the B2 validation of one file, running in its own goroutine
// on the bytes written to w. finish ends the goroutine.
type b2Check struct {
	w    feed
	done chan b2Result
}

// feed is where the bytes for the validator go: an io.Pipe (Intake) or a
// followRing (Follower).
type feed interface {
	io.Writer
	CloseWithError(err error) error
}

type b2Result struct {
	rep *b2.Report
	err error
}

// startB2Check validates what is written to w, read back from r (the other
// end of w).
func (g *Gateway) startB2Check(w feed, r io.Reader) *b2Check {
	v := &b2Check{w: w, done: make(chan b2Result, 1)}
	go func() {
		rep, err := b2.Validate(r, b2.Options{
			Limits:   b2.Limits{MaxBytes: g.limits.MaxFileBytes, MaxRecords: g.limits.MaxRecords, MaxErrors: g.limits.MaxErrors},
			KnownAMC: g.knowAMC,
		})
		_, _ = io.Copy(io.Discard, r) // the validator may stop early: keep the writer flowing
		v.done <- b2Result{rep, err}
	}()
	return v
}

// finish tells the validator the file ended (with werr when writing it
// failed) and waits for its report.
func (v *b2Check) finish(werr error) (*b2.Report, error) {
	_ = v.w.CloseWithError(werr)
	res := <-v.done
	return res.rep, res.err
}

// recordB2 turns a stored, validated B2 file into its acknowledgement and
// commit; perr is the error of storing the bytes, verr the validator's.
func (g *Gateway) recordB2(ctx context.Context, tenant string, src Source, sum string, size int64, perr error, rep *b2.Report, verr error) (Ack, error) {
	switch {
	case errors.Is(perr, store.ErrTooLarge):
		return Ack{}, ErrTooLarge
	case perr != nil && ctx.Err() != nil:
		return Ack{}, ctx.Err()
	case perr != nil:
		return Ack{}, fmt.Errorf("%w: %v", ErrUnavailable, perr)
	case size == 0:
		return Ack{}, ErrEmpty
	case verr != nil:
		return Ack{}, fmt.Errorf("%w: validation: %v", ErrUnavailable, verr)
	}

	now := g.now().UTC()
	id := g.newID()
	status, to := StatusAccepted, lifecycle.FileAccepted
	if !rep.Valid {
		status, to = StatusRejected, lifecycle.FileRejected
	}
	ack := Ack{
		ID: id, Status: status, Format: "b2", Name: src.Name, SHA256: sum, Size: size,
		Received: now.Format(time.RFC3339Nano), Errors: rep.Errors, Dropped: rep.Dropped,
		Stats: AckStats{Records: rep.Stats.Records, Lots: rep.Stats.Lots, Invoices: rep.Stats.Invoices},
	}
	if ack.Errors == nil {
		ack.Errors = []fixed.Error{}
	}
	ackJSON, err := json.Marshal(ack)
	if err != nil {
		return Ack{}, err
	}
	actor := "tenant:" + tenant + "/" + src.Channel
	f := store.File{
		ID: id, Tenant: tenant, Channel: src.Channel, Name: src.Name, SHA256: sum, Size: size,
		IdemKey: src.IdemKey, Format: "b2", State: lifecycle.FileReceived, ReceivedAt: now, Ack: ackJSON,
		Lots: int(rep.Stats.Lots), Invoices: int(rep.Stats.Invoices),
	}
	reason := "syntax valid"
	if !rep.Valid {
		reason = fmt.Sprintf("%d syntax error(s)", len(rep.Errors)+int(rep.Dropped))
	}
	then := &store.Change{
		Actor:       actor,
		Transitions: []store.Transition{{Kind: lifecycle.File, ID: id, From: lifecycle.FileReceived, To: to, Actor: "intake", Reason: reason}},
	}
	if rep.Valid {
		then.Enqueue = []store.Job{{Kind: JobSplit, Subject: id, Key: "split", RunAt: now}}
	}
	return g.record(ctx, f, then, ack)
}

// record commits a new file with what follows from it and returns its
// acknowledgement; for bytes (or an idempotency key) the tenant already
// sent, nothing is written and the first acknowledgement comes back marked
// duplicate.
func (g *Gateway) record(ctx context.Context, f store.File, then *store.Change, ack Ack) (Ack, error) {
	existing, created, err := g.st.CreateFile(ctx, f, then)
	if err != nil {
		if ctx.Err() != nil {
			return Ack{}, ctx.Err()
		}
		return Ack{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if !created {
		var first Ack
		if err := json.Unmarshal(existing.Ack, &first); err != nil {
			return Ack{}, fmt.Errorf("%w: stored acknowledgement of %s unreadable: %v", ErrUnavailable, existing.ID, err)
		}
		first.Duplicate = true
		return first, nil
	}
	g.Wake()
	return ack, nil
}

// Wake tells the local workers there is new work (cheap, never blocks).
func (g *Gateway) Wake() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// HashNIR returns the keyed hash stored in place of a NIR.
func (g *Gateway) HashNIR(nirValue string) string { return g.nir.Sum(nirValue) }

// FileAck returns the stored acknowledgement of a file.
func FileAck(f store.File) (Ack, error) {
	var a Ack
	err := json.Unmarshal(f.Ack, &a)
	return a, err
}

// TokenHash is how API tokens are stored: sha256, hex.
func TokenHash(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

// adopter is implemented by blob stores that can take an open local file
// in without copying it (blobdir).
type adopter interface {
	CanAdopt(f *os.File) bool
	Adopt(ctx context.Context, f *os.File, tee io.Writer, maxBytes int64) (sum string, size int64, err error)
}
