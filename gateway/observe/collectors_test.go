package observe_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/observe"
	"github.com/octgw/oct/gateway/store"
)

// fakeStore serves the reads the collectors use from slices; every other
// method panics (the embedded nil interface).
type fakeStore struct {
	store.Store
	mu        sync.Mutex
	lots      []store.Lot
	anomalies []store.Anomaly
	events    []store.Event
	err       error // returned by every read
	block     bool  // reads wait for their context
	reads     int
}

func (f *fakeStore) read(ctx context.Context) error {
	f.mu.Lock()
	f.reads++
	err, block := f.err, f.block
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

func (f *fakeStore) Lots(ctx context.Context, q store.LotQuery) ([]store.Lot, error) {
	if err := f.read(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Lot
	for _, l := range f.lots {
		if (q.State == "" || l.State == q.State) && (q.Destination == "" || l.Destination == q.Destination) && l.ID > q.After {
			out = append(out, l)
		}
		if len(out) == q.Limit {
			break
		}
	}
	return out, nil
}

func (f *fakeStore) Anomalies(ctx context.Context, q store.AnomalyQuery) ([]store.Anomaly, error) {
	if err := f.read(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Anomaly
	for _, a := range f.anomalies {
		if (q.State == "" || a.State == q.State) && a.ID > q.After {
			out = append(out, a)
		}
		if len(out) == q.Limit {
			break
		}
	}
	return out, nil
}

func (f *fakeStore) EventsAfter(ctx context.Context, after int64, n int) ([]store.Event, error) {
	if err := f.read(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Event
	for _, e := range f.events {
		if e.Seq > after && len(out) < n {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *fakeStore) addEvents(evs ...store.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range evs {
		e.Seq = int64(len(f.events) + 1)
		f.events = append(f.events, e)
	}
}

// series gathers reg and returns every sample as `name{a="x",b="y"}` ->
// value (histograms are not used here).
func series(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			sort.Strings(ls)
			key := mf.GetName()
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			out[key] = value(mf.GetType(), m)
		}
	}
	return out
}

func value(t dto.MetricType, m *dto.Metric) float64 {
	switch t {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	}
	return m.GetUntyped().GetValue()
}

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func lot(id, dest string, st lifecycle.State, age time.Duration) store.Lot {
	return store.Lot{ID: id, File: "F" + id, Tenant: "tenant-1", Destination: dest, State: st, UpdatedAt: t0.Add(-age)}
}

func TestStoreMetrics(t *testing.T) {
	st := &fakeStore{
		lots: []store.Lot{
			lot("01A-0", "422-01", lifecycle.LotSent, time.Hour),
			lot("01A-1", "422-01", lifecycle.LotResent, 3*time.Hour),
			lot("01B-0", "131-01", lifecycle.LotARLOverdue, 30*time.Minute),
			lot("01B-1", "131-01", lifecycle.LotSent, 10*time.Minute),
			lot("01C-0", "996-01", lifecycle.LotARLPositive, 48*time.Hour), // acknowledged: not waiting
			lot("01C-1", "996-01", lifecycle.LotSettled, 96*time.Hour),     // terminal: not counted
			lot("01D-0", "", lifecycle.LotRouted, time.Minute),
		},
		anomalies: []store.Anomaly{
			{ID: "A1", Kind: "arl-negative", State: lifecycle.AnomalyOpen},
			{ID: "A2", Kind: "arl-negative", State: lifecycle.AnomalyAssigned},
			{ID: "A3", Kind: "unroutable", State: lifecycle.AnomalyOpen},
			{ID: "A4", Kind: "unroutable", State: lifecycle.AnomalyResolved},
			{ID: "A5", Kind: "made-up-by-a-newer-node", State: lifecycle.AnomalyOpen},
		},
	}
	reg := prometheus.NewRegistry()
	if err := observe.Register(reg, observe.Sources{Store: st, Now: func() time.Time { return t0 }}); err != nil {
		t.Fatal(err)
	}
	got := series(t, reg)
	want := map[string]float64{
		`oct_lots{state="sent"}`:         2,
		`oct_lots{state="resent"}`:       1,
		`oct_lots{state="arl_overdue"}`:  1,
		`oct_lots{state="arl_positive"}`: 1,
		`oct_lots{state="routed"}`:       1,
		`oct_lots{state="created"}`:      0,
		`oct_lots{state="to_rebuild"}`:   0,
		// 422-01: the resent lot, 3h; 131-01: the overdue one, 30m.
		`oct_oldest_unacknowledged_lot_seconds{destination="422-01"}`: 3 * 3600,
		`oct_oldest_unacknowledged_lot_seconds{destination="131-01"}`: 1800,
		`oct_anomalies_open{kind="arl-negative"}`:                     2,
		`oct_anomalies_open{kind="unroutable"}`:                       1,
		`oct_anomalies_open{kind="other"}`:                            1,
		`oct_anomalies_open{kind="delivery-failed"}`:                  0,
		`oct_observe_errors_total{collector="store"}`:                 0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for k := range got {
		for _, bad := range []string{`state="settled"`, `destination="996-01"`, `destination=""`, "made-up"} {
			if strings.Contains(k, bad) {
				t.Errorf("unexpected series %s", k)
			}
		}
		for _, l := range st.lots { // never a lot id, file id or tenant in a label
			if strings.Contains(k, `"`+l.ID+`"`) || strings.Contains(k, `"`+l.File+`"`) || strings.Contains(k, l.Tenant) {
				t.Errorf("series %s names a lot, a file or a tenant", k)
			}
		}
	}
}

func TestStoreMetricsPagesAndCaps(t *testing.T) {
	st := &fakeStore{}
	for i := range 2500 {
		st.lots = append(st.lots, lot(fmt.Sprintf("L%05d", i), "422-01", lifecycle.LotSent, time.Duration(i)*time.Second))
	}
	for _, tc := range []struct {
		maxRows int
		want    float64
		oldest  float64
	}{{0, 2500, 2499}, {2100, 2100, 2099}, {7, 7, 6}} {
		reg := prometheus.NewRegistry()
		if err := observe.Register(reg, observe.Sources{Store: st, MaxRows: tc.maxRows, Now: func() time.Time { return t0 }}); err != nil {
			t.Fatal(err)
		}
		got := series(t, reg)
		if g := got[`oct_lots{state="sent"}`]; g != tc.want {
			t.Errorf("MaxRows %d: sent = %v, want %v", tc.maxRows, g, tc.want)
		}
		if g := got[`oct_oldest_unacknowledged_lot_seconds{destination="422-01"}`]; g != tc.oldest {
			t.Errorf("MaxRows %d: oldest = %v, want %v", tc.maxRows, g, tc.oldest)
		}
	}
}

func TestStoreErrorsLeaveMetricsOutNotTheScrape(t *testing.T) {
	for name, st := range map[string]*fakeStore{
		"error":   {err: errors.New("store down")},
		"timeout": {block: true},
	} {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "other_metric"}))
			if err := observe.Register(reg, observe.Sources{Store: st, Timeout: 50 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			got := series(t, reg) // fails the test if Gather returns an error
			if _, ok := got["other_metric"]; !ok {
				t.Error("the other metrics of the scrape are lost")
			}
			for k := range got {
				if strings.HasPrefix(k, "oct_lots") || strings.HasPrefix(k, "oct_anomalies_open") || strings.HasPrefix(k, "oct_transitions_total") {
					t.Errorf("%s reported although the store failed", k)
				}
			}
			// Collectors run concurrently: a failure is counted by the next
			// scrape at the latest.
			got = series(t, reg)
			if got[`oct_observe_errors_total{collector="store"}`] < 1 || got[`oct_observe_errors_total{collector="transitions"}`] < 1 {
				t.Errorf("errors not counted: %v", got)
			}
		})
	}
}

func transition(subject string, from, to lifecycle.State) store.Event {
	return store.Event{Type: "transition", Subject: subject, From: from, To: to}
}

func TestTransitionsCountedFromFirstScrape(t *testing.T) {
	st := &fakeStore{}
	for range 37 { // history before the process started: not counted
		st.addEvents(transition("lot:L0", lifecycle.LotSent, lifecycle.LotARLNegative))
	}
	reg := prometheus.NewRegistry()
	if err := observe.Register(reg, observe.Sources{Store: st, MaxEvents: 3}); err != nil {
		t.Fatal(err)
	}
	neg, pos := `oct_transitions_total{kind="lot",to="arl_negative"}`, `oct_transitions_total{kind="lot",to="arl_positive"}`
	rej := `oct_transitions_total{kind="invoice",to="rejected"}`
	got := series(t, reg)
	if got[neg] != 0 || got[pos] != 0 {
		t.Fatalf("history counted: %v %v", got[neg], got[pos])
	}
	if _, ok := got[`oct_transitions_total{kind="lot",to="created"}`]; ok {
		t.Error("creations have a series")
	}
	st.addEvents(
		transition("lot:L1", lifecycle.LotSent, lifecycle.LotARLNegative),
		transition("lot:L2", lifecycle.LotSent, lifecycle.LotARLPositive),
		transition("lot:L3", "", lifecycle.LotCreated), // a creation
		transition("invoice:I1", lifecycle.InvoicePending, lifecycle.InvoiceRejected),
		store.Event{Type: "note", Subject: "lot:L1"},
		transition("widget:W1", "a", "b"), // unknown kind
		transition("lot:L4", lifecycle.LotResent, lifecycle.LotARLPositive),
	)
	got = series(t, reg) // MaxEvents 3: the first three new events
	if got[neg] != 1 || got[pos] != 1 || got[rej] != 0 {
		t.Errorf("after one scrape: neg %v pos %v rej %v", got[neg], got[pos], got[rej])
	}
	got = series(t, reg)
	got = series(t, reg)
	if got[neg] != 1 || got[pos] != 2 || got[rej] != 1 {
		t.Errorf("after the backlog: neg %v pos %v rej %v", got[neg], got[pos], got[rej])
	}
	for k := range got {
		if strings.Contains(k, "widget") || strings.Contains(k, "L1") {
			t.Errorf("unbounded label in %s", k)
		}
	}
}

// TestJournalHead checks the head search over sizes around powers of two.
func TestJournalHead(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 5, 63, 64, 65, 1000} {
		st := &fakeStore{}
		for range n {
			st.addEvents(transition("lot:L", lifecycle.LotSent, lifecycle.LotARLPositive))
		}
		reg := prometheus.NewRegistry()
		if err := observe.Register(reg, observe.Sources{Store: st}); err != nil {
			t.Fatal(err)
		}
		series(t, reg) // finds the head
		st.addEvents(transition("lot:L", lifecycle.LotSent, lifecycle.LotARLNegative))
		got := series(t, reg)
		if g := got[`oct_transitions_total{kind="lot",to="arl_negative"}`]; g != 1 {
			t.Errorf("%d events before: arl_negative = %v, want 1", n, g)
		}
		if g := got[`oct_transitions_total{kind="lot",to="arl_positive"}`]; g != 0 {
			t.Errorf("%d events before: arl_positive = %v, want 0", n, g)
		}
	}
}

func TestReferentialAndCertificates(t *testing.T) {
	var id uint64 = 7
	reg := prometheus.NewRegistry()
	certErr := error(nil)
	err := observe.Register(reg, observe.Sources{
		Store:       &fakeStore{},
		Now:         func() time.Time { return t0 },
		Referential: func() (uint64, time.Time) { return id, t0.Add(-90 * time.Minute) },
		Certificates: func(ctx context.Context) ([]observe.Certificate, error) {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("certificate source called without a deadline")
			}
			return []observe.Certificate{
				{Use: "signing", Name: "hsm-1", NotAfter: t0.Add(30 * 24 * time.Hour)},
				{Use: "signing", Name: "hsm-1", NotAfter: t0.Add(10 * 24 * time.Hour)}, // earliest wins
				{Use: "delivery-https", Name: "amc-7", NotAfter: t0.Add(-time.Hour)},
			}, certErr
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := series(t, reg)
	for k, v := range map[string]float64{
		"oct_referential_version":     7,
		"oct_referential_age_seconds": 5400,
		`oct_certificate_expiry_timestamp_seconds{name="hsm-1",use="signing"}`:        float64(t0.Add(10 * 24 * time.Hour).Unix()),
		`oct_certificate_expiry_timestamp_seconds{name="amc-7",use="delivery-https"}`: float64(t0.Add(-time.Hour).Unix()),
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	id, certErr = 0, errors.New("directory unreachable")
	got = series(t, reg)
	if _, ok := got["oct_referential_age_seconds"]; ok || got["oct_referential_version"] != 0 {
		t.Errorf("no referential: %v", got)
	}
	got = series(t, reg) // the failure is counted by the next scrape at the latest
	if got[`oct_observe_errors_total{collector="certificates"}`] < 1 {
		t.Errorf("certificate error not counted")
	}
}

func TestRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := observe.Register(reg, observe.Sources{}); err == nil {
		t.Error("no store: want an error")
	}
	if err := observe.Register(nil, observe.Sources{Store: &fakeStore{}}); err == nil {
		t.Error("no registry: want an error")
	}
	if err := observe.Register(reg, observe.Sources{Store: &fakeStore{}}); err != nil {
		t.Fatal(err)
	}
	if err := observe.Register(reg, observe.Sources{Store: &fakeStore{}}); err == nil {
		t.Error("registered twice on one registry: want an error")
	}
	series(t, reg) // the first registration still gathers cleanly
}
