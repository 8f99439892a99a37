package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octgw/oct/referentials"
)

// BreakerState is the state of a destination's circuit breaker.
type BreakerState string

// Breaker states.
const (
	BreakerClosed   BreakerState = "closed"    // sends go through
	BreakerOpen     BreakerState = "open"      // sends refused with ErrBreakerOpen until the cooldown ends
	BreakerHalfOpen BreakerState = "half_open" // one probe send allowed; its outcome closes or reopens
)

// Outcomes counted in oct_deliver_sends_total.
const (
	OutcomeOK          = "ok"
	OutcomeTemporary   = "temporary"
	OutcomePermanent   = "permanent"
	OutcomeBreakerOpen = "breaker_open"
	OutcomeInFlight    = "in_flight"
	OutcomeAlreadySent = "already_sent"
)

// DispatcherConfig configures a Dispatcher. Zero values take the defaults
// in brackets.
type DispatcherConfig struct {
	// Senders by transport (smtp, sftp, https). Required: at least one.
	Senders map[referentials.Transport]Sender
	// MaxConcurrent is the number of sends in progress per destination [4].
	MaxConcurrent int
	// BreakerThreshold is the number of consecutive temporary failures of a
	// destination that opens its breaker [5].
	BreakerThreshold int
	// BreakerCooldown is how long the breaker stays open before one probe
	// is let through [1m].
	BreakerCooldown time.Duration
	// RecentLots is how many delivered lots the duplicate guard remembers
	// (in memory) [10000].
	RecentLots int
	Now        func() time.Time      // [time.Now]
	Registry   prometheus.Registerer // metrics [none]
	Logger     *slog.Logger          // [discard]
}

// Dispatcher is a Sender that routes a Message to the Sender of its
// destination's transport and protects destinations: bounded concurrency,
// a circuit breaker, and a guard against sending one lot twice. It does not
// retry: a temporary error goes back to the caller's job queue.
type Dispatcher struct {
	cfg DispatcherConfig
	log *slog.Logger

	mu       sync.Mutex
	dests    map[string]*destState
	inFlight map[string]bool
	recent   map[string]Receipt
	order    []string // FIFO of recent keys
	head     int

	sends    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	breaker  *prometheus.GaugeVec
}

type destState struct {
	sem      chan struct{}
	state    BreakerState
	fails    int       // consecutive temporary failures
	openedAt time.Time // when the breaker last opened
	probing  bool      // the half-open probe is in progress
}

// NewDispatcher checks cfg and registers the metrics.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	if len(cfg.Senders) == 0 {
		return nil, fmt.Errorf("%w: dispatcher without senders", ErrConfig)
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 4
	}
	if cfg.BreakerThreshold <= 0 {
		cfg.BreakerThreshold = 5
	}
	if cfg.BreakerCooldown <= 0 {
		cfg.BreakerCooldown = time.Minute
	}
	if cfg.RecentLots <= 0 {
		cfg.RecentLots = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{cfg: cfg, log: cfg.Logger, dests: map[string]*destState{}, inFlight: map[string]bool{},
		recent: map[string]Receipt{}, order: make([]string, cfg.RecentLots)}
	d.sends = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "oct_deliver_sends_total",
		Help: "Delivery attempts by transport, destination and outcome (ok, temporary, permanent, breaker_open, in_flight, already_sent).",
	}, []string{"transport", "destination", "outcome"})
	d.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "oct_deliver_send_seconds",
		Help:    "Time of one send that reached the transport, by transport and destination.",
		Buckets: prometheus.ExponentialBuckets(0.005, 3, 10),
	}, []string{"transport", "destination"})
	d.breaker = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "oct_deliver_breaker_open",
		Help: "1 when the destination's circuit breaker is open or half-open, else 0.",
	}, []string{"destination"})
	if cfg.Registry != nil {
		for _, c := range []prometheus.Collector{d.sends, d.duration, d.breaker} {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

// Breaker returns the breaker state of a destination, as a Send would see
// it now.
func (d *Dispatcher) Breaker(dest string) BreakerState {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, ok := d.dests[dest]
	if !ok {
		return BreakerClosed
	}
	if st.state == BreakerOpen && !d.cfg.Now().Before(st.openedAt.Add(d.cfg.BreakerCooldown)) {
		return BreakerHalfOpen
	}
	return st.state
}

// Send implements Sender.
//
//   - A lot already being sent by this Dispatcher gives ErrInFlight
//     (temporary), Resend or not.
//   - A lot this Dispatcher delivered recently, sent again without Resend,
//     is not sent: the earlier Receipt is returned (in-memory guard; the
//     store's job idempotency is the durable one).
//   - An open breaker gives ErrBreakerOpen (temporary) at once.
//   - Otherwise the send waits for a slot of the destination (or ctx) and
//     goes to the transport's Sender; its error is classified.
func (d *Dispatcher) Send(ctx context.Context, m Message) (Receipt, error) {
	tr, dest := string(m.Dest.Transport), m.Dest.ID
	snd, ok := d.cfg.Senders[m.Dest.Transport]
	if !ok {
		d.count(tr, dest, OutcomePermanent)
		return Receipt{}, Permanent("dispatch", fmt.Errorf("%w: no sender for transport %q", ErrConfig, m.Dest.Transport))
	}
	if m.Lot == "" || dest == "" {
		d.count(tr, dest, OutcomePermanent)
		return Receipt{}, Permanent("dispatch", fmt.Errorf("%w: lot and destination ids are required", ErrConfig))
	}

	d.mu.Lock()
	if d.inFlight[m.Lot] {
		d.mu.Unlock()
		d.count(tr, dest, OutcomeInFlight)
		return Receipt{}, Temporary("dispatch", ErrInFlight)
	}
	if rc, ok := d.recent[m.Lot]; ok && !m.Resend {
		d.mu.Unlock()
		d.count(tr, dest, OutcomeAlreadySent)
		d.log.Info("deliver: lot already sent, earlier receipt returned", "lot", m.Lot, "destination", dest, "message_id", rc.MessageID)
		return rc, nil
	}
	st := d.destLocked(dest)
	probe, err := d.admitLocked(st)
	if err != nil {
		d.mu.Unlock()
		d.count(tr, dest, OutcomeBreakerOpen)
		return Receipt{}, err
	}
	d.inFlight[m.Lot] = true
	d.mu.Unlock()

	rc, err := d.sendSlot(ctx, st, snd, m)

	d.mu.Lock()
	delete(d.inFlight, m.Lot)
	outcome := d.recordLocked(st, dest, probe, err)
	if err == nil {
		d.rememberLocked(m.Lot, rc)
	}
	d.mu.Unlock()
	d.count(tr, dest, outcome)
	if err != nil {
		var de *Error
		reply := ""
		if errors.As(err, &de) {
			reply = de.Reply
		}
		d.log.Warn("deliver: send failed", "lot", m.Lot, "destination", dest, "transport", tr, "outcome", outcome,
			"resend", m.Resend, "reply", reply, "err", err)
		return Receipt{}, err
	}
	d.log.Info("deliver: sent", "lot", m.Lot, "destination", dest, "transport", tr, "resend", m.Resend,
		"message_id", rc.MessageID, "detail", rc.Detail)
	return rc, nil
}

func (d *Dispatcher) sendSlot(ctx context.Context, st *destState, snd Sender, m Message) (Receipt, error) {
	select {
	case st.sem <- struct{}{}:
	case <-ctx.Done():
		return Receipt{}, Temporary("queue", ctx.Err())
	}
	defer func() { <-st.sem }()
	start := time.Now()
	rc, err := snd.Send(ctx, m)
	d.duration.WithLabelValues(string(m.Dest.Transport), m.Dest.ID).Observe(time.Since(start).Seconds())
	if err != nil {
		return Receipt{}, Classify("send", err)
	}
	return rc, nil
}

func (d *Dispatcher) destLocked(id string) *destState {
	st, ok := d.dests[id]
	if !ok {
		st = &destState{sem: make(chan struct{}, d.cfg.MaxConcurrent), state: BreakerClosed}
		d.dests[id] = st
	}
	return st
}

// admitLocked applies the breaker: it returns whether this send is the
// half-open probe, or ErrBreakerOpen.
func (d *Dispatcher) admitLocked(st *destState) (probe bool, err error) {
	switch st.state {
	case BreakerClosed:
		return false, nil
	case BreakerOpen:
		if d.cfg.Now().Before(st.openedAt.Add(d.cfg.BreakerCooldown)) {
			return false, Temporary("breaker", ErrBreakerOpen)
		}
		st.state = BreakerHalfOpen
		st.probing = true
		return true, nil
	default: // half-open: only the probe goes
		if st.probing {
			return false, Temporary("breaker", ErrBreakerOpen)
		}
		st.probing = true
		return true, nil
	}
}

// recordLocked updates the breaker with a send's outcome. A temporary
// failure counts; success closes; a permanent failure proves the
// destination answers, so it resets the count (and closes a half-open
// breaker) without being a success for the lot.
func (d *Dispatcher) recordLocked(st *destState, dest string, probe bool, err error) string {
	if probe {
		st.probing = false
	}
	switch {
	case err == nil:
		st.fails = 0
		d.setState(st, dest, BreakerClosed)
		return OutcomeOK
	case errors.Is(err, ErrTemporary):
		st.fails++
		if probe || st.fails >= d.cfg.BreakerThreshold {
			if st.state != BreakerOpen {
				d.log.Warn("deliver: circuit breaker open", "destination", dest, "consecutive_failures", st.fails)
			}
			st.openedAt = d.cfg.Now()
			d.setState(st, dest, BreakerOpen)
		}
		return OutcomeTemporary
	default:
		st.fails = 0
		if st.state == BreakerHalfOpen {
			d.setState(st, dest, BreakerClosed)
		}
		return OutcomePermanent
	}
}

func (d *Dispatcher) setState(st *destState, dest string, s BreakerState) {
	st.state = s
	v := 0.0
	if s != BreakerClosed {
		v = 1
	}
	d.breaker.WithLabelValues(dest).Set(v)
}

func (d *Dispatcher) rememberLocked(lot string, rc Receipt) {
	if _, ok := d.recent[lot]; !ok {
		if old := d.order[d.head]; old != "" {
			delete(d.recent, old)
		}
		d.order[d.head] = lot
		d.head = (d.head + 1) % len(d.order)
	}
	d.recent[lot] = rc
}

func (d *Dispatcher) count(transport, dest, outcome string) {
	d.sends.WithLabelValues(transport, dest, outcome).Inc()
}
