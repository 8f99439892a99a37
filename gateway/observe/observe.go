// Package observe holds what operators watch a running OCT node with:
// Prometheus collectors that read the store at scrape time (lots by state,
// the oldest lot waiting for its ARL per destination, open anomalies by
// kind, lifecycle transitions counted from the journal, the referential
// version, certificate expiry), a slog handler with per-component levels
// that can be changed at runtime over HTTP, and NIR redaction for logs.
//
// Nothing here is global: the registry, the store, the clock and the logger
// are passed in. Label values are bounded: lifecycle state and kind names,
// anomaly kinds, destination ids, certificate uses and names given by the
// configuration. Never a NIR, a tenant file id or a lot id.
package observe

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octgw/oct/gateway/store"
)

// Certificate is one certificate whose expiry is watched. Use and Name are
// label values: keep them bounded (Use: "signing", "delivery-https",
// "smtp-intake"...; Name: a signing member id, a destination id).
type Certificate struct {
	Use      string
	Name     string
	NotAfter time.Time
}

// CertSource lists the certificates to watch. It is called at scrape time
// with a context that carries the scrape timeout.
type CertSource func(ctx context.Context) ([]Certificate, error)

// ReferentialSource returns the current referential version and when it
// was imported; id 0 means no referential is loaded.
// ((*referentials.Repo).Current().Version has both.)
type ReferentialSource func() (id uint64, importedAt time.Time)

// Sources are what the collectors read. Store is required; the others are
// optional (their metrics are then not registered).
type Sources struct {
	Store        store.Store
	Referential  ReferentialSource
	Certificates CertSource

	// Now is the clock [time.Now].
	Now func() time.Time
	// Timeout bounds the store reads of one scrape [2s].
	Timeout time.Duration
	// MaxRows caps the rows read per state by one scrape [10000]: a lot or
	// anomaly count equal to MaxRows means "at least MaxRows".
	MaxRows int
	// MaxEvents caps the journal events read per scrape for
	// oct_transitions_total [5000]; a longer backlog is read over the next
	// scrapes.
	MaxEvents int
	// Logger reports collector failures [discard].
	Logger *slog.Logger
}

func (s *Sources) fill() error {
	if s.Store == nil {
		return errors.New("observe: Sources.Store is required")
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Timeout <= 0 {
		s.Timeout = 2 * time.Second
	}
	if s.MaxRows <= 0 {
		s.MaxRows = 10000
	}
	if s.MaxEvents <= 0 {
		s.MaxEvents = 5000
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Register registers the collectors on reg. On error, whatever was
// registered is unregistered again.
func Register(reg prometheus.Registerer, s Sources) error {
	if reg == nil {
		return errors.New("observe: nil Registerer")
	}
	if err := s.fill(); err != nil {
		return err
	}
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "oct_observe_errors_total",
		Help: "Scrape-time reads that failed or timed out, by collector (store, transitions, certificates); the affected metrics are left out of that scrape.",
	}, []string{"collector"})
	for _, c := range []string{"store", "transitions", "certificates"} {
		errs.WithLabelValues(c)
	}
	cs := []prometheus.Collector{errs, newStoreCollector(s, errs), newTransitionCollector(s, errs)}
	if s.Referential != nil {
		cs = append(cs, newReferentialCollector(s))
	}
	if s.Certificates != nil {
		cs = append(cs, newCertCollector(s, errs))
	}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return err
		}
	}
	return nil
}
