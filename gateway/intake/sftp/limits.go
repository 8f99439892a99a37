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
	MaxUploads     int   // files open for writing at once, all connections
	DiskQuota      int64 // bytes held in the tenant's folders, all of them
}

// DefaultLimits returns the limits used when none are configured.
func DefaultLimits() Limits {
	return Limits{
		MaxFileSize:    64 << 20,
		FilesPerMinute: 60,
		MaxSessions:    4,
		MaxUploads:     16,
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
	if l.MaxUploads <= 0 {
		l.MaxUploads = d.MaxUploads
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
