package deliver_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octgw/oct/gateway/deliver"
	"github.com/octgw/oct/referentials"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func msg(lot string) deliver.Message {
	return deliver.Message{Lot: lot, Dest: deliver.Destination{ID: "cpam-422", Transport: referentials.SMTP, Address: "01422@422.01.rss.fr"}}
}

func counter(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "oct_deliver_sends_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestBreaker: opens after N consecutive temporary failures, refuses at
// once while open (sender not called), half-opens after the cooldown on
// the injected clock, a failed probe reopens, a good probe closes.
func TestBreaker(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	var calls atomic.Int32
	var fail atomic.Bool
	fail.Store(true)
	snd := deliver.SenderFunc(func(ctx context.Context, m deliver.Message) (deliver.Receipt, error) {
		calls.Add(1)
		if fail.Load() {
			return deliver.Receipt{}, &deliver.Error{Temporary: true, Op: "rcpt", Code: 451, Reply: "451 try later"}
		}
		return deliver.Receipt{MessageID: "<" + m.Lot + ">"}, nil
	})
	reg := prometheus.NewRegistry()
	d, err := deliver.NewDispatcher(deliver.DispatcherConfig{Senders: map[referentials.Transport]deliver.Sender{referentials.SMTP: snd},
		BreakerThreshold: 3, BreakerCooldown: time.Minute, Now: clock.Now, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3 {
		if _, err := d.Send(ctx, msg(fmt.Sprint("L", i))); !errors.Is(err, deliver.ErrTemporary) {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if s := d.Breaker("cpam-422"); s != deliver.BreakerOpen {
		t.Fatalf("state %s", s)
	}
	_, err = d.Send(ctx, msg("L9"))
	if !errors.Is(err, deliver.ErrBreakerOpen) || !errors.Is(err, deliver.ErrTemporary) || calls.Load() != 3 {
		t.Fatalf("open: %v, calls %d", err, calls.Load())
	}
	// Another destination is not affected.
	other := msg("X1")
	other.Dest.ID = "cpam-511"
	fail.Store(false)
	if _, err := d.Send(ctx, other); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	clock.Advance(59 * time.Second)
	if _, err := d.Send(ctx, msg("L9")); !errors.Is(err, deliver.ErrBreakerOpen) {
		t.Fatalf("still open: %v", err)
	}
	clock.Advance(time.Second)
	if s := d.Breaker("cpam-422"); s != deliver.BreakerHalfOpen {
		t.Fatalf("state %s", s)
	}
	before := calls.Load()
	if _, err := d.Send(ctx, msg("L9")); !errors.Is(err, deliver.ErrTemporary) || errors.Is(err, deliver.ErrBreakerOpen) || calls.Load() != before+1 {
		t.Fatalf("probe: %v", err)
	}
	if s := d.Breaker("cpam-422"); s != deliver.BreakerOpen {
		t.Fatalf("failed probe: state %s", s)
	}
	clock.Advance(time.Minute)
	fail.Store(false)
	if _, err := d.Send(ctx, msg("L9")); err != nil {
		t.Fatal(err)
	}
	if s := d.Breaker("cpam-422"); s != deliver.BreakerClosed {
		t.Fatalf("good probe: state %s", s)
	}
	if v := counter(t, reg, deliver.OutcomeBreakerOpen); v != 2 {
		t.Fatalf("breaker_open count %v", v)
	}
	if v := counter(t, reg, deliver.OutcomeTemporary); v != 4 {
		t.Fatalf("temporary count %v", v)
	}
}

// TestHalfOpenSingleProbe: while the probe is in progress, other sends to
// the destination are refused.
func TestHalfOpenSingleProbe(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	entered, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	snd := deliver.SenderFunc(func(ctx context.Context, m deliver.Message) (deliver.Receipt, error) {
		if !first.Swap(true) {
			return deliver.Receipt{}, deliver.Temporary("dial", errors.New("refused"))
		}
		entered <- struct{}{}
		<-release
		return deliver.Receipt{}, nil
	})
	d, _ := deliver.NewDispatcher(deliver.DispatcherConfig{Senders: map[referentials.Transport]deliver.Sender{referentials.SMTP: snd},
		BreakerThreshold: 1, Now: clock.Now})
	if _, err := d.Send(context.Background(), msg("A")); !errors.Is(err, deliver.ErrTemporary) {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	done := make(chan error, 1)
	go func() { _, err := d.Send(context.Background(), msg("B")); done <- err }()
	<-entered
	if _, err := d.Send(context.Background(), msg("C")); !errors.Is(err, deliver.ErrBreakerOpen) {
		t.Fatalf("second during probe: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDuplicateGuard: a concurrent send of the same lot is refused
// (ErrInFlight, temporary); a later send without Resend gets the earlier
// receipt without sending; Resend sends again.
func TestDuplicateGuard(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	snd := deliver.SenderFunc(func(ctx context.Context, m deliver.Message) (deliver.Receipt, error) {
		n := calls.Add(1)
		if n == 1 {
			entered <- struct{}{}
			<-release
		}
		return deliver.Receipt{MessageID: fmt.Sprint("<m", n, ">")}, nil
	})
	d, _ := deliver.NewDispatcher(deliver.DispatcherConfig{Senders: map[referentials.Transport]deliver.Sender{referentials.SMTP: snd}})
	done := make(chan deliver.Receipt, 1)
	go func() {
		rc, err := d.Send(context.Background(), msg("L1"))
		if err != nil {
			t.Error(err)
		}
		done <- rc
	}()
	<-entered
	for _, resend := range []bool{false, true} {
		m := msg("L1")
		m.Resend = resend
		if _, err := d.Send(context.Background(), m); !errors.Is(err, deliver.ErrInFlight) || !errors.Is(err, deliver.ErrTemporary) {
			t.Fatalf("concurrent duplicate (resend=%v): %v", resend, err)
		}
	}
	close(release)
	first := <-done
	rc, err := d.Send(context.Background(), msg("L1"))
	if err != nil || !reflect.DeepEqual(rc, first) || calls.Load() != 1 {
		t.Fatalf("repeat: %+v %v calls=%d", rc, err, calls.Load())
	}
	m := msg("L1")
	m.Resend = true
	rc, err = d.Send(context.Background(), m)
	if err != nil || rc.MessageID != "<m2>" || calls.Load() != 2 {
		t.Fatalf("resend: %+v %v", rc, err)
	}
}

// TestConcurrencyBound: with MaxConcurrent sends in progress, another send
// to the destination waits; with an expired context it gives up,
// temporary, without reaching the sender.
func TestConcurrencyBound(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	snd := deliver.SenderFunc(func(ctx context.Context, m deliver.Message) (deliver.Receipt, error) {
		calls.Add(1)
		entered <- struct{}{}
		<-release
		return deliver.Receipt{}, nil
	})
	d, _ := deliver.NewDispatcher(deliver.DispatcherConfig{Senders: map[referentials.Transport]deliver.Sender{referentials.SMTP: snd}, MaxConcurrent: 2})
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := d.Send(context.Background(), msg(fmt.Sprint("L", i))); err != nil {
				t.Error(err)
			}
		}()
	}
	<-entered
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Send(ctx, msg("L3")); !errors.Is(err, deliver.ErrTemporary) || calls.Load() != 2 {
		t.Fatalf("third: %v calls=%d", err, calls.Load())
	}
	close(release)
	wg.Wait()
}

func TestDispatcherConfigErrors(t *testing.T) {
	if _, err := deliver.NewDispatcher(deliver.DispatcherConfig{}); !errors.Is(err, deliver.ErrConfig) {
		t.Fatal(err)
	}
	d, _ := deliver.NewDispatcher(deliver.DispatcherConfig{Senders: map[referentials.Transport]deliver.Sender{
		referentials.SMTP: deliver.SenderFunc(func(context.Context, deliver.Message) (deliver.Receipt, error) {
			return deliver.Receipt{}, errors.New("unclassified")
		})}})
	m := msg("L1")
	m.Dest.Transport = referentials.SFTP
	if _, err := d.Send(context.Background(), m); !errors.Is(err, deliver.ErrPermanent) || !errors.Is(err, deliver.ErrConfig) {
		t.Fatal(err)
	}
	if _, err := d.Send(context.Background(), msg("L2")); !errors.Is(err, deliver.ErrPermanent) {
		t.Fatalf("unclassified error: %v", err)
	}
}

func TestClassify(t *testing.T) {
	if err := deliver.Classify("x", context.DeadlineExceeded); !errors.Is(err, deliver.ErrTemporary) {
		t.Fatal(err)
	}
	e := &deliver.Error{Op: "data", Code: 554, Reply: "554 5.6.0 refused"}
	if !errors.Is(e, deliver.ErrPermanent) || errors.Is(e, deliver.ErrTemporary) || deliver.Classify("y", e) != error(e) {
		t.Fatal("class")
	}
}
