package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func newFile(id, tenant, content, key string) store.File {
	return store.File{
		ID: id, Tenant: tenant, Channel: "api", Name: id + ".b2", SHA256: sum(content),
		Size: int64(len(content)), IdemKey: key, Format: "b2", State: lifecycle.FileReceived,
		Ack: []byte(`{"status":"accepted"}`), Lots: 1, Invoices: 2,
	}
}

func newLot(id, file, tenant string) store.Lot {
	return store.Lot{
		ID: id, File: file, Tenant: tenant, Emitter: "0123456789", Number: 7, Date: "2026-03-01",
		State: lifecycle.LotCreated, Invoices: 2, Amount: 12345,
	}
}

func testCreateFile(f *fx) {
	t := f.t
	in := newFile("F1", "acme", "file one", "k1")
	got, created, err := f.s.CreateFile(f.ctx, in, &store.Change{
		Actor:   "intake",
		Lots:    []store.Lot{newLot("L1", "F1", "acme")},
		Enqueue: []store.Job{{Kind: "validate", Subject: "file:F1"}},
	})
	if err != nil || !created {
		t.Fatalf("CreateFile: created=%v err=%v", created, err)
	}
	want := in
	want.ReceivedAt = f.clock.Now() // zero ReceivedAt takes the store's clock
	same(t, "returned file", got, want)
	stored, err := f.s.File(f.ctx, "F1")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "stored file", stored, want)
	if _, err := f.s.Lot(f.ctx, "L1"); err != nil {
		t.Fatalf("lot of then: %v", err)
	}
	if p := f.pending(); p["validate"] != 1 {
		t.Fatalf("pending = %v, want validate:1", p)
	}
	evs := f.events("file:F1")
	if len(evs) != 1 {
		t.Fatalf("file events = %d, want 1", len(evs))
	}
	e := evs[0]
	if e.Type != "transition" || e.From != "" || e.To != lifecycle.FileReceived || e.Actor != "intake" ||
		!e.Time.Equal(f.clock.Now()) {
		t.Errorf("creation event = %+v", e)
	}
	events := f.eventCount()

	// Same content, another id: the existing file, nothing written.
	f.clock.Advance(time.Minute)
	dupSHA := newFile("F2", "acme", "file one", "")
	got, created, err = f.s.CreateFile(f.ctx, dupSHA, &store.Change{
		Lots:    []store.Lot{newLot("L2", "F2", "acme")},
		Enqueue: []store.Job{{Kind: "other", Subject: "file:F2"}},
	})
	if err != nil || created || got.ID != "F1" {
		t.Fatalf("same sha: got %s created=%v err=%v, want F1 false nil", got.ID, created, err)
	}
	same(t, "existing file", got, want)
	// Same idempotency key, other content.
	got, created, err = f.s.CreateFile(f.ctx, newFile("F3", "acme", "file three", "k1"), nil)
	if err != nil || created || got.ID != "F1" {
		t.Fatalf("same key: got %s created=%v err=%v, want F1 false nil", got.ID, created, err)
	}
	for _, id := range []string{"F2", "F3"} {
		if _, err := f.s.File(f.ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("File(%s) after duplicate: %v, want not found", id, err)
		}
	}
	if _, err := f.s.Lot(f.ctx, "L2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("then of a duplicate was applied: Lot(L2) err=%v", err)
	}
	if p := f.pending(); p["other"] != 0 {
		t.Errorf("then of a duplicate enqueued a job: %v", p)
	}
	if n := f.eventCount(); n != events {
		t.Errorf("duplicate wrote events: %d -> %d", events, n)
	}

	// Other tenants are not affected by acme's files.
	_, created, err = f.s.CreateFile(f.ctx, newFile("F4", "globex", "file one", "k1"), nil)
	if err != nil || !created {
		t.Fatalf("other tenant, same sha and key: created=%v err=%v", created, err)
	}
	// Empty keys never collide.
	for i, id := range []string{"F5", "F6"} {
		_, created, err := f.s.CreateFile(f.ctx, newFile(id, "acme", fmt.Sprint("no key ", i), ""), nil)
		if err != nil || !created {
			t.Fatalf("CreateFile(%s) without key: created=%v err=%v", id, created, err)
		}
	}
	files, err := f.s.Files(f.ctx, "acme", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if ids := fileIDs(files); fmt.Sprint(ids) != "[F1 F5 F6]" {
		t.Errorf("acme files = %v, want [F1 F5 F6]", ids)
	}

	// Refusals.
	bad := newFile("F7", "acme", "seven", "")
	bad.State = lifecycle.FileAccepted
	_, _, err = f.s.CreateFile(f.ctx, bad, nil)
	wantErr(t, "CreateFile in a non-initial state", err, lifecycle.ErrIllegal)
	// An id already used by another file is a duplicate, never an update.
	taken := newFile("F4", "acme", "other content", "")
	_, _, err = f.s.CreateFile(f.ctx, taken, nil)
	wantErr(t, "CreateFile with a taken id", err, store.ErrDuplicate)
	if got, _ := f.s.File(f.ctx, "F4"); got.Tenant != "globex" || got.SHA256 != sum("file one") {
		t.Errorf("CreateFile with a taken id changed the file: %+v", got)
	}
	noID := newFile("", "acme", "eight", "")
	_, _, err = f.s.CreateFile(f.ctx, noID, nil)
	wantErr(t, "CreateFile without id", err, store.ErrInvalid)
	if _, err := f.s.File(f.ctx, "F7"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused file stored: %v", err)
	}
}

func fileIDs(fs []store.File) []string {
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.ID)
	}
	return ids
}

func testCreateFileAtomic(f *fx) {
	t := f.t
	in := newFile("F1", "acme", "one", "key")
	_, _, err := f.s.CreateFile(f.ctx, in, &store.Change{
		Enqueue: []store.Job{{Kind: "validate", Subject: "file:F1"}},
		Transitions: []store.Transition{
			{Kind: lifecycle.File, ID: "F1", From: lifecycle.FileReceived, To: lifecycle.FileSettled},
		},
	})
	wantErr(t, "CreateFile with an illegal transition", err, lifecycle.ErrIllegal)
	if _, err := f.s.File(f.ctx, "F1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("file written by a failed CreateFile: %v", err)
	}
	if n := f.eventCount(); n != 0 {
		t.Fatalf("events written by a failed CreateFile: %d", n)
	}
	if p := f.pending(); len(p) != 0 && p["validate"] != 0 {
		t.Fatalf("job written by a failed CreateFile: %v", p)
	}
	// Nothing was kept, so the same file and key are new again.
	_, created, err := f.s.CreateFile(f.ctx, in, &store.Change{
		Transitions: []store.Transition{
			{Kind: lifecycle.File, ID: "F1", From: lifecycle.FileReceived, To: lifecycle.FileAccepted},
		},
	})
	if err != nil || !created {
		t.Fatalf("retry: created=%v err=%v", created, err)
	}
	got, _ := f.s.File(f.ctx, "F1")
	if got.State != lifecycle.FileAccepted {
		t.Errorf("state = %s, want accepted", got.State)
	}
}

func testPutRules(f *fx) {
	t := f.t
	routed := newLot("L1", "F1", "acme")
	routed.State = lifecycle.LotRouted
	err := f.s.Commit(f.ctx, &store.Change{Lots: []store.Lot{routed}})
	wantErr(t, "new lot in a non-initial state", err, lifecycle.ErrIllegal)
	if _, err := f.s.Lot(f.ctx, "L1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused lot stored: %v", err)
	}
	accepted := newFile("F1", "acme", "x", "")
	accepted.State = lifecycle.FileAccepted
	wantErr(t, "new file in a non-initial state",
		f.s.Commit(f.ctx, &store.Change{Files: []store.File{accepted}}), lifecycle.ErrIllegal)
	empty := newLot("L1", "F1", "acme")
	empty.State = ""
	wantErr(t, "new lot without state",
		f.s.Commit(f.ctx, &store.Change{Lots: []store.Lot{empty}}), lifecycle.ErrIllegal)

	l := newLot("L1", "F1", "acme")
	f.commit(&store.Change{Actor: "splitter", Lots: []store.Lot{l}})
	got, err := f.s.Lot(f.ctx, "L1")
	if err != nil {
		t.Fatal(err)
	}
	want := l
	want.UpdatedAt = got.UpdatedAt
	same(t, "lot", got, want)
	evs := f.events("lot:L1")
	if len(evs) != 1 || evs[0].From != "" || evs[0].To != lifecycle.LotCreated || evs[0].Actor != "splitter" ||
		evs[0].Type != "transition" {
		t.Fatalf("lot creation events = %+v", evs)
	}

	// A Put of an existing record updates its fields, never its state, and
	// writes no event.
	upd := l
	upd.Destination = "CPAM-751"
	upd.RefVersion = "2026.03"
	upd.Signed = strings.Repeat("ab", 32)
	upd.State = lifecycle.LotSent
	f.commit(&store.Change{Lots: []store.Lot{upd}})
	got, _ = f.s.Lot(f.ctx, "L1")
	if got.State != lifecycle.LotCreated || got.Destination != "CPAM-751" || got.RefVersion != "2026.03" || got.Signed != upd.Signed {
		t.Errorf("after update: state %s destination %q ref %q signed %q", got.State, got.Destination, got.RefVersion, got.Signed)
	}
	if n := len(f.events("lot:L1")); n != 1 {
		t.Errorf("update wrote events: %d", n)
	}
}

func testTransitions(f *fx) {
	t := f.t
	f.commit(&store.Change{Actor: "splitter", Lots: []store.Lot{newLot("L1", "F1", "acme")}})
	f.clock.Advance(time.Second)
	f.commit(&store.Change{Actor: "pipeline", Transitions: []store.Transition{
		{Kind: lifecycle.Lot, ID: "L1", From: lifecycle.LotCreated, To: lifecycle.LotRouted, Actor: "router", Reason: "rule 3"},
	}})
	got, _ := f.s.Lot(f.ctx, "L1")
	if got.State != lifecycle.LotRouted {
		t.Fatalf("state = %s, want routed", got.State)
	}
	evs := f.events("lot:L1")
	if len(evs) != 2 {
		t.Fatalf("events = %d, want 2", len(evs))
	}
	e := evs[1]
	if e.Type != "transition" || e.From != lifecycle.LotCreated || e.To != lifecycle.LotRouted ||
		e.Actor != "router" || e.Reason != "rule 3" || !e.Time.Equal(f.clock.Now()) || e.Subject != "lot:L1" {
		t.Errorf("transition event = %+v", e)
	}
	// Default actor.
	f.commit(&store.Change{Actor: "signer", Transitions: []store.Transition{
		{Kind: lifecycle.Lot, ID: "L1", From: lifecycle.LotRouted, To: lifecycle.LotSigned},
	}})
	if evs := f.events("lot:L1"); evs[len(evs)-1].Actor != "signer" {
		t.Errorf("default actor = %q, want signer", evs[len(evs)-1].Actor)
	}

	// Illegal: signed -> settled is not in the table.
	err := f.s.Commit(f.ctx, &store.Change{Transitions: []store.Transition{
		{Kind: lifecycle.Lot, ID: "L1", From: lifecycle.LotSigned, To: lifecycle.LotSettled},
	}})
	wantErr(t, "illegal transition", err, lifecycle.ErrIllegal)
	var ie *lifecycle.IllegalError
	if !errors.As(err, &ie) || ie.Kind != lifecycle.Lot || ie.From != lifecycle.LotSigned || ie.To != lifecycle.LotSettled {
		t.Errorf("IllegalError = %+v", ie)
	}
	// Stale From: legal transition, but the lot is no longer routed.
	err = f.s.Commit(f.ctx, &store.Change{Transitions: []store.Transition{
		{Kind: lifecycle.Lot, ID: "L1", From: lifecycle.LotRouted, To: lifecycle.LotSignFailed},
	}})
	wantErr(t, "stale from", err, store.ErrConflict)
	// Unknown subject.
	err = f.s.Commit(f.ctx, &store.Change{Transitions: []store.Transition{
		{Kind: lifecycle.Lot, ID: "nope", From: lifecycle.LotCreated, To: lifecycle.LotRouted},
	}})
	wantErr(t, "unknown subject", err, store.ErrNotFound)
	got, _ = f.s.Lot(f.ctx, "L1")
	if got.State != lifecycle.LotSigned {
		t.Errorf("state after refusals = %s, want signed", got.State)
	}
	if n := len(f.events("lot:L1")); n != 3 {
		t.Errorf("refused transitions wrote events: %d, want 3", n)
	}

	// Put and transitions of the same new record in one change, applied in
	// order.
	f.commit(&store.Change{
		Lots: []store.Lot{newLot("L2", "F1", "acme")},
		Transitions: []store.Transition{
			{Kind: lifecycle.Lot, ID: "L2", From: lifecycle.LotCreated, To: lifecycle.LotRouted},
			{Kind: lifecycle.Lot, ID: "L2", From: lifecycle.LotRouted, To: lifecycle.LotSigned},
			{Kind: lifecycle.Lot, ID: "L2", From: lifecycle.LotSigned, To: lifecycle.LotSent},
		},
	})
	got, _ = f.s.Lot(f.ctx, "L2")
	if got.State != lifecycle.LotSent {
		t.Errorf("L2 state = %s, want sent", got.State)
	}
	var path []string
	for _, e := range f.events("lot:L2") {
		path = append(path, string(e.From)+">"+string(e.To))
	}
	if fmt.Sprint(path) != "[>created created>routed routed>signed signed>sent]" {
		t.Errorf("L2 events = %v", path)
	}
}

func testChangeAtomic(f *fx) {
	t := f.t
	f.commit(&store.Change{
		Lots:    []store.Lot{newLot("L1", "F1", "acme")},
		Enqueue: []store.Job{{Kind: "route", Subject: "lot:L1"}},
	})
	events, pending := f.eventCount(), f.pending()
	inv := store.Invoice{ID: "I1", Lot: "L2", Tenant: "acme", Number: "000123", NIRHash: sum("nir"), State: lifecycle.InvoicePending}
	cases := []struct {
		name   string
		target error
		bad    store.Transition
	}{
		{"illegal", lifecycle.ErrIllegal, store.Transition{Kind: lifecycle.Lot, ID: "L1", From: lifecycle.LotRouted, To: lifecycle.LotSettled}},
		{"conflict", store.ErrConflict, store.Transition{Kind: lifecycle.Lot, ID: "L1", From: lifecycle.LotCreated, To: lifecycle.LotRouted}},
		{"not found", store.ErrNotFound, store.Transition{Kind: lifecycle.Lot, ID: "L9", From: lifecycle.LotCreated, To: lifecycle.LotRouted}},
	}
	for _, c := range cases {
		err := f.s.Commit(f.ctx, &store.Change{
			Tenants:      []store.Tenant{{ID: "T9", Name: "nine"}},
			Files:        []store.File{newFile("F2", "acme", "two", "")},
			Lots:         []store.Lot{newLot("L2", "F2", "acme")},
			Invoices:     []store.Invoice{inv},
			Attempts:     []store.Attempt{{ID: "A1", Lot: "L1", Destination: "d", Started: f.clock.Now()}},
			Expectations: []store.Expectation{{ID: "E1", Lot: "L1", Kind: "arl", DueAt: f.clock.Now()}},
			Returns:      []store.Return{{ID: "R1", Tenant: "acme", Kind: "arl", Blob: sum("r")}},
			Anomalies:    []store.Anomaly{{ID: "N1", Kind: "k", Subject: "lot:L1", State: lifecycle.AnomalyOpen}},
			Transitions: []store.Transition{
				{Kind: lifecycle.Lot, ID: "L1", From: lifecycle.LotCreated, To: lifecycle.LotRouted},
				c.bad,
			},
			Events:  []store.Event{{Subject: "lot:L1", Type: "note"}},
			Enqueue: []store.Job{{Kind: "sign", Subject: "lot:L1"}},
		})
		wantErr(t, c.name, err, c.target)
		l, _ := f.s.Lot(f.ctx, "L1")
		if l.State != lifecycle.LotCreated {
			t.Errorf("%s: L1 state = %s, want created (partial change applied)", c.name, l.State)
		}
		if _, err := f.s.Tenant(f.ctx, "T9"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: tenant written: %v", c.name, err)
		}
		if _, err := f.s.File(f.ctx, "F2"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: file written: %v", c.name, err)
		}
		if _, err := f.s.Lot(f.ctx, "L2"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: lot written: %v", c.name, err)
		}
		if invs, _ := f.s.Invoices(f.ctx, "L2"); len(invs) != 0 {
			t.Errorf("%s: invoice written", c.name)
		}
		if as, _ := f.s.Attempts(f.ctx, "L1"); len(as) != 0 {
			t.Errorf("%s: attempt written", c.name)
		}
		if es, _ := f.s.Expectations(f.ctx, "L1"); len(es) != 0 {
			t.Errorf("%s: expectation written", c.name)
		}
		if _, err := f.s.Return(f.ctx, "R1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: return written: %v", c.name, err)
		}
		if _, err := f.s.Anomaly(f.ctx, "N1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: anomaly written: %v", c.name, err)
		}
		if n := f.eventCount(); n != events {
			t.Errorf("%s: events %d -> %d", c.name, events, n)
		}
		same(t, c.name+": pending jobs", f.pending(), pending)
	}
	// Invalid changes.
	for name, c := range map[string]*store.Change{
		"lot without id":     {Lots: []store.Lot{{State: lifecycle.LotCreated}}},
		"transition event":   {Events: []store.Event{{Subject: "lot:L1", Type: "transition"}}},
		"event without type": {Events: []store.Event{{Subject: "lot:L1"}}},
	} {
		wantErr(t, name, f.s.Commit(f.ctx, c), store.ErrInvalid)
	}
	// A nil or empty change is a no-op.
	f.commit(&store.Change{})
	if n := f.eventCount(); n != events {
		t.Errorf("empty change wrote events")
	}
}

func testOtherKinds(f *fx) {
	t := f.t
	inv := store.Invoice{ID: "I1", Lot: "L1", Tenant: "acme", Number: "000123", NIRHash: sum("nir"), AMC: "AMC1",
		Billed: 2500, AMO: 1750, AMCPart: 750, State: lifecycle.InvoicePending}
	an := store.Anomaly{ID: "N1", Kind: "arl_overdue", Subject: "lot:L1", Tenant: "acme", Destination: "CPAM-751",
		State: lifecycle.AnomalyOpen, Reason: "no ARL after 48h", SLA: T0.Add(24 * time.Hour)}
	f.commit(&store.Change{Actor: "x", Invoices: []store.Invoice{inv}, Anomalies: []store.Anomaly{an}})

	invs, err := f.s.Invoices(f.ctx, "L1")
	if err != nil || len(invs) != 1 {
		t.Fatalf("Invoices: %v %v", invs, err)
	}
	same(t, "invoice", invs[0], inv)
	got, err := f.s.Anomaly(f.ctx, "N1")
	if err != nil {
		t.Fatal(err)
	}
	wantAn := an
	wantAn.Created = f.clock.Now() // zero Created takes the store's clock
	same(t, "anomaly", got, wantAn)
	for _, subj := range []string{"invoice:I1", "anomaly:N1"} {
		evs := f.events(subj)
		if len(evs) != 1 || evs[0].From != "" || evs[0].Actor != "x" {
			t.Errorf("%s creation events = %+v", subj, evs)
		}
	}
	rejected := inv
	rejected.Codes = []string{"R01", "R17"}
	f.commit(&store.Change{
		Invoices: []store.Invoice{rejected},
		Transitions: []store.Transition{
			{Kind: lifecycle.Invoice, ID: "I1", From: lifecycle.InvoicePending, To: lifecycle.InvoiceRejected},
			{Kind: lifecycle.Anomaly, ID: "N1", From: lifecycle.AnomalyOpen, To: lifecycle.AnomalyAssigned, Actor: "alice"},
			{Kind: lifecycle.Anomaly, ID: "N1", From: lifecycle.AnomalyAssigned, To: lifecycle.AnomalyAssigned, Actor: "bob"},
		},
	})
	invs, _ = f.s.Invoices(f.ctx, "L1")
	if invs[0].State != lifecycle.InvoiceRejected || fmt.Sprint(invs[0].Codes) != "[R01 R17]" {
		t.Errorf("invoice after rejection = %+v", invs[0])
	}
	got, _ = f.s.Anomaly(f.ctx, "N1")
	if got.State != lifecycle.AnomalyAssigned || len(f.events("anomaly:N1")) != 3 {
		t.Errorf("anomaly after reassignment: %s, %d events", got.State, len(f.events("anomaly:N1")))
	}
	wantErr(t, "terminal invoice", f.s.Commit(f.ctx, &store.Change{Transitions: []store.Transition{
		{Kind: lifecycle.Invoice, ID: "I1", From: lifecycle.InvoiceRejected, To: lifecycle.InvoicePaid},
	}}), lifecycle.ErrIllegal)

	// File transitions.
	if _, _, err := f.s.CreateFile(f.ctx, newFile("F1", "acme", "one", ""), nil); err != nil {
		t.Fatal(err)
	}
	f.commit(&store.Change{Transitions: []store.Transition{
		{Kind: lifecycle.File, ID: "F1", From: lifecycle.FileReceived, To: lifecycle.FileAccepted},
		{Kind: lifecycle.File, ID: "F1", From: lifecycle.FileAccepted, To: lifecycle.FileSplit},
	}})
	file, _ := f.s.File(f.ctx, "F1")
	if file.State != lifecycle.FileSplit {
		t.Errorf("file state = %s", file.State)
	}
}

func testExtraEvents(f *fx) {
	t := f.t
	f.clock.Advance(time.Hour)
	f.commit(&store.Change{Actor: "console:alice", Events: []store.Event{
		{Subject: "tenant:acme", Type: "token_rotated", Reason: "requested by vendor", Data: []byte(`{"n":2}`)},
		{Subject: "tenant:acme", Type: "note", Actor: "bob", Seq: 999, Hash: "forged", Time: T0},
	}})
	evs := f.events("tenant:acme")
	if len(evs) != 2 {
		t.Fatalf("events = %d, want 2", len(evs))
	}
	e := evs[0]
	if e.Type != "token_rotated" || e.Actor != "console:alice" || e.Reason != "requested by vendor" ||
		string(e.Data) != `{"n":2}` || !e.Time.Equal(f.clock.Now()) || e.Seq != 1 || e.PrevHash != store.GenesisHash {
		t.Errorf("event = %+v", e)
	}
	e = evs[1]
	if e.Actor != "bob" || e.Seq != 2 || e.Hash == "forged" || e.PrevHash != evs[0].Hash || !e.Time.Equal(f.clock.Now()) {
		t.Errorf("store must set Seq, Time and hashes: %+v", e)
	}
}

func testChain(f *fx) {
	t := f.t
	for i := 0; i < 7; i++ {
		f.clock.Advance(time.Duration(i) * time.Millisecond)
		id := fmt.Sprint("F", i)
		if _, _, err := f.s.CreateFile(f.ctx, newFile(id, "acme", id, ""), &store.Change{
			Events: []store.Event{{Subject: "file:" + id, Type: "note", Data: []byte(`{"i":` + fmt.Sprint(i) + `}`)}},
		}); err != nil {
			t.Fatal(err)
		}
		f.commit(&store.Change{Transitions: []store.Transition{
			{Kind: lifecycle.File, ID: id, From: lifecycle.FileReceived, To: lifecycle.FileRejected, Reason: "bad header"},
		}})
	}
	// Page through with a small limit: continuous, linked, hashes right.
	prev, last, n := store.GenesisHash, int64(0), 0
	for {
		evs, err := f.s.EventsAfter(f.ctx, last, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 4 {
			t.Fatalf("EventsAfter returned %d > limit 4", len(evs))
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			if e.Seq <= last || e.PrevHash != prev || e.Hash != store.EventHash(prev, e) {
				t.Fatalf("chain broken at %+v (last %d)", e, last)
			}
			prev, last = e.Hash, e.Seq
			n++
		}
	}
	if n != 21 {
		t.Fatalf("events = %d, want 21", n)
	}
	var progress int64
	checked, broken, err := store.VerifyChain(f.ctx, f.s, func(k int64) { progress = k })
	if err != nil || broken != 0 || checked != 21 || progress != 21 {
		t.Fatalf("VerifyChain = %d, %d, %v (progress %d)", checked, broken, err, progress)
	}
	// Events of one subject, in order, are the same as in the log.
	evs := f.events("file:F3")
	if len(evs) != 3 || evs[0].To != lifecycle.FileReceived || evs[1].Type != "note" || evs[2].To != lifecycle.FileRejected ||
		!(evs[0].Seq < evs[1].Seq && evs[1].Seq < evs[2].Seq) {
		t.Errorf("Events(file:F3) = %+v", evs)
	}
	all, _ := f.s.EventsAfter(f.ctx, evs[0].Seq-1, 1)
	same(t, "event by subject and by seq", evs[0], all[0])
}

func testTenants(f *fx) {
	t := f.t
	acme := store.Tenant{ID: "acme", Name: "ACME Santé", TokenHash: sum("tok-acme"),
		SSHKeys: []string{"ssh-ed25519 AAAAC3Nza acme@host"}, Created: T0.Add(-time.Hour)}
	globex := store.Tenant{ID: "globex", Name: "Globex", TokenHash: sum("tok-globex"), Disabled: true}
	f.commit(&store.Change{Tenants: []store.Tenant{acme, globex}})
	got, err := f.s.Tenant(f.ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "tenant", got, acme)
	if got.TokenHash != acme.TokenHash {
		t.Errorf("token hash not kept")
	}
	got, err = f.s.TenantByToken(f.ctx, sum("tok-globex"))
	if err != nil || got.ID != "globex" || !got.Disabled {
		t.Errorf("TenantByToken = %+v, %v", got, err)
	}
	for _, h := range []string{sum("tok-nope"), ""} {
		if _, err := f.s.TenantByToken(f.ctx, h); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("TenantByToken(%q) err = %v, want not found", h, err)
		}
	}
	if _, err := f.s.Tenant(f.ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Tenant(nope) err = %v", err)
	}
	all, err := f.s.Tenants(f.ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("Tenants = %v, %v", all, err)
	}
	// A token hash belongs to one tenant.
	thief := store.Tenant{ID: "initech", Name: "Initech", TokenHash: sum("tok-acme")}
	wantErr(t, "duplicate token hash", f.s.Commit(f.ctx, &store.Change{Tenants: []store.Tenant{thief}}), store.ErrDuplicate)
	// Rotation: the old hash no longer finds the tenant.
	acme.TokenHash = sum("tok-acme-2")
	f.commit(&store.Change{Tenants: []store.Tenant{acme}})
	if _, err := f.s.TenantByToken(f.ctx, sum("tok-acme")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old token still works: %v", err)
	}
	if got, err := f.s.TenantByToken(f.ctx, sum("tok-acme-2")); err != nil || got.ID != "acme" {
		t.Errorf("new token: %+v %v", got, err)
	}
}

func testFilesPaging(f *fx) {
	t := f.t
	for i := 0; i < 7; i++ {
		id := fmt.Sprintf("F%02d", 10-i) // inserted out of order
		if _, _, err := f.s.CreateFile(f.ctx, newFile(id, "acme", id, ""), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := f.s.CreateFile(f.ctx, newFile("F99", "globex", "g", ""), nil); err != nil {
		t.Fatal(err)
	}
	var ids []string
	after := ""
	for page := 0; ; page++ {
		fs, err := f.s.Files(f.ctx, "acme", after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) > 3 || page > 5 {
			t.Fatalf("page %d: %d files", page, len(fs))
		}
		if len(fs) == 0 {
			break
		}
		ids = append(ids, fileIDs(fs)...)
		after = fs[len(fs)-1].ID
	}
	if fmt.Sprint(ids) != "[F04 F05 F06 F07 F08 F09 F10]" {
		t.Errorf("paged files = %v", ids)
	}
	if _, err := f.s.File(f.ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("File(nope) = %v", err)
	}
}

func lotIDs(ls []store.Lot) string { return idList(ls, lotID) }

func testLotQueries(f *fx) {
	t := f.t
	mk := func(id, file, tenant, emitter string, number int, date, dest string) store.Lot {
		l := newLot(id, file, tenant)
		l.Emitter, l.Number, l.Date, l.Destination = emitter, number, date, dest
		return l
	}
	lots := []store.Lot{
		mk("L1", "F1", "acme", "111", 1, "2026-03-01", "CPAM-751"),
		mk("L2", "F1", "acme", "111", 2, "2026-03-01", "CPAM-751"),
		mk("L3", "F2", "acme", "111", 1, "2026-03-02", "CPAM-921"),
		mk("L4", "F3", "acme", "222", 1, "2026-03-01", "MSA-01"),
		mk("L5", "F4", "globex", "111", 1, "2026-03-01", "CPAM-751"),
	}
	f.commit(&store.Change{Lots: lots, Transitions: []store.Transition{
		{Kind: lifecycle.Lot, ID: "L2", From: lifecycle.LotCreated, To: lifecycle.LotRouted},
		{Kind: lifecycle.Lot, ID: "L5", From: lifecycle.LotCreated, To: lifecycle.LotRouted},
	}})
	cases := []query[store.LotQuery]{
		{store.LotQuery{}, "[L1 L2 L3 L4 L5]"},
		{store.LotQuery{Tenant: "acme"}, "[L1 L2 L3 L4]"},
		{store.LotQuery{File: "F1"}, "[L1 L2]"},
		{store.LotQuery{Emitter: "111", Number: 1, Date: "2026-03-01"}, "[L1 L5]"},
		{store.LotQuery{Tenant: "acme", Emitter: "111", Number: 1, Date: "2026-03-01"}, "[L1]"},
		{store.LotQuery{Destination: "CPAM-751"}, "[L1 L2 L5]"},
		{store.LotQuery{State: lifecycle.LotRouted}, "[L2 L5]"},
		{store.LotQuery{Destination: "CPAM-751", State: lifecycle.LotCreated}, "[L1]"},
		{store.LotQuery{Number: 2}, "[L2]"},
		{store.LotQuery{Date: "2026-03-02"}, "[L3]"},
		{store.LotQuery{After: "L2", Limit: 2}, "[L3 L4]"},
		{store.LotQuery{Tenant: "acme", After: "L3"}, "[L4]"},
		{store.LotQuery{Tenant: "initech"}, "[]"},
	}
	checkQueries(t, "Lots", cases, func(q store.LotQuery) ([]store.Lot, error) { return f.s.Lots(f.ctx, q) }, lotID)
	got, _ := f.s.Lots(f.ctx, store.LotQuery{File: "F2"})
	want := lots[2]
	want.UpdatedAt = got[0].UpdatedAt
	same(t, "queried lot", got[0], want)
	if _, err := f.s.Lot(f.ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Lot(nope) = %v", err)
	}
}

func testAnomalyQueries(f *fx) {
	t := f.t
	mk := func(id, kind, subject, tenant, dest, assignee string) store.Anomaly {
		return store.Anomaly{ID: id, Kind: kind, Subject: subject, Tenant: tenant, Destination: dest,
			Assignee: assignee, State: lifecycle.AnomalyOpen, Reason: "r", SLA: T0.Add(time.Hour)}
	}
	f.commit(&store.Change{Anomalies: []store.Anomaly{
		mk("N1", "unroutable", "lot:L1", "acme", "", ""),
		mk("N2", "arl_overdue", "lot:L2", "acme", "CPAM-751", "alice"),
		mk("N3", "arl_overdue", "lot:L3", "globex", "CPAM-751", "bob"),
		mk("N4", "sign_failed", "lot:L2", "acme", "CPAM-751", "alice"),
	}, Transitions: []store.Transition{
		{Kind: lifecycle.Anomaly, ID: "N4", From: lifecycle.AnomalyOpen, To: lifecycle.AnomalyResolved},
	}})
	cases := []query[store.AnomalyQuery]{
		{store.AnomalyQuery{}, "[N1 N2 N3 N4]"},
		{store.AnomalyQuery{Tenant: "acme"}, "[N1 N2 N4]"},
		{store.AnomalyQuery{Kind: "arl_overdue"}, "[N2 N3]"},
		{store.AnomalyQuery{Destination: "CPAM-751", Tenant: "acme"}, "[N2 N4]"},
		{store.AnomalyQuery{Assignee: "alice", State: lifecycle.AnomalyOpen}, "[N2]"},
		{store.AnomalyQuery{State: lifecycle.AnomalyResolved}, "[N4]"},
		{store.AnomalyQuery{Subject: "lot:L2"}, "[N2 N4]"},
		{store.AnomalyQuery{After: "N1", Limit: 2}, "[N2 N3]"},
	}
	checkQueries(t, "Anomalies", cases, func(q store.AnomalyQuery) ([]store.Anomaly, error) { return f.s.Anomalies(f.ctx, q) }, anomalyID)
	if _, err := f.s.Anomaly(f.ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Anomaly(nope) = %v", err)
	}
}

func testDetails(f *fx) {
	t := f.t
	a1 := store.Attempt{ID: "A1", Lot: "L1", Destination: "CPAM-751", MessageID: "<m1@oct>", Started: T0,
		Ended: T0.Add(2 * time.Second), Outcome: "temporary", Detail: "451 try later"}
	a2 := store.Attempt{ID: "A2", Lot: "L1", Destination: "CPAM-751", Resend: true, Started: T0.Add(time.Minute)}
	e1 := store.Expectation{ID: "E1", Lot: "L1", Kind: "arl", DueAt: T0.Add(48 * time.Hour)}
	f.commit(&store.Change{Attempts: []store.Attempt{a2, a1}, Expectations: []store.Expectation{e1}})
	as, err := f.s.Attempts(f.ctx, "L1")
	if err != nil || len(as) != 2 {
		t.Fatalf("Attempts = %v, %v", as, err)
	}
	sort.Slice(as, func(i, j int) bool { return as[i].ID < as[j].ID })
	same(t, "attempt 1", as[0], a1)
	same(t, "attempt 2", as[1], a2)
	// Upsert.
	a2.Ended, a2.Outcome, a2.MessageID = T0.Add(61*time.Second), "ok", "<m2@oct>"
	e1.SatisfiedBy = "R1"
	f.commit(&store.Change{Attempts: []store.Attempt{a2}, Expectations: []store.Expectation{e1}})
	as, _ = f.s.Attempts(f.ctx, "L1")
	for _, a := range as {
		if a.ID == "A2" {
			same(t, "updated attempt", a, a2)
		}
	}
	es, err := f.s.Expectations(f.ctx, "L1")
	if err != nil || len(es) != 1 {
		t.Fatalf("Expectations = %v, %v", es, err)
	}
	same(t, "expectation", es[0], e1)
	if as, _ := f.s.Attempts(f.ctx, "L2"); len(as) != 0 {
		t.Errorf("Attempts(L2) = %v", as)
	}
}

func testReturnsFeed(f *fx) {
	t := f.t
	mk := func(id, tenant string) store.Return {
		return store.Return{ID: id, Tenant: tenant, Kind: "arl", Blob: sum(id), Lot: "L-" + id,
			Summary: []byte(`{"ok":true}`), Received: T0}
	}
	f.commit(&store.Change{Returns: []store.Return{mk("R1", "acme"), mk("R2", "globex")}})
	f.commit(&store.Change{Returns: []store.Return{mk("R3", "acme")}})
	orphan := mk("R4", "")
	orphan.Orphan, orphan.Lot = true, ""
	f.commit(&store.Change{Returns: []store.Return{orphan, mk("R5", "acme")}})

	feed := func(tenant string, after int64, limit int) []store.Return {
		rs, err := f.s.Returns(f.ctx, tenant, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	acme := feed("acme", 0, 100)
	if len(acme) != 3 || acme[0].ID != "R1" || acme[1].ID != "R3" || acme[2].ID != "R5" {
		t.Fatalf("acme feed = %+v", acme)
	}
	if !(acme[0].Seq > 0 && acme[0].Seq < acme[1].Seq && acme[1].Seq < acme[2].Seq) {
		t.Errorf("seqs not increasing: %d %d %d", acme[0].Seq, acme[1].Seq, acme[2].Seq)
	}
	want := mk("R1", "acme")
	want.Seq = acme[0].Seq
	same(t, "return in feed", acme[0], want)
	r2, err := f.s.Return(f.ctx, "R2")
	if err != nil || r2.Seq <= acme[0].Seq || r2.Seq >= acme[1].Seq {
		t.Errorf("R2 seq %d not between R1 %d and R3 %d (%v)", r2.Seq, acme[0].Seq, acme[1].Seq, err)
	}
	if rs := feed("acme", acme[0].Seq, 100); len(rs) != 2 || rs[0].ID != "R3" {
		t.Errorf("feed after R1 = %+v", rs)
	}
	if rs := feed("acme", 0, 1); len(rs) != 1 || rs[0].ID != "R1" {
		t.Errorf("feed limit 1 = %+v", rs)
	}
	if rs := feed("globex", 0, 100); len(rs) != 1 || rs[0].ID != "R2" {
		t.Errorf("globex feed = %+v", rs)
	}
	if rs := feed("initech", 0, 100); len(rs) != 0 {
		t.Errorf("initech feed = %+v", rs)
	}
	// An update keeps the return's place in the feed.
	upd := mk("R1", "acme")
	upd.Summary = []byte(`{"ok":false}`)
	f.commit(&store.Change{Returns: []store.Return{upd}})
	got, _ := f.s.Return(f.ctx, "R1")
	if got.Seq != acme[0].Seq || string(got.Summary) != `{"ok":false}` {
		t.Errorf("updated return = %+v (seq was %d)", got, acme[0].Seq)
	}
	if rs := feed("acme", 0, 100); len(rs) != 3 || rs[0].ID != "R1" {
		t.Errorf("feed after update = %+v", rs)
	}
	if _, err := f.s.Return(f.ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Return(nope) = %v", err)
	}
}

func testDueExpectations(f *fx) {
	t := f.t
	f.commit(&store.Change{Expectations: []store.Expectation{
		{ID: "E1", Lot: "L1", Kind: "arl", DueAt: T0.Add(time.Hour)},
		{ID: "E2", Lot: "L2", Kind: "arl", DueAt: T0.Add(2 * time.Hour)},
		{ID: "E3", Lot: "L3", Kind: "arl", DueAt: T0.Add(30 * time.Minute), SatisfiedBy: "R1"},
		{ID: "E4", Lot: "L4", Kind: "rsp", DueAt: T0.Add(10 * time.Minute), Fired: true},
		{ID: "E5", Lot: "L5", Kind: "rsp", DueAt: T0.Add(3 * time.Hour)},
	}})
	due := func(at time.Time, limit int) string {
		es, err := f.s.DueExpectations(f.ctx, at, limit)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range es {
			ids = append(ids, e.ID)
		}
		sort.Strings(ids)
		return fmt.Sprint(ids)
	}
	if got := due(T0, 100); got != "[]" {
		t.Errorf("due at T0 = %s", got)
	}
	if got := due(T0.Add(2*time.Hour), 100); got != "[E1 E2]" { // due exactly at t is due
		t.Errorf("due at T0+2h = %s, want [E1 E2]", got)
	}
	if got := due(T0.Add(2*time.Hour), 1); got != "[E1]" && got != "[E2]" {
		t.Errorf("limit 1 = %s", got)
	}
	f.commit(&store.Change{Expectations: []store.Expectation{
		{ID: "E1", Lot: "L1", Kind: "arl", DueAt: T0.Add(time.Hour), Fired: true},
	}})
	if got := due(T0.Add(24*time.Hour), 100); got != "[E2 E5]" {
		t.Errorf("due after firing E1 = %s, want [E2 E5]", got)
	}
}

func testJobsEnqueue(f *fx) {
	t := f.t
	j := store.Job{Kind: "validate", Subject: "file:F1", Key: "v1"}
	f.commit(&store.Change{Enqueue: []store.Job{j, j}})
	f.commit(&store.Change{Enqueue: []store.Job{j, {Kind: "validate", Subject: "file:F1", Key: "v2"},
		{Kind: "route", Subject: "file:F1", Key: "v1"}}})
	same(t, "pending", f.pending(), map[string]int{"validate": 2, "route": 1})
	ls, err := f.s.Lease(f.ctx, "w1", []string{"validate"}, 10, time.Minute)
	if err != nil || len(ls) != 2 {
		t.Fatalf("Lease = %v, %v", ls, err)
	}
	f.commit(&store.Change{Done: ls})
	same(t, "pending after done", f.pending(), map[string]int{"route": 1})
	// A finished job is not enqueued again: a retried step never doubles work.
	f.commit(&store.Change{Enqueue: []store.Job{j}})
	same(t, "pending after re-enqueue", f.pending(), map[string]int{"route": 1})
	if ls, _ := f.s.Lease(f.ctx, "w1", []string{"validate"}, 10, time.Minute); len(ls) != 0 {
		t.Errorf("finished job leased again: %+v", ls)
	}
	wantErr(t, "job without kind", f.s.Commit(f.ctx, &store.Change{Enqueue: []store.Job{{Subject: "x"}}}), store.ErrInvalid)
}

func testJobsLease(f *fx) {
	t := f.t
	f.commit(&store.Change{Enqueue: []store.Job{
		{Kind: "validate", Subject: "file:F1"},
		{Kind: "route", Subject: "lot:L1", RunAt: T0.Add(time.Hour)},
	}})
	ls, err := f.s.Lease(f.ctx, "w1", []string{"validate", "route"}, 10, time.Minute)
	if err != nil || len(ls) != 1 {
		t.Fatalf("Lease = %+v, %v; want the one due job", ls, err)
	}
	a := ls[0]
	if a.Kind != "validate" || a.Subject != "file:F1" || a.Owner != "w1" || a.Token == "" || a.ID == "" ||
		!a.Until.Equal(T0.Add(time.Minute)) || a.Attempts != 0 {
		t.Fatalf("lease = %+v", a)
	}
	if ls, _ := f.s.Lease(f.ctx, "w2", nil, 10, time.Minute); len(ls) != 0 {
		t.Fatalf("held or future job leased: %+v", ls)
	}
	a, err = f.s.Extend(f.ctx, a, 5*time.Minute)
	if err != nil || !a.Until.Equal(T0.Add(5*time.Minute)) {
		t.Fatalf("Extend = %+v, %v", a, err)
	}
	f.clock.Advance(2 * time.Minute) // past the first ttl, within the extension
	if ls, _ := f.s.Lease(f.ctx, "w2", []string{"validate"}, 10, time.Minute); len(ls) != 0 {
		t.Fatalf("extended lease taken: %+v", ls)
	}
	f.clock.Advance(4 * time.Minute) // expired: another worker takes it
	ls, err = f.s.Lease(f.ctx, "w2", []string{"validate"}, 10, time.Minute)
	if err != nil || len(ls) != 1 || ls[0].ID != a.ID || ls[0].Token == a.Token || ls[0].Owner != "w2" {
		t.Fatalf("expired lease not retaken: %+v, %v", ls, err)
	}
	b := ls[0]
	// The first worker lost it: Extend, Done and Retry fail, and so does
	// everything committed with them.
	_, err = f.s.Extend(f.ctx, a, time.Minute)
	wantErr(t, "Extend of a lost lease", err, store.ErrLeaseLost)
	err = f.s.Commit(f.ctx, &store.Change{Done: []store.Lease{a}, Lots: []store.Lot{newLot("L9", "F1", "acme")}})
	wantErr(t, "Done of a lost lease", err, store.ErrLeaseLost)
	if _, err := f.s.Lot(f.ctx, "L9"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("change with a lost lease applied: %v", err)
	}
	wantErr(t, "Retry of a lost lease",
		f.s.Commit(f.ctx, &store.Change{Retry: []store.Retry{{Lease: a, At: T0}}}), store.ErrLeaseLost)

	// Retry frees the job until At, counts the attempt and keeps the error.
	f.commit(&store.Change{Retry: []store.Retry{{Lease: b, At: f.clock.Now().Add(10 * time.Minute), Err: "referential down"}}})
	same(t, "pending after retry", f.pending(), map[string]int{"validate": 1, "route": 1})
	if ls, _ := f.s.Lease(f.ctx, "w3", []string{"validate"}, 10, time.Minute); len(ls) != 0 {
		t.Fatalf("retried job leased before its time: %+v", ls)
	}
	wantErr(t, "Done after Retry", f.s.Commit(f.ctx, &store.Change{Done: []store.Lease{b}}), store.ErrLeaseLost)
	f.clock.Advance(10 * time.Minute)
	ls, err = f.s.Lease(f.ctx, "w3", []string{"validate"}, 10, time.Minute)
	if err != nil || len(ls) != 1 || ls[0].Attempts != 1 || ls[0].LastErr != "referential down" {
		t.Fatalf("lease after retry = %+v, %v", ls, err)
	}
	c := ls[0]
	f.commit(&store.Change{Done: []store.Lease{c}})
	wantErr(t, "second Done", f.s.Commit(f.ctx, &store.Change{Done: []store.Lease{c}}), store.ErrLeaseLost)
	same(t, "pending after done", f.pending(), map[string]int{"route": 1})

	// A lease that expired is lost even if nobody took the job since.
	f.clock.Advance(time.Hour)
	ls, err = f.s.Lease(f.ctx, "w4", []string{"route"}, 10, time.Minute)
	if err != nil || len(ls) != 1 {
		t.Fatalf("route lease = %+v, %v", ls, err)
	}
	f.clock.Advance(time.Minute) // Until is not "still held"
	wantErr(t, "Done of an expired lease", f.s.Commit(f.ctx, &store.Change{Done: ls}), store.ErrLeaseLost)
	_, err = f.s.Extend(f.ctx, ls[0], time.Minute)
	wantErr(t, "Extend of an expired lease", err, store.ErrLeaseLost)
}

func testJobsBatch(f *fx) {
	t := f.t
	var jobs []store.Job
	for i := 0; i < 5; i++ {
		jobs = append(jobs, store.Job{Kind: "deliver", Subject: fmt.Sprint("lot:L", i)})
	}
	jobs = append(jobs, store.Job{Kind: "decode", Subject: "return:R1"})
	f.commit(&store.Change{Enqueue: jobs})
	first, err := f.s.Lease(f.ctx, "w1", []string{"deliver"}, 2, time.Minute)
	if err != nil || len(first) != 2 {
		t.Fatalf("Lease n=2: %d, %v", len(first), err)
	}
	rest, err := f.s.Lease(f.ctx, "w2", []string{"deliver"}, 10, time.Minute)
	if err != nil || len(rest) != 3 {
		t.Fatalf("Lease rest: %d, %v", len(rest), err)
	}
	seen := map[string]bool{}
	for _, l := range append(first, rest...) {
		if seen[l.ID] || l.Kind != "deliver" {
			t.Fatalf("job leased twice or of the wrong kind: %+v", l)
		}
		seen[l.ID] = true
	}
	if ls, _ := f.s.Lease(f.ctx, "w3", []string{"deliver"}, 0, time.Minute); len(ls) != 0 {
		t.Errorf("Lease n=0 returned %d", len(ls))
	}
	ls, _ := f.s.Lease(f.ctx, "w3", nil, 10, time.Minute)
	if len(ls) != 1 || ls[0].Kind != "decode" {
		t.Errorf("Lease of any kind = %+v", ls)
	}
	// One Done among several: all or nothing.
	lost := first[0]
	lost.Token = "not-the-token"
	err = f.s.Commit(f.ctx, &store.Change{Done: []store.Lease{first[1], lost}})
	wantErr(t, "Done with a wrong token", err, store.ErrLeaseLost)
	if p := f.pending(); p["deliver"] != 5 {
		t.Errorf("partial Done applied: %v", p)
	}
	f.commit(&store.Change{Done: append(first, rest...)})
	same(t, "pending", f.pending(), map[string]int{"decode": 1})
}

func testConcurrent(f *fx) {
	t := f.t
	const workers, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*3)
	winners := make(chan string, workers)
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			// Everyone races for the same content: exactly one creates it.
			shared := newFile(fmt.Sprintf("S%02d", g), "acme", "shared content", "")
			got, created, err := f.s.CreateFile(f.ctx, shared, nil)
			if err != nil {
				errs <- err
			} else if created {
				winners <- got.ID
			}
			for i := 0; i < each; i++ {
				id := fmt.Sprintf("F%02d-%03d", g, i)
				_, created, err := f.s.CreateFile(f.ctx, newFile(id, "acme", id, ""), &store.Change{
					Enqueue: []store.Job{{Kind: "validate", Subject: "file:" + id}},
				})
				if err != nil || !created {
					errs <- fmt.Errorf("CreateFile %s: created=%v %w", id, created, err)
					continue
				}
				// A failing request shares its batch with good ones; it
				// writes rows before it fails, and none may stay.
				err = f.s.Commit(f.ctx, &store.Change{
					Lots:    []store.Lot{newLot("X"+id, id, "bad")},
					Enqueue: []store.Job{{Kind: "bad", Subject: "file:" + id}},
					Transitions: []store.Transition{
						{Kind: lifecycle.File, ID: id, From: lifecycle.FileReceived, To: lifecycle.FileSettled},
					},
				})
				if !errors.Is(err, lifecycle.ErrIllegal) {
					errs <- fmt.Errorf("illegal commit %s: %v", id, err)
				}
				err = f.s.Commit(f.ctx, &store.Change{Transitions: []store.Transition{
					{Kind: lifecycle.File, ID: id, From: lifecycle.FileReceived, To: lifecycle.FileAccepted},
				}})
				if err != nil {
					errs <- fmt.Errorf("commit %s: %w", id, err)
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	close(winners)
	for err := range errs {
		t.Error(err)
	}
	if n := len(winners); n != 1 {
		t.Errorf("%d goroutines created the shared file, want 1", n)
	}
	var all []store.File
	after := ""
	for {
		fs, err := f.s.Files(f.ctx, "acme", after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) == 0 {
			break
		}
		all = append(all, fs...)
		after = fs[len(fs)-1].ID
	}
	if len(all) != workers*each+1 {
		t.Errorf("files = %d, want %d", len(all), workers*each+1)
	}
	for _, file := range all {
		if file.ID[0] == 'F' && file.State != lifecycle.FileAccepted {
			t.Errorf("%s is %s", file.ID, file.State)
		}
	}
	if ls, err := f.s.Lots(f.ctx, store.LotQuery{Tenant: "bad"}); err != nil || len(ls) != 0 {
		t.Errorf("failed requests left %d lots (%v)", len(ls), err)
	}
	if p := f.pending(); p["validate"] != workers*each || p["bad"] != 0 {
		t.Errorf("pending = %v", p)
	}
	checked, broken, err := store.VerifyChain(f.ctx, f.s, nil)
	if err != nil || broken != 0 || checked != int64(2*workers*each+1) {
		t.Errorf("VerifyChain = %d, %d, %v; want %d events", checked, broken, err, 2*workers*each+1)
	}
}

func testContext(f *fx) {
	t := f.t
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	err := f.s.Commit(ctx, &store.Change{Lots: []store.Lot{newLot("L1", "F1", "acme")}})
	wantErr(t, "Commit with a cancelled context", err, context.Canceled)
	_, _, err = f.s.CreateFile(ctx, newFile("F1", "acme", "x", ""), nil)
	wantErr(t, "CreateFile with a cancelled context", err, context.Canceled)
	_, err = f.s.Lease(ctx, "w", nil, 1, time.Minute)
	wantErr(t, "Lease with a cancelled context", err, context.Canceled)
	if _, err := f.s.Lot(f.ctx, "L1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("cancelled Commit applied: %v", err)
	}
	if _, err := f.s.File(f.ctx, "F1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("cancelled CreateFile applied: %v", err)
	}
}

func testClose(f *fx) {
	t := f.t
	f.commit(&store.Change{Lots: []store.Lot{newLot("L1", "F1", "acme")}})
	if err := f.s.Ping(f.ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := f.s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_ = f.s.Close() // a second Close must not panic or hang
	checks := map[string]error{
		"Ping":   f.s.Ping(f.ctx),
		"Commit": f.s.Commit(f.ctx, &store.Change{Lots: []store.Lot{newLot("L2", "F1", "acme")}}),
	}
	_, _, checks["CreateFile"] = f.s.CreateFile(f.ctx, newFile("F1", "acme", "x", ""), nil)
	_, checks["Lot"] = f.s.Lot(f.ctx, "L1")
	_, checks["Lots"] = f.s.Lots(f.ctx, store.LotQuery{})
	_, checks["EventsAfter"] = f.s.EventsAfter(f.ctx, 0, 10)
	_, checks["Lease"] = f.s.Lease(f.ctx, "w", nil, 1, time.Minute)
	_, checks["PendingJobs"] = f.s.PendingJobs(f.ctx)
	_, checks["Tenants"] = f.s.Tenants(f.ctx)
	for name, err := range checks {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}
