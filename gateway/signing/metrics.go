package signing

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are per member; the only labels are member and profile, so the
// label sets are bounded by the configuration.
type metrics struct {
	signatures *prometheus.CounterVec
	errors     *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	up         *prometheus.GaugeVec
	inflight   *prometheus.GaugeVec
	breaker    *prometheus.GaugeVec

	reg prometheus.Registerer // nil when not registered
}

var metricLabels = []string{"member", "profile"}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		signatures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "oct", Subsystem: "signing", Name: "signatures_total",
			Help: "Signatures made by a signing pool member.",
		}, metricLabels),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "oct", Subsystem: "signing", Name: "errors_total",
			Help: "Failed signature attempts and failed health checks of a signing pool member.",
		}, metricLabels),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "oct", Subsystem: "signing", Name: "latency_seconds",
			Help:    "Latency of one signature on a signing pool member.",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, metricLabels),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "oct", Subsystem: "signing", Name: "member_up",
			Help: "1 when the signing pool member is healthy and enabled, else 0.",
		}, metricLabels),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "oct", Subsystem: "signing", Name: "inflight",
			Help: "Signatures in flight on a signing pool member.",
		}, metricLabels),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "oct", Subsystem: "signing", Name: "breaker_open",
			Help: "1 when the member's circuit breaker is open or half-open, else 0.",
		}, metricLabels),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			m.unregister()
			return nil, newErr(CodeConfig, "", "register metrics", err)
		}
		m.reg = reg
	}
	return m, nil
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.signatures, m.errors, m.latency, m.up, m.inflight, m.breaker}
}

// unregister removes the collectors from the registerer (Pool.Close), so
// that a new pool can register on the same registry.
func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors() {
		m.reg.Unregister(c)
	}
}

func (m *metrics) forget(member, profile string) {
	for _, v := range []interface {
		DeleteLabelValues(...string) bool
	}{m.signatures, m.errors, m.latency, m.up, m.inflight, m.breaker} {
		v.DeleteLabelValues(member, profile)
	}
}
