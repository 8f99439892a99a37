package smtp

import "time"

// failures tracks failed logins per source address. The delay doubles
// with every failure, from base up to max; an address that stays quiet for
// forget is forgotten. At most maxAddrs addresses are kept: above that the
// oldest entries are dropped.
type failures struct {
	base, max, forget time.Duration
	maxAddrs          int
	m                 map[string]failure
}

type failure struct {
	count int
	last  time.Time
}

func (f *failures) delay(addr string, now time.Time) time.Duration {
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

func (f *failures) fail(addr string, now time.Time) int {
	if len(f.m) >= f.maxAddrs {
		f.evict(now)
	}
	e := f.m[addr]
	e.count++
	e.last = now
	f.m[addr] = e
	return e.count
}

func (f *failures) ok(addr string) { delete(f.m, addr) }

// evict drops forgotten entries, then the oldest half if still full.
func (f *failures) evict(now time.Time) {
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
