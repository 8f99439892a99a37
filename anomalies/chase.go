package anomalies

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// Policy is the chase policy of a destination. Zero fields take the
// defaults (DefaultPolicy).
type Policy struct {
	ARL time.Duration `yaml:"arl"` // T1: an ARL is due this long after a send (default 48h)
	RSP time.Duration `yaml:"rsp"` // T2: an RSP is due this long after the positive ARL (default 30 days)
	// MaxResends is how many times a lot is sent again automatically when
	// its ARL is late before an anomaly is opened (default 1; negative:
	// never resend, open the anomaly at the first late ARL).
	MaxResends int `yaml:"max_resends"`
}

// DefaultPolicy is the policy of a destination that has none.
var DefaultPolicy = Policy{ARL: 48 * time.Hour, RSP: 30 * 24 * time.Hour, MaxResends: 1}

func (p Policy) over(base Policy) Policy {
	if p.ARL <= 0 {
		p.ARL = base.ARL
	}
	if p.RSP <= 0 {
		p.RSP = base.RSP
	}
	if p.MaxResends == 0 {
		p.MaxResends = base.MaxResends
	}
	return p
}

// ChaseConfig configures the Chaser.
type ChaseConfig struct {
	Default      Policy            `yaml:"default"`      // zero fields: DefaultPolicy
	Destinations map[string]Policy `yaml:"destinations"` // by lot destination; zero fields: Default
	Batch        int               `yaml:"batch"`        // expectations handled per Tick (default 100)
	SLAs         SLAs              `yaml:"slas"`         // SLA of the anomalies opened by the chaser
	Actor        string            `yaml:"-"`            // actor of the events (default "chaser")
}

// PolicyFor returns the effective policy of a destination.
func (c ChaseConfig) PolicyFor(destination string) Policy {
	base := c.Default.over(DefaultPolicy)
	if p, ok := c.Destinations[destination]; ok {
		return p.over(base)
	}
	return base
}

// Chaser acts on expectations whose deadline passed: it resends lots whose
// ARL is late, opens anomalies when the resends are used up or an RSP is
// late, and marks lots with a negative ARL to_rebuild. Every fired
// expectation is marked Fired in the same Change as its action, and every
// lot move is a compare-and-set transition: when several nodes chase at
// once, one commit wins and the others get ErrConflict and re-plan.
type Chaser struct {
	st    store.Store
	cfg   ChaseConfig
	clock Clock
	log   *slog.Logger
}

// NewChaser returns a Chaser over st.
func NewChaser(st store.Store, cfg ChaseConfig, clock Clock, log *slog.Logger) *Chaser {
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.Actor == "" {
		cfg.Actor = "chaser"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Chaser{st: st, cfg: cfg, clock: clockOr(clock), log: log}
}

// Expect returns the expectation of kind (ExpectARL after a send, from the
// end of the send; ExpectRSP after a positive ARL, from its receipt) with
// the deadline of the lot's destination policy. The pipeline puts it in
// the same Change as the send or the ARL.
func (c *Chaser) Expect(lot store.Lot, kind, id string, from time.Time) store.Expectation {
	p := c.cfg.PolicyFor(lot.Destination)
	d := p.ARL
	if kind == ExpectRSP {
		d = p.RSP
	}
	return store.Expectation{ID: id, Lot: lot.ID, Kind: kind, DueAt: from.Add(d)}
}

// Tick handles the expectations due now (at most Batch) and the lots
// waiting at arl_negative, and returns how many it acted on.
func (c *Chaser) Tick(ctx context.Context) (int, error) {
	now := c.clock.Now().UTC()
	due, err := c.st.DueExpectations(ctx, now, c.cfg.Batch)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range due {
		ok, err := c.fire(ctx, e, now)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	m, err := c.sweepNegative(ctx)
	return n + m, err
}

// fire plans and commits one expectation, re-planning once on a conflict
// (a return or another node moved the lot meanwhile).
func (c *Chaser) fire(ctx context.Context, e store.Expectation, now time.Time) (bool, error) {
	for try := 0; ; try++ {
		ch, err := c.Plan(ctx, e, now)
		if err != nil {
			return false, fmt.Errorf("chase %s: %w", e.ID, err)
		}
		err = c.st.Commit(ctx, ch)
		if err == nil {
			return true, nil
		}
		if (errors.Is(err, store.ErrConflict) || errors.Is(err, lifecycle.ErrIllegal)) && try == 0 {
			c.log.Info("chase conflict, planning again", "expectation", e.ID, "lot", e.Lot)
			continue
		}
		if errors.Is(err, store.ErrConflict) {
			return false, nil // another node acted; its change marked the expectation
		}
		return false, fmt.Errorf("chase %s: %w", e.ID, err)
	}
}

// Plan returns the Change that acts on the due expectation e at now. It
// only reads the store.
func (c *Chaser) Plan(ctx context.Context, e store.Expectation, now time.Time) (*store.Change, error) {
	lot, err := c.st.Lot(ctx, e.Lot)
	if errors.Is(err, store.ErrNotFound) {
		e.Fired = true
		return &store.Change{Actor: c.cfg.Actor, Expectations: []store.Expectation{e}}, nil
	}
	if err != nil {
		return nil, err
	}
	p := c.cfg.PolicyFor(lot.Destination)
	attempts, err := c.st.Attempts(ctx, lot.ID)
	if err != nil {
		return nil, err
	}
	ch := &store.Change{Actor: c.cfg.Actor}
	if e.Kind == ExpectRSP {
		return c.planRSP(ctx, ch, e, lot, p, now)
	}
	// The destination's deadline may be longer than the one the expectation
	// was created with: count it from the end of the last send and wait.
	var resends int
	var last time.Time
	for _, a := range attempts {
		if a.Outcome != "ok" && a.Outcome != "unknown" {
			continue
		}
		if a.Resend {
			resends++
		}
		if t := a.Ended; t.After(last) {
			last = t
		}
	}
	if !last.IsZero() && last.Add(p.ARL).After(now) && last.Add(p.ARL).After(e.DueAt) {
		e.DueAt = last.Add(p.ARL)
		ch.Expectations = []store.Expectation{e}
		return ch, nil
	}
	e.Fired = true
	ch.Expectations = []store.Expectation{e}
	late := fmt.Sprintf("no ARL %s after the %s", Human(p.ARL), map[bool]string{false: "send", true: "resend"}[resends > 0])
	switch lot.State {
	case lifecycle.LotSent, lifecycle.LotResent:
		if p.MaxResends > 0 && resends < p.MaxResends {
			n := strconv.Itoa(resends + 1)
			ch.Transitions = append(ch.Transitions, store.Transition{Kind: lifecycle.Lot, ID: lot.ID, From: lot.State,
				To: lifecycle.LotARLOverdue, Actor: c.cfg.Actor, Reason: late + "; resend " + n + " requested"})
			ch.Enqueue = append(ch.Enqueue, store.Job{Kind: JobDeliver, Subject: lot.ID, Key: ResendKey(n), RunAt: now})
			return ch, nil
		}
		reason := fmt.Sprintf("resent but no acknowledgement %s later", Human(p.ARL))
		if resends == 0 {
			reason = late + " (automatic resend disabled for " + lot.Destination + ")"
		}
		ch.Transitions = append(ch.Transitions, store.Transition{Kind: lifecycle.Lot, ID: lot.ID, From: lot.State,
			To: lifecycle.LotARLOverdue, Actor: c.cfg.Actor, Reason: reason})
		ch.Anomalies = append(ch.Anomalies, newAnomaly(KindARLMissing+"-"+lot.ID+"-"+strconv.Itoa(resends), KindARLMissing,
			"lot:"+lot.ID, lot, reason, now, c.cfg.SLAs))
	default:
		// Acknowledged (never resend a lot with a positive ARL), refused,
		// already overdue or closed by an operator: the timer just ends.
	}
	return ch, nil
}

func (c *Chaser) planRSP(ctx context.Context, ch *store.Change, e store.Expectation, lot store.Lot, p Policy, now time.Time) (*store.Change, error) {
	e.Fired = true
	ch.Expectations = []store.Expectation{e}
	if lot.State != lifecycle.LotARLPositive {
		return ch, nil // settled, handed back...: nothing is missing
	}
	id := KindRSPMissing + "-" + e.ID
	if _, err := c.st.Anomaly(ctx, id); err == nil {
		return ch, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	reason := fmt.Sprintf("acknowledged but no payment return (RSP) %s later", Human(p.RSP))
	ch.Anomalies = append(ch.Anomalies, newAnomaly(id, KindRSPMissing, "lot:"+lot.ID, lot, reason, now, c.cfg.SLAs))
	return ch, nil
}

// sweepNegative moves lots waiting at arl_negative to to_rebuild.
func (c *Chaser) sweepNegative(ctx context.Context) (int, error) {
	lots, err := c.st.Lots(ctx, store.LotQuery{State: lifecycle.LotARLNegative, Limit: c.cfg.Batch})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range lots {
		err := MarkToRebuild(ctx, c.st, l.ID, "", c.cfg.Actor)
		switch {
		case err == nil:
			n++
		case errors.Is(err, store.ErrConflict), errors.Is(err, ErrNotAllowed):
		default:
			return n, err
		}
	}
	return n, nil
}

// Run calls Tick every period until ctx is done (the wake channel, may be
// nil, triggers an early Tick). Errors are logged, not fatal.
func (c *Chaser) Run(ctx context.Context, every time.Duration, wake <-chan struct{}) error {
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for {
			n, err := c.Tick(ctx)
			if err != nil && ctx.Err() == nil {
				c.log.Warn("chase failed", "error", err)
			}
			if err != nil || n < c.cfg.Batch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-wake:
		}
	}
}

// MarkToRebuild moves a lot refused by a negative ARL (arl_negative) to
// to_rebuild, with reason (empty: the reason of the refusal, from the
// lot's history), so that support rebuilds it without its bad invoices.
// ErrNotAllowed if the lot is in another state.
func MarkToRebuild(ctx context.Context, st store.Store, lotID, reason, actor string) error {
	lot, err := st.Lot(ctx, lotID)
	if err != nil {
		return err
	}
	if lot.State != lifecycle.LotARLNegative {
		return fmt.Errorf("%w: lot %s is %s", ErrNotAllowed, lotID, lot.State)
	}
	if reason == "" {
		evs, err := st.Events(ctx, "lot:"+lotID)
		if err != nil {
			return err
		}
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].To == lifecycle.LotARLNegative {
				reason = evs[i].Reason
				break
			}
		}
		if reason == "" {
			reason = "negative ARL"
		}
	}
	return st.Commit(ctx, &store.Change{Actor: actor, Transitions: []store.Transition{{Kind: lifecycle.Lot, ID: lotID,
		From: lifecycle.LotARLNegative, To: lifecycle.LotToRebuild, Actor: actor, Reason: "to rebuild: " + MaskNIR(reason)}}})
}

func newAnomaly(id, kind, subject string, lot store.Lot, reason string, now time.Time, slas SLAs) store.Anomaly {
	return store.Anomaly{ID: id, Kind: kind, Subject: subject, Tenant: lot.Tenant, Destination: lot.Destination,
		State: lifecycle.AnomalyOpen, Reason: reason, SLA: now.Add(slas.For(kind)), Created: now}
}

// Human writes a deadline as people say it: "48 h", "30 days", "90 min".
func Human(d time.Duration) string {
	switch {
	case d >= 72*time.Hour && d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + " days"
	case d >= time.Hour && d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + " h"
	case d >= time.Minute && d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + " min"
	}
	return d.String()
}
