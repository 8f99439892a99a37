// Package penalty slows down repeated failed logins per source address:
// the delay doubles with every failure up to a bound, and addresses are
// forgotten after a quiet period, in a table of bounded size.
package penalty

import "time"

// New returns a table: delays from base doubling up to max, an address
// forgotten after forget, at most maxAddrs addresses kept.
func New(base, max, forget time.Duration, maxAddrs int) *Table {
	return &Table{base: base, max: max, forget: forget, maxAddrs: maxAddrs, m: make(map[string]failure)}
}

// Table tracks failed logins per source address, for every intake channel
// that authenticates (SFTP keys, SMTP AUTH). The delay doubles
// with every failure, from base up to max; an address that stays quiet for
// forget is forgotten. At most maxAddrs addresses are kept: above that the
// oldest entries are dropped. A Table is not safe for concurrent use: the
// server holds its own lock around it.
type Table struct {
	base, max, forget time.Duration
	maxAddrs          int
	m                 map[string]failure
}

type failure struct {
	count int
	last  time.Time
}

// Delay is how long a new login from addr waits before it is examined.
func (f *Table) Delay(addr string, now time.Time) time.Duration {
	e, ok := f.m[addr]
	if !ok || e.count == 0 {
		return 0
	}
	if now.Sub(e.last) >= f.forget {
		delete(f.m, addr)
		return 0
	}
	d := f.base
	for i := 1; i < e.count && d < f.max; i++ {
		d *= 2
	}
	return min(d, f.max)
}

// Fail records a failed login and returns the address's failure count.
func (f *Table) Fail(addr string, now time.Time) int {
	if len(f.m) >= f.maxAddrs {
		f.evict(now)
	}
	e := f.m[addr]
	e.count++
	e.last = now
	f.m[addr] = e
	return e.count
}

// OK forgets an address after a successful login.
func (f *Table) OK(addr string) { delete(f.m, addr) }

// evict drops forgotten entries, then the oldest half if still full.
func (f *Table) evict(now time.Time) {
	var oldest time.Time
	for a, e := range f.m {
		if now.Sub(e.last) >= f.forget {
			delete(f.m, a)
		} else if oldest.IsZero() || e.last.Before(oldest) {
			oldest = e.last
		}
	}
	if len(f.m) < f.maxAddrs {
		return
	}
	mid := oldest.Add(now.Sub(oldest) / 2)
	for a, e := range f.m {
		if !e.last.After(mid) {
			delete(f.m, a)
		}
	}
}

// Remaining is how much of addr's current delay is still to run at now:
// for servers that refuse early (HTTP 429 + Retry-After) instead of
// making the client wait.
func (f *Table) Remaining(addr string, now time.Time) time.Duration {
	d := f.Delay(addr, now)
	if d == 0 {
		return 0
	}
	return max(0, d-now.Sub(f.m[addr].last))
}
