package redis

import (
	"sort"
	"testing"
	"time"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

func TestNetstrings(t *testing.T) {
	for _, in := range [][]string{nil, {""}, {"a", "", "b,c:d"}, {"\x00\xff\r\n", "12:3,"}} {
		out, err := parseNetstrings(netstrings(in...))
		if err != nil || len(out) != len(in) {
			t.Fatalf("%q: %q, %v", in, out, err)
		}
		for i := range in {
			if in[i] != out[i] {
				t.Errorf("%q: item %d = %q", in, i, out[i])
			}
		}
	}
	for _, bad := range []string{"3:ab,", "x:a,", "2:abc", "-1:,", "1:a"} {
		if _, err := parseNetstrings(bad); err == nil {
			t.Errorf("parseNetstrings(%q) accepted", bad)
		}
	}
}

func TestPadOrder(t *testing.T) {
	times := []time.Time{{}, time.Unix(0, 1), time.Unix(1, 0), storeT0(), storeT0().Add(time.Nanosecond), time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)}
	var ps []string
	for _, tm := range times {
		p := pad(tm)
		if len(p) != padLen {
			t.Fatalf("pad(%v) = %q", tm, p)
		}
		if got := unpad(p); !got.Equal(tm) {
			t.Errorf("unpad(pad(%v)) = %v", tm, got)
		}
		ps = append(ps, p)
	}
	if !sort.StringsAreSorted(ps) {
		t.Errorf("padded times not in order: %q", ps)
	}
}

func storeT0() time.Time { return time.Date(2026, 3, 2, 8, 0, 0, 123456789, time.UTC) }

func TestEventCodec(t *testing.T) {
	e := store.Event{Seq: 42, Time: storeT0(), Subject: "lot:L1", Type: "transition", From: lifecycle.LotCreated,
		To: lifecycle.LotRouted, Actor: "router", Reason: "rule\x003", Data: []byte("\xff{}"), PrevHash: store.GenesisHash}
	e.Hash = store.EventHash(e.PrevHash, e)
	got, err := decodeEvent(encodeEvent(e))
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != store.EventHash(got.PrevHash, got) || got.Seq != 42 || !got.Time.Equal(e.Time) || string(got.Data) != string(e.Data) {
		t.Errorf("decoded = %+v", got)
	}
}
