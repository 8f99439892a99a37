package gateway

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/octgw/oct/gateway/store"
)

// Job kinds of the pipeline.
const (
	JobSplit = "split" // accepted file -> lots and invoices
	JobRoute = "route" // lot -> destination
)

// WorkerOptions tune the job runner.
type WorkerOptions struct {
	Concurrency int
	LeaseTTL    time.Duration
	PollEvery   time.Duration // idle poll period (a local Wake is immediate)
	MaxAttempts int           // then the job becomes an anomaly
	Batch       int           // jobs leased per round trip
}

func (w *WorkerOptions) fill() {
	if w.Concurrency <= 0 {
		w.Concurrency = 4
	}
	if w.LeaseTTL <= 0 {
		w.LeaseTTL = 30 * time.Second
	}
	if w.PollEvery <= 0 {
		w.PollEvery = 200 * time.Millisecond
	}
	if w.MaxAttempts <= 0 {
		w.MaxAttempts = 10
	}
	if w.Batch <= 0 {
		w.Batch = 8
	}
}

// ErrPermanent marks a handler failure that retrying cannot fix: the job is
// closed and an anomaly opened instead.
var ErrPermanent = errors.New("permanent")

// handler does one job and returns what to commit with its completion.
type handler func(ctx context.Context, l store.Lease) (*store.Change, error)

func (g *Gateway) handlers() map[string]handler {
	return map[string]handler{
		JobSplit:   g.split,
		JobRoute:   g.route,
		JobSign:    g.sign,
		JobDeliver: g.deliver,
		JobAnswer:  g.answer,
	}
}

// Run starts the workers and blocks until ctx is done and every worker has
// returned.
func (g *Gateway) Run(ctx context.Context) error {
	hs := g.handlers()
	kinds := make([]string, 0, len(hs))
	for k := range hs {
		kinds = append(kinds, k)
	}
	var wg sync.WaitGroup
	for i := 0; i < g.workers.Concurrency; i++ {
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			g.workerLoop(ctx, fmt.Sprintf("%s/w%d", g.node, n), kinds, hs)
		}(i)
	}
	wg.Wait()
	return nil
}

func (g *Gateway) workerLoop(ctx context.Context, owner string, kinds []string, hs map[string]handler) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		leases, err := g.st.Lease(ctx, owner, kinds, g.workers.Batch, g.workers.LeaseTTL)
		if err != nil && ctx.Err() == nil {
			g.log.Warn("lease failed", "owner", owner, "error", err)
		}
		for _, l := range leases {
			if ctx.Err() != nil {
				return // leases expire and another worker takes them
			}
			g.runJob(ctx, l, hs[l.Kind])
		}
		if len(leases) == g.workers.Batch {
			continue // more may be waiting
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(g.workers.PollEvery)
		select {
		case <-ctx.Done():
			return
		case <-g.wake:
			g.Wake() // pass it on to another idle worker
		case <-timer.C:
		}
	}
}

func (g *Gateway) runJob(ctx context.Context, l store.Lease, h handler) {
	start := time.Now()
	c, err := h(ctx, l)
	outcome := "ok"
	switch {
	case err == nil:
		if c == nil {
			c = &store.Change{}
		}
		c.Done = append(c.Done, l)
	case ctx.Err() != nil:
		return
	case errors.Is(err, ErrPermanent) || (l.Attempts+1 >= g.workers.MaxAttempts && !errors.As(err, new(retryable))):
		outcome = "failed"
		g.log.Error("job failed for good", "kind", l.Kind, "subject", l.Subject, "attempts", l.Attempts+1, "error", err)
		c = g.jobAnomaly(l, err)
		c.Done = append(c.Done, l)
	default:
		outcome = "retry"
		g.log.Warn("job will be retried", "kind", l.Kind, "subject", l.Subject, "attempts", l.Attempts+1, "error", err)
		var r retryable
		if !errors.As(err, &r) || c == nil {
			c = &store.Change{} // a plain failure commits nothing but the retry
		}
		c.Retry = append(c.Retry, store.Retry{Lease: l, At: g.now().Add(backoff(l.Attempts)), Err: err.Error()})
	}
	if c.Actor == "" {
		c.Actor = "worker:" + l.Owner
	}
	if cerr := g.st.Commit(ctx, c); cerr != nil {
		// Lost lease or conflicting transition: another worker did or will do
		// this job; the journal stays consistent because the change is atomic.
		outcome = "conflict"
		if !errors.Is(cerr, store.ErrLeaseLost) && !errors.Is(cerr, store.ErrConflict) && ctx.Err() == nil {
			outcome = "error"
			g.log.Warn("commit failed", "kind", l.Kind, "subject", l.Subject, "error", cerr)
		}
	} else if len(c.Enqueue) > 0 {
		g.Wake()
	}
	g.m.observeJob(l.Kind, outcome, time.Since(start))
}

// backoff grows exponentially with jitter, capped at 10 minutes.
func backoff(attempts int) time.Duration {
	d := time.Second << min(attempts, 9)
	d = min(d, 10*time.Minute)
	return d/2 + rand.N(d/2+1)
}

func (g *Gateway) jobAnomaly(l store.Lease, err error) *store.Change {
	now := g.now().UTC()
	return &store.Change{Anomalies: []store.Anomaly{{
		ID: "job-" + l.ID, Kind: "job-failed", Subject: l.Subject, State: "open",
		Reason: fmt.Sprintf("%s failed after %d attempt(s): %v", l.Kind, l.Attempts+1, err),
		SLA:    now.Add(24 * time.Hour), Created: now,
	}}}
}
