package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octgw/oct/gateway/store"
)

// metrics of the core pipeline. Labels are bounded: channel, status, job
// kind, outcome. Never a tenant file id, never personal data.
type metrics struct {
	intakes   *prometheus.CounterVec
	intakeDur *prometheus.HistogramVec
	jobs      *prometheus.CounterVec
	jobDur    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, st store.Store) (*metrics, error) {
	m := &metrics{
		intakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oct_intake_files_total", Help: "Files offered at intake, by channel and outcome (accepted, rejected, duplicate, or the refusal code).",
		}, []string{"channel", "outcome"}),
		intakeDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "oct_intake_seconds", Help: "Time from the first byte to the durable acknowledgement.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"channel"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oct_jobs_total", Help: "Pipeline jobs run, by kind and outcome (ok, retry, failed, conflict, error).",
		}, []string{"kind", "outcome"}),
		jobDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "oct_job_seconds", Help: "Time to run and commit one pipeline job.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"kind"}),
	}
	pending := prometheus.NewDesc("oct_jobs_pending", "Jobs waiting or running in the store, by kind.", []string{"kind"}, nil)
	for _, c := range []prometheus.Collector{m.intakes, m.intakeDur, m.jobs, m.jobDur, pendingCollector{st, pending}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observeIntake(channel string, a Ack, err error, d time.Duration) {
	outcome := a.Status
	switch {
	case err != nil:
		outcome = "error"
		for _, e := range []error{ErrTooLarge, ErrEmpty, ErrUnknownTenant, ErrUnavailable, ErrRateLimited, ErrShuttingDown, context.Canceled, context.DeadlineExceeded} {
			if errors.Is(err, e) {
				outcome = e.Error()
				break
			}
		}
	case a.Duplicate:
		outcome = "duplicate"
	}
	m.intakes.WithLabelValues(channel, outcome).Inc()
	if err == nil {
		m.intakeDur.WithLabelValues(channel).Observe(d.Seconds())
	}
}

func (m *metrics) observeJob(kind, outcome string, d time.Duration) {
	m.jobs.WithLabelValues(kind, outcome).Inc()
	m.jobDur.WithLabelValues(kind).Observe(d.Seconds())
}

// pendingCollector reads queue depths from the store at scrape time.
type pendingCollector struct {
	st   store.Store
	desc *prometheus.Desc
}

func (p pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- p.desc }

func (p pendingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := p.st.PendingJobs(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(p.desc, err)
		return
	}
	for kind, n := range counts {
		ch <- prometheus.MustNewConstMetric(p.desc, prometheus.GaugeValue, float64(n), kind)
	}
}
