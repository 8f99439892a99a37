// Package storetest is the conformance suite of store.Store and
// store.Blobs. Every implementation runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
//			s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "oct.db"), Now: now})
//			...
//			return s
//		})
//	}
//
// The suite tests only what the store package promises; it drives time
// through the clock it hands to the opener (no sleeps) and closes every
// store it opens.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/octgw/oct/gateway/store"
)

// Opener opens an empty store that reads the time from now.
type Opener func(t *testing.T, now func() time.Time) store.Store

// Clock is a manual clock for tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// T0 is where every test's clock starts (with nanoseconds, so that an
// implementation that loses precision fails).
var T0 = time.Date(2026, 3, 2, 8, 0, 0, 123456789, time.UTC)

// fx is one test's fixture: a fresh store and its clock.
type fx struct {
	t     *testing.T
	ctx   context.Context
	s     store.Store
	clock *Clock
}

func newFx(t *testing.T, open Opener) *fx {
	t.Helper()
	c := NewClock(T0)
	s := open(t, c.Now)
	t.Cleanup(func() { _ = s.Close() })
	return &fx{t: t, ctx: context.Background(), s: s, clock: c}
}

// Run runs the conformance suite against stores made by open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*fx)
	}{
		{"CreateFile", testCreateFile},
		{"CreateFileAtomic", testCreateFileAtomic},
		{"PutRules", testPutRules},
		{"Transitions", testTransitions},
		{"ChangeAtomic", testChangeAtomic},
		{"OtherKinds", testOtherKinds},
		{"ExtraEvents", testExtraEvents},
		{"Chain", testChain},
		{"Tenants", testTenants},
		{"FilesPaging", testFilesPaging},
		{"LotQueries", testLotQueries},
		{"FlowQueries", testFlowQueries},
		{"FindInvoices", testFindInvoices},
		{"Daily", testDaily},
		{"AnomaliesBySLA", testAnomaliesBySLA},
		{"AnomalyQueries", testAnomalyQueries},
		{"Details", testDetails},
		{"ReturnsFeed", testReturnsFeed},
		{"DueExpectations", testDueExpectations},
		{"JobsEnqueue", testJobsEnqueue},
		{"JobsLease", testJobsLease},
		{"JobsBatch", testJobsBatch},
		{"Concurrent", testConcurrent},
		{"Context", testContext},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(newFx(t, open)) })
	}
}

// --- helpers ---

func (f *fx) commit(c *store.Change) {
	f.t.Helper()
	if err := f.s.Commit(f.ctx, c); err != nil {
		f.t.Fatalf("Commit: %v", err)
	}
}

func (f *fx) eventCount() int {
	f.t.Helper()
	n, last := 0, int64(0)
	for {
		evs, err := f.s.EventsAfter(f.ctx, last, 500)
		if err != nil {
			f.t.Fatalf("EventsAfter: %v", err)
		}
		if len(evs) == 0 {
			return n
		}
		n += len(evs)
		last = evs[len(evs)-1].Seq
	}
}

func (f *fx) pending() map[string]int {
	f.t.Helper()
	p, err := f.s.PendingJobs(f.ctx)
	if err != nil {
		f.t.Fatalf("PendingJobs: %v", err)
	}
	return p
}

func (f *fx) events(subject string) []store.Event {
	f.t.Helper()
	evs, err := f.s.Events(f.ctx, subject)
	if err != nil {
		f.t.Fatalf("Events(%s): %v", subject, err)
	}
	return evs
}

// same compares two values after normalising times to UTC and empty slices
// to nil, so that implementations are free in those representations.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	g, w := normalize(reflect.ValueOf(got)), normalize(reflect.ValueOf(want))
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

var timeType = reflect.TypeOf(time.Time{})

func normalize(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	c := reflect.New(v.Type()).Elem()
	c.Set(v)
	normalizeIn(c)
	return c.Interface()
}

func normalizeIn(v reflect.Value) {
	switch {
	case v.Type() == timeType:
		t := v.Interface().(time.Time)
		if t.IsZero() {
			v.Set(reflect.ValueOf(time.Time{}))
		} else {
			v.Set(reflect.ValueOf(t.UTC().Round(0)))
		}
	case v.Kind() == reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				normalizeIn(v.Field(i))
			}
		}
	case v.Kind() == reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(s, v)
		for i := 0; i < s.Len(); i++ {
			normalizeIn(s.Index(i))
		}
		v.Set(s)
	case v.Kind() == reflect.Map:
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
		}
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// query is one listing case: a query and the ids it must list, in order
// ("[A B]", "[]" for none).
type query[Q any] struct {
	q    Q
	want string
}

// checkQueries runs every case through list (name is the Store method, for
// the messages) and compares the ids listed.
func checkQueries[Q, R any](t *testing.T, name string, cases []query[Q], list func(Q) ([]R, error), id func(R) string) {
	t.Helper()
	for _, c := range cases {
		got, err := list(c.q)
		if err != nil {
			t.Fatalf("%s(%+v): %v", name, c.q, err)
		}
		if ids := idList(got, id); ids != c.want {
			t.Errorf("%s(%+v) = %s, want %s", name, c.q, ids, c.want)
		}
	}
}

// idList prints the ids of rs in order, "[A B]".
func idList[R any](rs []R, id func(R) string) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = id(r)
	}
	return fmt.Sprint(out)
}

func lotID(l store.Lot) string { return l.ID }

func anomalyID(a store.Anomaly) string { return a.ID }
