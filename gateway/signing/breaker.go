package signing

import "time"

// BreakerState is the state of a member's circuit breaker.
type BreakerState string

const (
	BreakerClosed   BreakerState = "closed"    // requests flow
	BreakerOpen     BreakerState = "open"      // no request until the cooldown ends
	BreakerHalfOpen BreakerState = "half_open" // one probe request in flight
)

// breaker counts consecutive failures. After threshold failures it opens
// for cooldown; then one probe request is let through: success closes it,
// failure opens it again. It is not safe for concurrent use (the pool's lock
// guards it).
type breaker struct {
	threshold int
	cooldown  time.Duration

	state    BreakerState
	failures int
	until    time.Time // end of the open period
}

func newBreaker(threshold int, cooldown time.Duration) breaker {
	return breaker{threshold: threshold, cooldown: cooldown, state: BreakerClosed}
}

// ready reports whether a request may be sent now, without changing state.
func (b *breaker) ready(now time.Time) bool {
	switch b.state {
	case BreakerClosed:
		return true
	case BreakerOpen:
		return !now.Before(b.until)
	default: // half-open: the probe is in flight
		return false
	}
}

// begin is called when a request is sent (after ready returned true).
func (b *breaker) begin(now time.Time) {
	if b.state == BreakerOpen && !now.Before(b.until) {
		b.state = BreakerHalfOpen
	}
}

// success records a success; it reports whether the breaker just closed.
func (b *breaker) success() (closed bool) {
	b.failures = 0
	if b.state != BreakerClosed {
		b.state = BreakerClosed
		return true
	}
	return false
}

// failure records a failure; it reports whether the breaker just opened.
func (b *breaker) failure(now time.Time) (opened bool) {
	b.failures++
	if b.state == BreakerHalfOpen || (b.state == BreakerClosed && b.failures >= b.threshold) {
		b.state = BreakerOpen
		b.until = now.Add(b.cooldown)
		return true
	}
	return false
}

// abort is called when a request was sent but ended without telling
// anything about the member (cancelled context, bad request): a half-open
// breaker goes back to open, ready for the next probe.
func (b *breaker) abort() {
	if b.state == BreakerHalfOpen {
		b.state = BreakerOpen
	}
}
