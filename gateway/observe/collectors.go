package observe

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// Lot states that wait for an acknowledgement (ARL) from the insurer.
var awaitingARL = []lifecycle.State{lifecycle.LotSent, lifecycle.LotResent, lifecycle.LotARLOverdue}

// Anomaly states that still need support.
var openAnomaly = []lifecycle.State{lifecycle.AnomalyOpen, lifecycle.AnomalyAssigned}

// otherKind is the label of anomaly kinds the anomalies package does not
// know, so that a new kind can never grow the label set unnoticed.
const otherKind = "other"

// pageSize is the number of rows one store read asks for.
const pageSize = 1000

// storeCollector reads lots and anomalies at scrape time.
type storeCollector struct {
	s         Sources
	errs      *prometheus.CounterVec
	lots      *prometheus.Desc
	oldest    *prometheus.Desc
	anomalies *prometheus.Desc
	lotStates []lifecycle.State // the non-terminal lot states
	kinds     map[string]bool
}

func newStoreCollector(s Sources, errs *prometheus.CounterVec) *storeCollector {
	c := &storeCollector{s: s, errs: errs, kinds: map[string]bool{otherKind: true}}
	c.lots = prometheus.NewDesc("oct_lots",
		"Lots in each non-terminal state, read from the store at scrape time (saturates at the observe row cap).",
		[]string{"state"}, nil)
	c.oldest = prometheus.NewDesc("oct_oldest_unacknowledged_lot_seconds",
		"Age of the oldest lot waiting for its ARL (sent, resent, arl_overdue), by destination, from the lot's last state change.",
		[]string{"destination"}, nil)
	c.anomalies = prometheus.NewDesc("oct_anomalies_open",
		"Anomalies open or assigned, by kind (kinds unknown to this version count as \"other\").",
		[]string{"kind"}, nil)
	for _, st := range lifecycle.For(lifecycle.Lot).States() {
		if !lifecycle.IsTerminal(lifecycle.Lot, st) {
			c.lotStates = append(c.lotStates, st)
		}
	}
	for _, k := range anomalies.Kinds() {
		c.kinds[k] = true
	}
	return c
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lots
	ch <- c.oldest
	ch <- c.anomalies
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.Timeout)
	defer cancel()
	lots, oldest, err := c.readLots(ctx)
	if err == nil {
		var open map[string]int
		if open, err = c.readAnomalies(ctx); err == nil {
			for st, n := range lots {
				ch <- prometheus.MustNewConstMetric(c.lots, prometheus.GaugeValue, float64(n), string(st))
			}
			now := c.s.Now()
			for dest, t := range oldest {
				ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, max(now.Sub(t).Seconds(), 0), dest)
			}
			for kind, n := range open {
				ch <- prometheus.MustNewConstMetric(c.anomalies, prometheus.GaugeValue, float64(n), kind)
			}
			return
		}
	}
	c.errs.WithLabelValues("store").Inc()
	c.s.Logger.Warn("observe: store metrics left out of this scrape", "component", "observe", "err", err)
}

// readLots counts the lots of each non-terminal state and finds, per
// destination, the oldest UpdatedAt among the lots waiting for an ARL.
func (c *storeCollector) readLots(ctx context.Context) (map[lifecycle.State]int, map[string]time.Time, error) {
	counts := make(map[lifecycle.State]int, len(c.lotStates))
	oldest := map[string]time.Time{}
	for _, st := range c.lotStates {
		awaiting := false
		for _, a := range awaitingARL {
			awaiting = awaiting || a == st
		}
		n, err := pages(ctx, c.s.MaxRows,
			func(after string, limit int) ([]store.Lot, error) {
				return c.s.Store.Lots(ctx, store.LotQuery{State: st, After: after, Limit: limit})
			},
			func(l store.Lot) string { return l.ID },
			func(l store.Lot) {
				if !awaiting || l.Destination == "" {
					return
				}
				if t, ok := oldest[l.Destination]; !ok || l.UpdatedAt.Before(t) {
					oldest[l.Destination] = l.UpdatedAt
				}
			})
		if err != nil {
			return nil, nil, fmt.Errorf("lots %s: %w", st, err)
		}
		counts[st] = n
	}
	return counts, oldest, nil
}

// readAnomalies counts the anomalies still needing support, by kind; every
// known kind is reported, at 0 when there is none.
func (c *storeCollector) readAnomalies(ctx context.Context) (map[string]int, error) {
	open := make(map[string]int, len(c.kinds))
	for k := range c.kinds {
		open[k] = 0
	}
	for _, st := range openAnomaly {
		_, err := pages(ctx, c.s.MaxRows,
			func(after string, limit int) ([]store.Anomaly, error) {
				return c.s.Store.Anomalies(ctx, store.AnomalyQuery{State: st, After: after, Limit: limit})
			},
			func(a store.Anomaly) string { return a.ID },
			func(a store.Anomaly) {
				k := a.Kind
				if !c.kinds[k] {
					k = otherKind
				}
				open[k]++
			})
		if err != nil {
			return nil, fmt.Errorf("anomalies %s: %w", st, err)
		}
	}
	return open, nil
}

// pages reads rows with the store's id cursor until a short page or maxRows
// rows, calling each on every row; it returns the number of rows read.
func pages[T any](ctx context.Context, maxRows int, fetch func(after string, limit int) ([]T, error),
	id func(T) string, each func(T)) (int, error) {
	n, after := 0, ""
	for n < maxRows {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		limit := min(pageSize, maxRows-n)
		rows, err := fetch(after, limit)
		if err != nil {
			return n, err
		}
		for _, r := range rows {
			each(r)
		}
		n += len(rows)
		if len(rows) < limit {
			break
		}
		after = id(rows[len(rows)-1])
	}
	return n, nil
}

// transitionCollector counts the state changes recorded in the journal's
// event log since the collector's first scrape, by subject kind and target
// state: oct_transitions_total{kind="lot",to="arl_negative"}. Every node
// reads the same journal, so with several nodes on one Redis store each
// reports the journal-wide count (aggregate with max, not sum).
type transitionCollector struct {
	s     Sources
	errs  *prometheus.CounterVec
	desc  *prometheus.Desc
	known map[string]map[lifecycle.State]bool

	mu      sync.Mutex // serialises scrapes; guards what follows
	started bool
	cursor  int64
	counts  map[transitionKey]uint64
}

type transitionKey struct {
	kind string
	to   lifecycle.State
}

func newTransitionCollector(s Sources, errs *prometheus.CounterVec) *transitionCollector {
	c := &transitionCollector{s: s, errs: errs, known: map[string]map[lifecycle.State]bool{}, counts: map[transitionKey]uint64{}}
	c.desc = prometheus.NewDesc("oct_transitions_total",
		"State changes recorded in the journal since this process's first scrape, by subject kind (file, lot, invoice, anomaly) and target state; creations are not counted.",
		[]string{"kind", "to"}, nil)
	for _, k := range lifecycle.Kinds() {
		m := lifecycle.For(k)
		c.known[string(k)] = map[lifecycle.State]bool{}
		for _, st := range m.States() {
			if st == m.Initial {
				continue // only reached by a creation
			}
			c.known[string(k)][st] = true
			c.counts[transitionKey{string(k), st}] = 0
		}
	}
	return c
}

func (c *transitionCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *transitionCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.s.Timeout)
	defer cancel()
	if err := c.advance(ctx); err != nil {
		c.errs.WithLabelValues("transitions").Inc()
		c.s.Logger.Warn("observe: journal not fully read in this scrape", "component", "observe", "err", err)
		if !c.started {
			return
		}
	}
	for k, n := range c.counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), k.kind, string(k.to))
	}
}

// advance reads up to MaxEvents events after the cursor. The first call
// only finds the head of the log: counting starts at the first scrape.
func (c *transitionCollector) advance(ctx context.Context) error {
	if !c.started {
		head, err := lastSeq(ctx, c.s.Store)
		if err != nil {
			return fmt.Errorf("journal head: %w", err)
		}
		c.cursor, c.started = head, true
		return nil
	}
	for read := 0; read < c.s.MaxEvents; {
		limit := min(pageSize, c.s.MaxEvents-read)
		evs, err := c.s.Store.EventsAfter(ctx, c.cursor, limit)
		if err != nil {
			return err
		}
		for _, e := range evs {
			c.cursor = e.Seq
			if e.Type != "transition" || e.From == "" {
				continue
			}
			kind, _, ok := strings.Cut(e.Subject, ":")
			if ok && c.known[kind][e.To] {
				c.counts[transitionKey{kind, e.To}]++
			}
		}
		read += len(evs)
		if len(evs) < limit {
			break
		}
	}
	return nil
}

// lastSeq finds the sequence number of the last event with O(log n)
// one-row reads (the Store has no "head" query).
func lastSeq(ctx context.Context, st store.Store) (int64, error) {
	after := func(seq int64) (bool, error) {
		evs, err := st.EventsAfter(ctx, seq, 1)
		return len(evs) > 0, err
	}
	ok, err := after(0)
	if err != nil || !ok {
		return 0, err
	}
	lo, hi := int64(0), int64(1) // an event lies after lo
	for {
		if ok, err = after(hi); err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		lo, hi = hi, hi*2
	}
	for hi-lo > 1 { // events after lo, none after hi
		mid := lo + (hi-lo)/2
		if ok, err = after(mid); err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi, nil
}

// referentialCollector reports the referential version in use.
type referentialCollector struct {
	s       Sources
	version *prometheus.Desc
	age     *prometheus.Desc
}

func newReferentialCollector(s Sources) *referentialCollector {
	return &referentialCollector{s: s,
		version: prometheus.NewDesc("oct_referential_version", "Version id of the referential routing uses (0: none loaded).", nil, nil),
		age:     prometheus.NewDesc("oct_referential_age_seconds", "Time since the referential in use was imported (absent when none is loaded).", nil, nil),
	}
}

func (c *referentialCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.version
	ch <- c.age
}

func (c *referentialCollector) Collect(ch chan<- prometheus.Metric) {
	id, at := c.s.Referential()
	ch <- prometheus.MustNewConstMetric(c.version, prometheus.GaugeValue, float64(id))
	if id != 0 && !at.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, max(c.s.Now().Sub(at).Seconds(), 0))
	}
}

// certCollector reports when watched certificates expire.
type certCollector struct {
	s    Sources
	errs *prometheus.CounterVec
	desc *prometheus.Desc
}

func newCertCollector(s Sources, errs *prometheus.CounterVec) *certCollector {
	return &certCollector{s: s, errs: errs, desc: prometheus.NewDesc("oct_certificate_expiry_timestamp_seconds",
		"NotAfter of a watched certificate (Unix seconds), by use and name; subtract time() for the time left.",
		[]string{"use", "name"}, nil)}
}

func (c *certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *certCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.Timeout)
	defer cancel()
	certs, err := c.s.Certificates(ctx)
	if err != nil {
		c.errs.WithLabelValues("certificates").Inc()
		c.s.Logger.Warn("observe: certificate metrics left out of this scrape", "component", "observe", "err", err)
		return
	}
	// One series per (use, name): the earliest expiry wins.
	first := map[[2]string]time.Time{}
	for _, ct := range certs {
		k := [2]string{ct.Use, ct.Name}
		if t, ok := first[k]; !ok || ct.NotAfter.Before(t) {
			first[k] = ct.NotAfter
		}
	}
	keys := make([][2]string, 0, len(first))
	for k := range first {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+"\x00"+keys[i][1] < keys[j][0]+"\x00"+keys[j][1] })
	for _, k := range keys {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(first[k].Unix()), k[0], k[1])
	}
}
