package penalty

import (
	"testing"
	"time"
)

func TestDelayDoublesIsBoundedAndForgotten(t *testing.T) {
	f := New(time.Second, 8*time.Second, time.Hour, 2)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if d := f.Delay("a", now); d != 0 {
		t.Fatalf("first login delayed %v", d)
	}
	f.Fail("a", now)
	f.Fail("a", now)
	if d := f.Delay("a", now); d != 2*time.Second {
		t.Fatalf("after two failures: %v", d)
	}
	for range 10 {
		f.Fail("a", now)
	}
	if got := f.Delay("a", now); got != 8*time.Second {
		t.Fatalf("bounded delay = %v", got)
	}
	if got := f.Delay("a", now.Add(time.Hour)); got != 0 {
		t.Fatalf("delay after an hour = %v", got)
	}
	f.Fail("b", now)
	f.Fail("c", now.Add(time.Minute))
	f.Fail("d", now.Add(2*time.Minute))
	if len(f.m) > 2 {
		t.Fatalf("failure table not bounded: %d", len(f.m))
	}
	f.OK("d")
	if d := f.Delay("d", now.Add(2*time.Minute)); d != 0 {
		t.Fatalf("delay after a good login = %v", d)
	}
}

func TestRemaining(t *testing.T) {
	f := New(time.Second, 8*time.Second, time.Hour, 10)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fail("a", now)
	f.Fail("a", now) // delay 2s
	if r := f.Remaining("a", now.Add(500*time.Millisecond)); r != 1500*time.Millisecond {
		t.Fatalf("remaining %v", r)
	}
	if r := f.Remaining("a", now.Add(3*time.Second)); r != 0 {
		t.Fatalf("after the delay: %v", r)
	}
	if r := f.Remaining("b", now); r != 0 {
		t.Fatalf("unknown address: %v", r)
	}
}
