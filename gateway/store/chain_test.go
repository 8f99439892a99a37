package store_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// eventLog is a Store that only has events.
type eventLog struct {
	store.Store
	evs []store.Event
}

func (l *eventLog) EventsAfter(_ context.Context, after int64, limit int) ([]store.Event, error) {
	i := sort.Search(len(l.evs), func(i int) bool { return l.evs[i].Seq > after })
	j := min(i+limit, len(l.evs))
	return append([]store.Event(nil), l.evs[i:j]...), nil
}

func chain(n int) *eventLog {
	l := &eventLog{}
	prev := store.GenesisHash
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 5, time.UTC)
	for i := 1; i <= n; i++ {
		e := store.Event{Seq: int64(i), Time: t0.Add(time.Duration(i) * time.Millisecond), Subject: fmt.Sprint("lot:L", i%7),
			Type: "transition", From: lifecycle.LotCreated, To: lifecycle.LotRouted, Actor: "router", Reason: "r",
			Data: []byte(`{"i":1}`), PrevHash: prev}
		e.Hash = store.EventHash(prev, e)
		prev = e.Hash
		l.evs = append(l.evs, e)
	}
	return l
}

func TestVerifyChain(t *testing.T) {
	ctx := context.Background()
	l := chain(2500)
	var calls []int64
	checked, broken, err := store.VerifyChain(ctx, l, func(n int64) { calls = append(calls, n) })
	if err != nil || broken != 0 || checked != 2500 {
		t.Fatalf("intact chain: %d, %d, %v", checked, broken, err)
	}
	if fmt.Sprint(calls) != "[1000 2000 2500]" {
		t.Errorf("progress calls = %v", calls)
	}
	if checked, broken, err := store.VerifyChain(ctx, &eventLog{}, nil); checked != 0 || broken != 0 || err != nil {
		t.Errorf("empty log: %d, %d, %v", checked, broken, err)
	}

	tamper := []struct {
		name   string
		edit   func(l *eventLog)
		broken int64
		reason string
	}{
		{"reason", func(l *eventLog) { l.evs[1499].Reason = "edited" }, 1500, "hash"},
		{"time", func(l *eventLog) { l.evs[9].Time = l.evs[9].Time.Add(time.Nanosecond) }, 10, "hash"},
		{"data", func(l *eventLog) { l.evs[0].Data = []byte(`{"i":2}`) }, 1, "hash"},
		{"to", func(l *eventLog) { l.evs[2].To = lifecycle.LotCancelled }, 3, "hash"},
		{"rehashed", func(l *eventLog) {
			l.evs[41].Actor = "mallory"
			l.evs[41].Hash = store.EventHash(l.evs[41].PrevHash, l.evs[41])
		}, 43, "prev_hash"},
		{"deleted", func(l *eventLog) { l.evs = append(l.evs[:99], l.evs[100:]...) }, 101, "prev_hash"},
		{"reordered", func(l *eventLog) { l.evs[5], l.evs[6] = l.evs[6], l.evs[5] }, 7, "prev_hash"},
		{"seq", func(l *eventLog) { l.evs[8].Seq = 8 }, 8, "seq"},
		{"genesis", func(l *eventLog) { l.evs[0].PrevHash = "" }, 1, "prev_hash"},
	}
	for _, tc := range tamper {
		l := chain(2500)
		tc.edit(l)
		checked, broken, err := store.VerifyChain(ctx, l, nil)
		var be *store.BrokenChainError
		if !errors.Is(err, store.ErrBrokenChain) || !errors.As(err, &be) {
			t.Errorf("%s: err = %v, want a broken chain", tc.name, err)
			continue
		}
		if broken != tc.broken || be.Seq != tc.broken || be.Reason != tc.reason {
			t.Errorf("%s: broken at %d (%s), want %d (%s)", tc.name, broken, be.Reason, tc.broken, tc.reason)
		}
		if tc.name != "reordered" && tc.name != "deleted" && tc.name != "seq" && checked != tc.broken-1 {
			t.Errorf("%s: checked = %d, want %d", tc.name, checked, tc.broken-1)
		}
	}
}

func TestCanonicalEventUnambiguous(t *testing.T) {
	a := store.Event{Seq: 1, Subject: "lot:1", Type: "x", Actor: "ab", Reason: "c"}
	b := store.Event{Seq: 1, Subject: "lot:1", Type: "x", Actor: "a", Reason: "bc"}
	if string(store.CanonicalEvent(a)) == string(store.CanonicalEvent(b)) {
		t.Fatal("field boundaries are ambiguous")
	}
	// Time is hashed in UTC: the same instant in another zone hashes alike.
	paris := time.FixedZone("CET", 3600)
	c := store.Event{Seq: 2, Time: time.Date(2026, 3, 2, 10, 0, 0, 1, paris)}
	d := store.Event{Seq: 2, Time: time.Date(2026, 3, 2, 9, 0, 0, 1, time.UTC)}
	if store.EventHash(store.GenesisHash, c) != store.EventHash(store.GenesisHash, d) {
		t.Fatal("time zone changes the hash")
	}
	want := "1:2,30:2026-03-02T09:00:00.000000001Z,0:,0:,0:,0:,0:,0:,0:,"
	if got := string(store.CanonicalEvent(d)); got != want {
		t.Fatalf("canonical encoding changed:\n got  %s\n want %s", got, want)
	}
}
