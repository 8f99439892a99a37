// Package anomaliestest builds test fixtures for anomalies and the console:
// a real SQLite store and blob directory in t.TempDir(), a manual clock, and
// lots walked through legal transitions with Commit.
package anomaliestest

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/gateway/store/blobdir"
	"github.com/octgw/oct/gateway/store/sqlite"
	"github.com/octgw/oct/gateway/store/storetest"
)

// T0 is where fixtures' clocks start.
var T0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

// Fixture is one test's store, blobs and clock.
type Fixture struct {
	T     testing.TB
	Ctx   context.Context
	Store *sqlite.Store
	Blobs *blobdir.Dir
	Clock *storetest.Clock
}

// New opens a fresh store closed at the end of the test.
func New(t testing.TB) *Fixture {
	t.Helper()
	dir := t.TempDir()
	clock := storetest.NewClock(T0)
	ctx := t.Context()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: dir + "/oct.db", Now: clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	blobs, err := blobdir.Open(dir + "/blobs")
	if err != nil {
		t.Fatal(err)
	}
	return &Fixture{T: t, Ctx: ctx, Store: st, Blobs: blobs, Clock: clock}
}

// Now is the clock's time.
func (f *Fixture) Now() time.Time { return f.Clock.Now() }

// Commit commits c or fails the test.
func (f *Fixture) Commit(c *store.Change) {
	f.T.Helper()
	if c.Actor == "" {
		c.Actor = "test"
	}
	if err := f.Store.Commit(f.Ctx, c); err != nil {
		f.T.Fatalf("commit: %v", err)
	}
}

// LotSpec describes a lot to make.
type LotSpec struct {
	ID, Tenant, Destination string
	Emitter                 string // default b2.DefaultEmitter
	Number                  int    // default 1
	Invoices                int    // default 3 (the lot file is a generated B2 file)
	Seed                    int64
}

// NewLot creates a file with one lot (a generated, valid B2 lot file in the
// blobs) and its invoices, and walks the lot through path (legal
// transitions, e.g. routed, signed, sent). The file id is "F-"+ID.
func (f *Fixture) NewLot(s LotSpec, path ...lifecycle.State) store.Lot {
	f.T.Helper()
	if s.Emitter == "" {
		s.Emitter = b2.DefaultEmitter
	}
	if s.Invoices == 0 {
		s.Invoices = 3
	}
	if s.Number == 0 {
		s.Number = 1
	}
	if s.Seed == 0 { // distinct lots get distinct files (intake dedups by sha256)
		h := fnv.New64a()
		h.Write([]byte(s.Tenant + "/" + s.ID))
		s.Seed = int64(h.Sum64() >> 2)
	}
	var buf bytes.Buffer
	if err := b2.Generate(&buf, b2.GenOptions{Seed: s.Seed + 1, Invoices: s.Invoices, Emitter: s.Emitter}); err != nil {
		f.T.Fatal(err)
	}
	rep, err := b2.Validate(bytes.NewReader(buf.Bytes()), b2.Options{Summaries: true})
	if err != nil || !rep.Valid || len(rep.Lots) != 1 {
		f.T.Fatalf("generated lot: %v %v", err, rep.Errors)
	}
	sum, _, err := f.Blobs.Put(f.Ctx, bytes.NewReader(buf.Bytes()), int64(buf.Len())+1)
	if err != nil {
		f.T.Fatal(err)
	}
	lot := store.Lot{ID: s.ID, File: "F-" + s.ID, Tenant: s.Tenant, Emitter: s.Emitter, Number: s.Number, Date: "2026-03-02",
		State: lifecycle.LotCreated, Invoices: len(rep.Lots[0].Invoices), Blob: sum}
	c := &store.Change{Lots: []store.Lot{lot}}
	for j, inv := range rep.Lots[0].Invoices {
		lot.Amount += inv.Billed
		c.Invoices = append(c.Invoices, store.Invoice{ID: s.ID + "-" + strconv.Itoa(j), Lot: s.ID, Tenant: s.Tenant,
			Number: inv.Number, NIRHash: fmt.Sprintf("h%02d", j), Billed: inv.Billed, State: lifecycle.InvoicePending})
	}
	c.Lots[0].Amount = lot.Amount
	if _, created, err := f.Store.CreateFile(f.Ctx, store.File{ID: "F-" + s.ID, Tenant: s.Tenant, Channel: "api", Name: s.ID + ".b2",
		SHA256: sum, Size: int64(buf.Len()), Format: "b2", State: lifecycle.FileReceived, Lots: 1}, c); err != nil || !created {
		f.T.Fatalf("create file: %v %v", created, err)
	}
	if s.Destination != "" {
		lot.Destination = s.Destination
		f.Commit(&store.Change{Lots: []store.Lot{lot}})
	}
	return f.Walk(lot.ID, path...)
}

// Walk moves a lot through states, one Commit each; reaching sent or
// resent records a successful attempt (ended at the clock's time).
func (f *Fixture) Walk(id string, path ...lifecycle.State) store.Lot {
	f.T.Helper()
	for _, to := range path {
		lot, err := f.Store.Lot(f.Ctx, id)
		if err != nil {
			f.T.Fatal(err)
		}
		c := &store.Change{Transitions: []store.Transition{{Kind: lifecycle.Lot, ID: id, From: lot.State, To: to, Actor: "test", Reason: "walk"}}}
		if to == lifecycle.LotSent || to == lifecycle.LotResent {
			as, _ := f.Store.Attempts(f.Ctx, id)
			now := f.Now()
			c.Attempts = []store.Attempt{{ID: id + "-a" + strconv.Itoa(len(as)+1), Lot: id, Destination: lot.Destination,
				Resend: to == lifecycle.LotResent, Started: now, Ended: now, Outcome: "ok", MessageID: "m" + strconv.Itoa(len(as)+1)}}
		}
		f.Commit(c)
	}
	lot, err := f.Store.Lot(f.Ctx, id)
	if err != nil {
		f.T.Fatal(err)
	}
	return lot
}

// Anomaly opens an anomaly (created now, SLA from sla).
func (f *Fixture) Anomaly(id, kind, subject, tenant, destination string, sla time.Duration) store.Anomaly {
	f.T.Helper()
	now := f.Now()
	a := store.Anomaly{ID: id, Kind: kind, Subject: subject, Tenant: tenant, Destination: destination,
		State: lifecycle.AnomalyOpen, Reason: "test " + kind, SLA: now.Add(sla), Created: now}
	f.Commit(&store.Change{Anomalies: []store.Anomaly{a}})
	return a
}

// Jobs takes the pending jobs of kind: they are leased and marked done,
// so each job is seen by one call only.
func (f *Fixture) Jobs(kind string) []store.Lease {
	f.T.Helper()
	ls, err := f.Store.Lease(f.Ctx, "inspect", []string{kind}, 1000, time.Minute)
	if err != nil {
		f.T.Fatal(err)
	}
	if len(ls) > 0 {
		f.Commit(&store.Change{Done: ls})
	}
	return ls
}
