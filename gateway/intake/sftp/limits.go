package sftp

import (
	"time"
)

// Limits bound what one tenant may do over SFTP. A zero field takes the
// value of DefaultLimits.
type Limits struct {
	MaxFileSize    int64 // bytes in one uploaded file
	FilesPerMinute int   // files taken in (or refused) per rolling minute
	MaxSessions    int   // concurrent SSH connections
	DiskQuota      int64 // bytes held in the tenant's folders, all of them
}

// DefaultLimits returns the limits used when none are configured.
func DefaultLimits() Limits {
	return Limits{
		MaxFileSize:    64 << 20,
		FilesPerMinute: 60,
		MaxSessions:    4,
		DiskQuota:      1 << 30,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = d.MaxFileSize
	}
	if l.FilesPerMinute <= 0 {
		l.FilesPerMinute = d.FilesPerMinute
	}
	if l.MaxSessions <= 0 {
		l.MaxSessions = d.MaxSessions
	}
	if l.DiskQuota <= 0 {
		l.DiskQuota = d.DiskQuota
	}
	return l
}

// window counts events in the last minute; it keeps at most limit times.
type window struct {
	times []time.Time
}

// full reports whether limit events happened in the minute before now.
func (w *window) full(now time.Time, limit int) bool {
	w.prune(now)
	return len(w.times) >= limit
}

func (w *window) add(now time.Time, limit int) {
	w.prune(now)
	w.times = append(w.times, now)
	if len(w.times) > limit {
		w.times = w.times[len(w.times)-limit:]
	}
}

func (w *window) prune(now time.Time) {
	i := 0
	for i < len(w.times) && now.Sub(w.times[i]) >= time.Minute {
		i++
	}
	w.times = w.times[i:]
}

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
