package signing

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options are the pool's dependencies. All are optional.
type Options struct {
	Logger     *slog.Logger          // default: discard
	Clock      Clock                 // default: the system clock
	Registerer prometheus.Registerer // default: no metrics registration (never the global registry)
	Observer   Observer              // receives audit and state events
	// Open opens a member from its configuration; default OpenMember.
	Open func(ctx context.Context, mc MemberConfig) (Member, error)
	// Getenv reads pin_env variables for the built-in kinds; default os.Getenv.
	Getenv func(string) string
}

// State is the dispatch state of a member.
type State string

const (
	StateUp       State = "up"       // eligible (subject to its breaker)
	StateDown     State = "down"     // not open or unhealthy; health checks retry
	StateDisabled State = "disabled" // PIN incorrect or blocked; only Reopen or a new config bring it back
	StateDraining State = "draining" // removed by Update or Close; finishing in-flight signatures
)

// MemberStatus is a snapshot of one member, for the console and tests.
type MemberStatus struct {
	ID         string
	Kind       Kind
	Profile    string
	State      State
	Breaker    BreakerState
	InFlight   int
	Signatures uint64
	KeyID      string
	LastError  error
	// NotAfter is the expiry of the member's certificate (zero while the
	// member has never opened): the certificate-expiry alert reads it.
	NotAfter time.Time
}

type member struct {
	cfg     MemberConfig
	dev     Member // nil while not open
	pub     crypto.PublicKey
	cert    *x509.Certificate
	keyID   string
	state   State
	lastErr error
	br      breaker

	inflight int  // signatures in flight (bounded by cfg.MaxConcurrency)
	users    int  // inflight + health checks + opens using dev
	busy     bool // a health check or open is running
	finished bool // the draining member's device was taken for closing
	served   uint64

	drained chan struct{} // closed once a draining member's device is closed
}

// Pool dispatches signatures to its members. It implements no crypto.Signer
// itself because its members may hold different keys; Pool.Signer gives the
// Signer view of one profile. All methods are safe for concurrent use.
type Pool struct {
	cfg     Config
	log     *slog.Logger
	clock   Clock
	obs     Observer
	open    func(ctx context.Context, mc MemberConfig) (Member, error)
	metrics *metrics
	seq     atomic.Uint64

	updateMu sync.Mutex // serializes Update, Reopen and Close

	mu       sync.Mutex
	members  []*member // active members, in configuration order
	draining []*member
	wake     chan struct{} // closed and replaced whenever capacity or state changes
	closed   bool

	life context.Context // cancelled by Close: stops the health checker
	stop context.CancelFunc
	wg   sync.WaitGroup // the health checker and every check it starts
}

// New validates cfg, opens its members and starts the health checker.
// Members that fail to open are kept down and retried by the health checker
// (or disabled, for a PIN error); New fails only on configuration errors.
// Close must be called to stop the health checker and release the devices.
func New(ctx context.Context, cfg Config, opts Options) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Pool{
		cfg:   cfg,
		log:   opts.Logger,
		clock: opts.Clock,
		obs:   opts.Observer,
		open:  opts.Open,
		wake:  make(chan struct{}),
	}
	p.life, p.stop = context.WithCancel(context.Background())
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.clock == nil {
		p.clock = systemClock{}
	}
	if p.open == nil {
		getenv := opts.Getenv
		p.open = func(ctx context.Context, mc MemberConfig) (Member, error) {
			return OpenMember(ctx, mc, getenv)
		}
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	p.metrics = m

	var evs []Event
	for _, mc := range cfg.Members {
		nm := p.newMember(mc.withDefaults())
		evs = append(evs, p.event(EventMemberAdded, nm, nil))
		dev, err := p.openDevice(ctx, nm.cfg)
		p.mu.Lock()
		p.members = append(p.members, nm)
		evs = append(evs, p.applyOpen(nm, dev, err)...)
		p.mu.Unlock()
	}
	p.emit(evs)

	p.wg.Add(1)
	go p.healthLoop()
	return p, nil
}

func (p *Pool) newMember(mc MemberConfig) *member {
	return &member{
		cfg:     mc,
		state:   StateDown,
		br:      newBreaker(p.cfg.BreakerThreshold, p.cfg.BreakerCooldown),
		drained: make(chan struct{}),
	}
}

// openDevice opens a member and checks that its certificate matches its key.
func (p *Pool) openDevice(ctx context.Context, mc MemberConfig) (Member, error) {
	if err := ctx.Err(); err != nil {
		return nil, newErr(CodeDevice, mc.ID, "open", err)
	}
	dev, err := p.open(ctx, mc)
	if err != nil {
		return nil, err
	}
	cert := dev.Certificate()
	if cert == nil {
		_ = dev.Close()
		return nil, newErr(CodeKeyNotFound, mc.ID, "open", errors.New("no certificate"))
	}
	pub, ok := dev.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		_ = dev.Close()
		return nil, newErr(CodeKeyNotFound, mc.ID, "open", errors.New("certificate does not match the key"))
	}
	return dev, nil
}

// applyOpen records the outcome of opening m. Called with p.mu held.
func (p *Pool) applyOpen(m *member, dev Member, err error) []Event {
	if m.state == StateDraining {
		// Removed while opening: the caller closes dev.
		return nil
	}
	if err != nil {
		return p.fail(m, err)
	}
	m.dev = dev
	m.pub = dev.Public()
	m.cert = dev.Certificate()
	m.keyID = KeyID(m.pub)
	m.lastErr = nil
	m.state = StateUp
	p.metrics.up.WithLabelValues(m.cfg.ID, m.cfg.Profile).Set(1)
	p.broadcast()
	p.log.Info("signing member up", "member", m.cfg.ID, "profile", m.cfg.Profile, "key_id", m.keyID)
	return []Event{p.event(EventMemberUp, m, nil)}
}

// fail records a member-level error from an open, a health check or a
// signature: PIN errors disable the member, CodeDeviceGone and open/health
// errors mark it down. Called with p.mu held.
func (p *Pool) fail(m *member, err error) []Event {
	prev := m.lastErr
	m.lastErr = err
	if pinFault(err) {
		if m.state == StateDisabled || m.state == StateDraining {
			return nil
		}
		m.state = StateDisabled
		p.metrics.up.WithLabelValues(m.cfg.ID, m.cfg.Profile).Set(0)
		p.broadcast()
		kind := EventPINIncorrect
		if CodeOf(err) == CodePINBlocked {
			kind = EventPINBlocked
		}
		p.log.Error("signing member disabled: PIN rejected; it will not be presented again", "member", m.cfg.ID, "profile", m.cfg.Profile, "code", CodeOf(err))
		return []Event{p.event(kind, m, err)}
	}
	p.metrics.up.WithLabelValues(m.cfg.ID, m.cfg.Profile).Set(0)
	if m.state == StateUp || m.state == StateDown && prev == nil {
		m.state = StateDown
		p.broadcast()
		p.log.Warn("signing member down", "member", m.cfg.ID, "profile", m.cfg.Profile, "err", err)
		return []Event{p.event(EventMemberDown, m, err)}
	}
	return nil
}

func (p *Pool) event(kind EventKind, m *member, err error) Event {
	e := Event{Kind: kind, Time: p.clock.Now(), Err: err, Code: CodeOf(err)}
	if m != nil {
		e.MemberID, e.Profile, e.KeyID = m.cfg.ID, m.cfg.Profile, m.keyID
	}
	return e
}

func (p *Pool) emit(evs []Event) {
	if p.obs == nil {
		return
	}
	for _, e := range evs {
		p.obs.OnEvent(e)
	}
}

// broadcast wakes every request waiting for capacity. Called with p.mu held.
func (p *Pool) broadcast() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// detachIfIdle takes the device of a draining or disabled member that
// nobody uses any more, for the caller to close outside the lock. Called
// with p.mu held.
func (p *Pool) detachIfIdle(m *member) (dev Member, drained bool) {
	if m.users > 0 {
		return nil, false
	}
	if m.state != StateDraining && m.state != StateDisabled {
		return nil, false
	}
	dev, m.dev = m.dev, nil
	if m.state == StateDraining && !m.finished {
		m.finished = true
		return dev, true
	}
	return dev, false
}

func (p *Pool) closeDetached(m *member, dev Member, drained bool) {
	if dev != nil {
		if err := dev.Close(); err != nil {
			p.log.Warn("signing member close", "member", m.cfg.ID, "err", err)
		}
	}
	if drained {
		p.mu.Lock()
		p.draining = slices.DeleteFunc(p.draining, func(x *member) bool { return x == m })
		if !p.activeLabel(m.cfg.ID, m.cfg.Profile) {
			p.metrics.forget(m.cfg.ID, m.cfg.Profile)
		}
		p.mu.Unlock()
		close(m.drained)
	}
}

func (p *Pool) activeLabel(id, profile string) bool {
	for _, x := range p.members {
		if x.cfg.ID == id && x.cfg.Profile == profile {
			return true
		}
	}
	return false
}

// ---- dispatch ----

// acquire picks an eligible member of profile not in tried and takes one of
// its concurrency slots, waiting for a slot while all eligible members are
// busy. It fails fast with ErrNoMember when no member is eligible.
func (p *Pool) acquire(ctx context.Context, profile string, tried []*member, accept func(*member) bool) (*member, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, newErr(CodeClosed, "", "sign", nil)
		}
		now := p.clock.Now()
		var eligible, free []*member
		for _, m := range p.members {
			if m.cfg.Profile != profile || m.state != StateUp || m.dev == nil ||
				slices.Contains(tried, m) || !m.br.ready(now) || (accept != nil && !accept(m)) {
				continue
			}
			eligible = append(eligible, m)
			if m.inflight < m.cfg.MaxConcurrency {
				free = append(free, m)
			}
		}
		if len(eligible) == 0 {
			p.mu.Unlock()
			return nil, newErr(CodeNoMember, "", "sign profile "+profile, nil)
		}
		if len(free) > 0 {
			m := p.pick(free)
			m.inflight++
			m.users++
			m.br.begin(now)
			p.metrics.inflight.WithLabelValues(m.cfg.ID, m.cfg.Profile).Set(float64(m.inflight))
			p.mu.Unlock()
			return m, nil
		}
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// pick chooses among members with a free slot. Called with p.mu held.
func (p *Pool) pick(free []*member) *member {
	if len(free) == 1 {
		return free[0]
	}
	if p.cfg.Strategy == StrategyWeighted {
		total := 0
		for _, m := range free {
			total += m.cfg.Weight
		}
		n := rand.IntN(total)
		for _, m := range free {
			if n < m.cfg.Weight {
				return m
			}
			n -= m.cfg.Weight
		}
		return free[len(free)-1]
	}
	best := free[0]
	for _, m := range free[1:] {
		// Compare inflight/weight, then served/weight, by cross-multiplying.
		a := m.inflight * best.cfg.Weight
		b := best.inflight * m.cfg.Weight
		if a < b || a == b && m.served*uint64(best.cfg.Weight) < best.served*uint64(m.cfg.Weight) {
			best = m
		}
	}
	return best
}

// release gives back m's slot and records the attempt's outcome.
func (p *Pool) release(m *member, err error, latency time.Duration) []Event {
	p.mu.Lock()
	m.inflight--
	m.users--
	labels := []string{m.cfg.ID, m.cfg.Profile}
	p.metrics.inflight.WithLabelValues(labels...).Set(float64(m.inflight))
	var evs []Event
	switch {
	case err == nil:
		m.served++
		p.metrics.signatures.WithLabelValues(labels...).Inc()
		p.metrics.latency.WithLabelValues(labels...).Observe(latency.Seconds())
		if m.br.success() {
			p.metrics.breaker.WithLabelValues(labels...).Set(0)
			evs = append(evs, p.event(EventBreakerClosed, m, nil))
			p.log.Info("signing member breaker closed", "member", m.cfg.ID)
		}
	case memberFault(err):
		p.metrics.errors.WithLabelValues(labels...).Inc()
		if pinFault(err) {
			m.br.abort()
			evs = append(evs, p.fail(m, err)...)
			break
		}
		if m.br.failure(p.clock.Now()) {
			p.metrics.breaker.WithLabelValues(labels...).Set(1)
			evs = append(evs, p.event(EventBreakerOpen, m, err))
			p.log.Warn("signing member breaker open", "member", m.cfg.ID, "cooldown", p.cfg.BreakerCooldown, "err", err)
		}
		if CodeOf(err) == CodeDeviceGone {
			evs = append(evs, p.fail(m, err)...)
		}
	default:
		m.br.abort()
	}
	dev, drained := p.detachIfIdle(m)
	p.broadcast()
	p.mu.Unlock()
	if dev != nil || drained {
		p.closeDetached(m, dev, drained)
	}
	return evs
}

// attempt is one try of a request on one member.
type attempt func(ctx context.Context, m *member) error

// request describes a request for audit.
type request struct {
	profile string
	ref     string
	digest  []byte
	hash    crypto.Hash
	accept  func(*member) bool // optional extra filter on members
}

// maxAttempts bounds failover even if members keep being added.
const maxAttempts = 32

// run dispatches one request with failover: a member-level failure moves
// the request to another member of the profile that has not been tried; the
// request succeeds at most once, on exactly one member.
func (p *Pool) run(ctx context.Context, r request, fn attempt) (*member, error) {
	reqID := p.seq.Add(1)
	var tried []*member
	var errs []error
	for n := 1; n <= maxAttempts; n++ {
		m, err := p.acquire(ctx, r.profile, tried, r.accept)
		if err != nil {
			if CodeOf(err) == CodeNoMember && len(errs) > 0 {
				err.(*Error).Err = errors.Join(errs...)
			}
			return nil, err
		}
		start := p.clock.Now()
		err = fn(ctx, m)
		latency := p.clock.Now().Sub(start)
		evs := p.release(m, err, latency)
		e := p.event(EventSigned, m, err)
		e.RequestID, e.Ref, e.Digest, e.Hash, e.Latency, e.Attempt = reqID, r.ref, r.digest, r.hash, latency, n
		if err != nil {
			e.Kind = EventSignFailed
			p.log.Warn("signing attempt failed", "member", m.cfg.ID, "profile", r.profile, "ref", r.ref, "attempt", n, "err", err)
		}
		p.emit(append(evs, e))
		if err == nil {
			return m, nil
		}
		if !memberFault(err) {
			return nil, err
		}
		tried = append(tried, m)
		errs = append(errs, err)
	}
	return nil, newErr(CodeNoMember, "", "sign profile "+r.profile, fmt.Errorf("gave up after %d attempts: %w", maxAttempts, errors.Join(errs...)))
}

// Signature is a raw signature and the member that made it.
type Signature struct {
	Bytes       []byte
	MemberID    string
	KeyID       string
	Certificate *x509.Certificate
}

// SignDigest signs a digest with a member of profile, with failover; ref is
// the caller's file or lot reference for the audit event.
func (p *Pool) SignDigest(ctx context.Context, profile, ref string, digest []byte, opts crypto.SignerOpts) (Signature, error) {
	return p.signDigest(ctx, request{profile: profile, ref: ref, digest: digest, hash: opts.HashFunc()}, opts)
}

func (p *Pool) signDigest(ctx context.Context, r request, opts crypto.SignerOpts) (Signature, error) {
	var sig []byte
	m, err := p.run(ctx, r, func(ctx context.Context, m *member) error {
		var err error
		sig, err = m.dev.SignContext(ctx, r.digest, opts)
		return err
	})
	if err != nil {
		return Signature{}, err
	}
	return Signature{Bytes: sig, MemberID: m.cfg.ID, KeyID: m.keyID, Certificate: m.cert}, nil
}

// Members returns a snapshot of the active and draining members.
func (p *Pool) Members() []MemberStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]MemberStatus, 0, len(p.members)+len(p.draining))
	for _, m := range append(slices.Clip(p.members), p.draining...) {
		st := MemberStatus{
			ID: m.cfg.ID, Kind: m.cfg.Kind, Profile: m.cfg.Profile, State: m.state,
			Breaker: m.br.state, InFlight: m.inflight, Signatures: m.served,
			KeyID: m.keyID, LastError: m.lastErr,
		}
		if m.cert != nil {
			st.NotAfter = m.cert.NotAfter
		}
		out = append(out, st)
	}
	return out
}

// ---- health ----

func (p *Pool) healthLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.life.Done():
			return
		case <-p.clock.After(p.cfg.HealthInterval):
		}
		p.checkAll(p.life)
	}
}

// CheckHealth runs one round of health checks now (the health checker does
// it every health_interval): members that are up or down are checked, and
// down members that are not open are opened again.
func (p *Pool) CheckHealth(ctx context.Context) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()
	p.checkAll(ctx)
}

func (p *Pool) checkAll(ctx context.Context) {
	p.mu.Lock()
	var todo []*member
	for _, m := range p.members {
		if (m.state == StateUp || m.state == StateDown) && !m.busy {
			m.busy = true
			m.users++
			todo = append(todo, m)
		}
	}
	p.mu.Unlock()

	var wg sync.WaitGroup
	for _, m := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.checkOne(ctx, m)
		}()
	}
	wg.Wait()
}

func (p *Pool) checkOne(ctx context.Context, m *member) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.HealthTimeout)
	defer cancel()
	p.mu.Lock()
	dev := m.dev
	p.mu.Unlock()

	var evs []Event
	if dev == nil {
		nd, err := p.openDevice(ctx, m.cfg)
		p.mu.Lock()
		m.busy = false
		m.users--
		evs = p.applyOpen(m, nd, err)
		if nd != nil && m.dev != nd { // removed while opening
			defer nd.Close()
		}
	} else {
		err := dev.Health(ctx)
		p.mu.Lock()
		m.busy = false
		m.users--
		if err == nil {
			if m.state == StateDown {
				m.state = StateUp
				m.lastErr = nil
				p.metrics.up.WithLabelValues(m.cfg.ID, m.cfg.Profile).Set(1)
				p.broadcast()
				p.log.Info("signing member up", "member", m.cfg.ID)
				evs = append(evs, p.event(EventMemberUp, m, nil))
			}
		} else {
			p.metrics.errors.WithLabelValues(m.cfg.ID, m.cfg.Profile).Inc()
			evs = p.fail(m, err)
		}
	}
	d, drained := p.detachIfIdle(m)
	p.mu.Unlock()
	if d != nil || drained {
		p.closeDetached(m, d, drained)
	}
	p.emit(evs)
}

// ---- configuration ----

// Update reconciles the members with cfgs: new ids are opened and added,
// missing ids are drained (in-flight signatures finish) and closed, ids
// whose configuration changed are drained, closed and opened again. Members
// with an unchanged configuration are kept as they are (a disabled member
// stays disabled: use Reopen). Update returns when removed members are
// closed or ctx is done; draining continues in the background after ctx.
func (p *Pool) Update(ctx context.Context, cfgs []MemberConfig) error {
	if err := validateMembers(cfgs, p.cfg.Production); err != nil {
		return err
	}
	p.updateMu.Lock()
	defer p.updateMu.Unlock()

	desired := make([]MemberConfig, len(cfgs))
	for i, mc := range cfgs {
		desired[i] = mc.withDefaults()
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return newErr(CodeClosed, "", "update", nil)
	}
	current := make(map[string]*member, len(p.members))
	for _, m := range p.members {
		current[m.cfg.ID] = m
	}
	p.mu.Unlock()

	var added, changed []MemberConfig
	var removed []*member
	want := make(map[string]bool, len(desired))
	for _, mc := range desired {
		want[mc.ID] = true
		switch m, ok := current[mc.ID]; {
		case !ok:
			added = append(added, mc)
		case m.cfg != mc:
			changed = append(changed, mc)
			removed = append(removed, m)
		}
	}
	for id, m := range current {
		if !want[id] {
			removed = append(removed, m)
		}
	}

	// New ids first, so that a profile keeps serving while others drain.
	if err := p.addMembers(ctx, added, desired); err != nil {
		return err
	}
	if err := p.removeMembers(ctx, removed); err != nil {
		return err
	}
	// A changed member may need the device its old self held (an exclusive
	// card): open it only after the old one is closed.
	if err := p.addMembers(ctx, changed, desired); err != nil {
		return err
	}
	return nil
}

func (p *Pool) addMembers(ctx context.Context, mcs []MemberConfig, order []MemberConfig) error {
	var evs []Event
	for _, mc := range mcs {
		nm := p.newMember(mc)
		evs = append(evs, p.event(EventMemberAdded, nm, nil))
		dev, err := p.openDevice(ctx, mc)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			if dev != nil {
				_ = dev.Close()
			}
			p.emit(evs)
			return newErr(CodeClosed, "", "update", nil)
		}
		p.members = append(p.members, nm)
		evs = append(evs, p.applyOpen(nm, dev, err)...)
		p.mu.Unlock()
	}
	p.mu.Lock()
	rank := make(map[string]int, len(order))
	for i, mc := range order {
		rank[mc.ID] = i
	}
	slices.SortStableFunc(p.members, func(a, b *member) int { return rank[a.cfg.ID] - rank[b.cfg.ID] })
	p.mu.Unlock()
	p.emit(evs)
	return nil
}

// removeMembers drains ms and waits (bounded by ctx) until they are closed.
func (p *Pool) removeMembers(ctx context.Context, ms []*member) error {
	if len(ms) == 0 {
		return nil
	}
	var evs []Event
	type detached struct {
		m       *member
		dev     Member
		drained bool
	}
	var now []detached
	p.mu.Lock()
	for _, m := range ms {
		p.members = slices.DeleteFunc(p.members, func(x *member) bool { return x == m })
		p.draining = append(p.draining, m)
		m.state = StateDraining
		p.metrics.up.WithLabelValues(m.cfg.ID, m.cfg.Profile).Set(0)
		evs = append(evs, p.event(EventMemberRemoved, m, nil))
		dev, drained := p.detachIfIdle(m)
		now = append(now, detached{m, dev, drained})
	}
	p.broadcast()
	p.mu.Unlock()
	for _, d := range now {
		if d.dev != nil || d.drained {
			p.closeDetached(d.m, d.dev, d.drained)
		}
	}
	p.emit(evs)
	for _, m := range ms {
		select {
		case <-m.drained:
		case <-ctx.Done():
			return newErr(CodeDevice, m.cfg.ID, "drain", ctx.Err())
		}
	}
	return nil
}

// Reopen opens a disabled or down member again (after its PIN was fixed or
// unblocked), reading its PIN again. It is the only way a disabled member
// presents a PIN again.
func (p *Pool) Reopen(ctx context.Context, id string) error {
	p.updateMu.Lock()
	defer p.updateMu.Unlock()
	p.mu.Lock()
	var m *member
	for _, x := range p.members {
		if x.cfg.ID == id {
			m = x
		}
	}
	switch {
	case p.closed:
		p.mu.Unlock()
		return newErr(CodeClosed, id, "reopen", nil)
	case m == nil:
		p.mu.Unlock()
		return newErr(CodeConfig, id, "reopen", errors.New("no such member"))
	case m.state == StateUp:
		p.mu.Unlock()
		return nil
	}
	mc := m.cfg
	p.mu.Unlock()
	// Drain and close the old instance, then open a fresh one.
	if err := p.removeMembers(ctx, []*member{m}); err != nil {
		return err
	}
	return p.addMembers(ctx, []MemberConfig{mc}, p.configOrder(mc))
}

func (p *Pool) configOrder(extra MemberConfig) []MemberConfig {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]MemberConfig, 0, len(p.members)+1)
	for _, m := range p.members {
		out = append(out, m.cfg)
	}
	return append(out, extra)
}

// Close stops the health checker, waits (bounded by ctx) for in-flight
// signatures and closes every device. Requests after Close fail with
// ErrClosed. A second Close returns nil.
func (p *Pool) Close(ctx context.Context) error {
	p.updateMu.Lock()
	defer p.updateMu.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.stop()
	p.broadcast()
	ms := slices.Clone(p.members)
	p.mu.Unlock()

	p.wg.Wait()
	err := p.removeMembers(ctx, ms)
	p.metrics.unregister()
	return err
}
