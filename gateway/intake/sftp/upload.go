package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/sys/unix"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/intake/mailbox"
)

// Refusal codes written to errors/<name>.error.json and shown to clients.
const (
	CodeTooLarge    = "too-large"
	CodeEmpty       = "empty"
	CodeQuota       = "quota"
	CodeUnknown     = "unknown-tenant"
	CodeRateLimited = "rate-limited"
	CodeUnavailable = "unavailable"
)

// upload is one file being written into the inbox. pkg/sftp calls Close on
// a clean SSH_FXP_CLOSE, and also when the session ends with the handle
// still open; in the second case it first calls TransferError, which is how
// a lost connection is told from a finished upload.
type upload struct {
	s    *Server
	h    *handlers
	name string
	f    *os.File
	max  int64  // bytes allowed in this file
	over string // refusal code when max is exceeded (too-large or quota)

	mu      sync.Mutex
	closed  bool
	lost    error    // set by TransferError: the session died mid-upload
	refused *refusal // a limit was crossed: never taken in
	werr    error    // a write failed on our side

	end    int64 // end of the furthest write
	hinted int64 // bytes [0, hinted) handed to write-out (writebackEvery)

	// The gateway follows the upload (hash and validation as the bytes
	// arrive, see gateway.Follower) when the intaker can: fl gets bytes
	// [0, next) in order. pkg/sftp runs writes on several workers, so a
	// write may land after a gap; it is kept (copied: p is not ours) until
	// the gap is filled, at most maxPending bytes, else following stops and
	// the take-in reads the file as usual.
	fl      *gateway.Follower // nil: not following (or no longer)
	ds      *directStage      // direct writes (direct.go); nil: page cache
	next    int64
	pending map[int64][]byte
	held    int      // bytes in pending
	spare   [][]byte // pending buffers to reuse
}

// maxPending bounds the out-of-order bytes an upload holds for its
// follower: twice what the pkg/sftp and OpenSSH clients keep in flight
// (64 requests of 32 KiB).
const maxPending = 4 << 20

// writebackEvery: each time an upload has grown by this much, the kernel
// is asked to start writing it to disk (sync_file_range WRITE, no wait), so
// that the sync of the take-in at close finds little left to write. A hint
// only: durability still comes from that sync.
const writebackEvery = 4 << 20

func (s *Server) openUpload(h *handlers, name string, flags sftp.FileOpenFlags) (io.WriterAt, error) {
	t := h.tenant
	lim := s.cfg.Limits(t).withDefaults()
	s.mu.Lock()
	if _, busy := s.writing[t][name]; busy {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: an upload of %s is in progress", sftp.ErrSSHFxFailure, name)
	}
	if n := len(s.writing[t]); n >= lim.MaxUploads {
		s.mu.Unlock()
		s.log.Warn("sftp upload refused: too many open uploads", "tenant", t, "remote", h.remote, "max", lim.MaxUploads)
		return nil, fmt.Errorf("%w: %d files already open for writing, close one first", sftp.ErrSSHFxFailure, n)
	}
	if w := s.rates[t]; w != nil && w.full(s.cfg.Now(), lim.FilesPerMinute) {
		s.mu.Unlock()
		s.log.Warn("sftp upload refused: rate limit", "tenant", t, "remote", h.remote, "per_minute", lim.FilesPerMinute)
		return nil, &refusal{code: CodeRateLimited, msg: fmt.Sprintf("more than %d files per minute, try again later", lim.FilesPerMinute)}
	}
	if s.writing[t] == nil {
		s.writing[t] = make(map[string]*upload)
	}
	s.writing[t][name] = nil
	s.mu.Unlock()

	release := func() { s.releaseName(t, name) }
	usage, err := s.usage(t, h.root)
	if err != nil {
		release()
		return nil, fmt.Errorf("%w: cannot check the quota", sftp.ErrSSHFxFailure)
	}
	room := lim.DiskQuota - usage
	if room <= 0 {
		release()
		s.log.Warn("sftp upload refused: quota", "tenant", t, "remote", h.remote, "quota", lim.DiskQuota)
		return nil, &refusal{code: CodeQuota, msg: "disk quota reached: fetch and remove files from outbox/, returns/, errors/, referentials/"}
	}
	rel := mailbox.Inbox + "/" + name
	if !flags.Trunc {
		if info, err := h.root.Lstat(rel); err == nil && info.Size() > 0 {
			release()
			return nil, fmt.Errorf("%w: resuming an upload is not supported, upload the whole file", sftp.ErrSSHFxOpUnsupported)
		}
	}
	f, err := h.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|noFollow, 0o600)
	if err != nil {
		release()
		return nil, mapErr(err)
	}
	u := &upload{s: s, h: h, name: name, f: f, max: lim.MaxFileSize, over: CodeTooLarge}
	s.dropParked(t, name) // bytes followed under this name are being replaced
	if fi, ok := s.cfg.Intaker.(FollowIntaker); ok && s.takeFollowSlot() {
		// A temporary name is followed too, and parked at close until its
		// rename; flows are told by the final name.
		u.fl = fi.Follow(gateway.Source{Channel: "sftp", Name: finalName(name), Remote: h.remote})
		if s.cfg.DirectWrites && !s.noDirect.Load() {
			u.ds = s.getStage()
			s.mu.Lock()
			s.writing[t][name] = u // stat asks it the size (liveInfo)
			s.mu.Unlock()
		}
	}
	if room < u.max {
		u.max, u.over = room, CodeQuota
	}
	return u, nil
}

func (s *Server) releaseName(tenant, name string) {
	s.mu.Lock()
	delete(s.writing[tenant], name)
	if len(s.writing[tenant]) == 0 {
		delete(s.writing, tenant)
	}
	s.mu.Unlock()
}

// holdNames marks names as busy (as an upload does) unless one of them
// already is; false: nothing held.
func (s *Server) holdNames(tenant string, names ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		if _, busy := s.writing[tenant][n]; busy {
			return false
		}
	}
	if s.writing[tenant] == nil {
		s.writing[tenant] = make(map[string]*upload)
	}
	for _, n := range names {
		s.writing[tenant][n] = nil
	}
	return true
}

func (s *Server) isWriting(tenant, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, busy := s.writing[tenant][name]
	return busy
}

// countFile records one file toward the tenant's files-per-minute limit.
func (s *Server) countFile(tenant string) {
	lim := s.cfg.Limits(tenant).withDefaults()
	s.mu.Lock()
	w := s.rates[tenant]
	if w == nil {
		w = &window{}
		s.rates[tenant] = w
	}
	w.add(s.cfg.Now(), lim.FilesPerMinute)
	s.mu.Unlock()
}

// WriteAt implements io.WriterAt.
func (u *upload) WriteAt(p []byte, off int64) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case u.closed:
		return 0, os.ErrClosed
	case u.refused != nil:
		return 0, u.refused
	case u.werr != nil:
		return 0, u.werr
	case off < 0 || off+int64(len(p)) > u.max:
		if u.over == CodeQuota {
			u.refused = &refusal{code: CodeQuota, msg: "disk quota reached during the upload"}
		} else {
			u.refused = &refusal{code: CodeTooLarge, msg: fmt.Sprintf("file larger than %d bytes", u.max)}
		}
		return 0, u.refused
	}
	if u.ds != nil {
		// Direct writes: the bytes reach the file in order, staged (or
		// held until the gap before them is filled).
		kept := u.follow(p, off)
		if u.werr != nil {
			return 0, u.werr
		}
		if kept {
			u.end = max(u.end, off+int64(len(p)))
			return len(p), nil
		}
		// Following stopped (and with it the direct writes, everything
		// staged and held being in the file now): p goes as usual.
	}
	n, err := u.f.WriteAt(p, off)
	if err != nil {
		u.failWrite(err)
		return n, u.werr
	}
	u.end = max(u.end, off+int64(n))
	if u.fl != nil {
		u.follow(p, off)
	}
	if u.end-u.hinted >= writebackEvery {
		// Best effort (an error means the final sync does it all).
		_ = unix.SyncFileRange(int(u.f.Fd()), u.hinted, u.end-u.hinted, unix.SYNC_FILE_RANGE_WRITE)
		u.hinted = u.end
	}
	return n, nil
}

// follow gives the follower the bytes written at off, in order: at once
// when they continue what it has, else held until the gap is filled. Bytes
// written twice (over what it has or what is held), or too much held, stop
// the following: false. Held chunks never overlap one another nor what
// the follower has, so that written in any order (undirect) they make the
// file the client wrote.
func (u *upload) follow(p []byte, off int64) bool {
	switch {
	case u.overlapsHeld(off, len(p)):
		u.unfollow()
		return false
	case off == u.next:
		u.inOrder(p)
		for u.fl != nil {
			b, ok := u.pending[u.next]
			if !ok {
				break
			}
			delete(u.pending, u.next)
			u.held -= len(b)
			u.inOrder(b)
			u.spare = append(u.spare, b[:0])
		}
		return true
	case off > u.next && u.held+len(p) <= maxPending:
		var b []byte
		if k := len(u.spare); k > 0 && cap(u.spare[k-1]) >= len(p) {
			b, u.spare = u.spare[k-1], u.spare[:k-1]
		}
		b = append(b, p...)
		if u.pending == nil {
			u.pending = make(map[int64][]byte)
		}
		u.pending[off] = b
		u.held += len(b)
		return true
	default:
		u.unfollow()
		return false
	}
}

// overlapsHeld reports whether [off, off+n) overlaps a held chunk.
func (u *upload) overlapsHeld(off int64, n int) bool {
	for at, b := range u.pending {
		if at < off+int64(n) && off < at+int64(len(b)) {
			return true
		}
	}
	return false
}

// inOrder hands the next bytes of the file to the follower (and, with
// direct writes, to the file).
func (u *upload) inOrder(b []byte) {
	if u.ds != nil {
		u.stage(b)
	}
	_, _ = u.fl.Write(b)
	u.next += int64(len(b))
}

// unfollow stops the following (its goroutine ends); the take-in reads the
// file instead.
func (u *upload) unfollow() {
	u.undirect() // the staged and held bytes to the file first
	if u.fl != nil {
		u.fl.Abort()
		u.fl = nil
		u.s.releaseFollowSlot()
	}
	u.pending, u.held, u.spare = nil, 0, nil
}

// parkedFollow is the follower of an upload closed under a temporary name.
type parkedFollow struct {
	fl    *gateway.Follower
	owner *handlers // the session: its end drops what it parked
}

// park keeps fl, complete, until name is renamed (or removed, rewritten,
// or its session ends). It keeps its follow slot meanwhile.
func (s *Server) park(h *handlers, name string, fl *gateway.Follower) {
	s.dropParked(h.tenant, name)
	s.mu.Lock()
	if s.parked[h.tenant] == nil {
		s.parked[h.tenant] = make(map[string]parkedFollow)
	}
	s.parked[h.tenant][name] = parkedFollow{fl: fl, owner: h}
	s.mu.Unlock()
}

// unpark returns the follower parked under name, nil if none; the caller
// ends it and gives its slot back.
func (s *Server) unpark(tenant, name string) *gateway.Follower {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.parked[tenant][name]
	if !ok {
		return nil
	}
	delete(s.parked[tenant], name)
	if len(s.parked[tenant]) == 0 {
		delete(s.parked, tenant)
	}
	return p.fl
}

// dropParked ends the follower parked under name, if any.
func (s *Server) dropParked(tenant, name string) {
	if fl := s.unpark(tenant, name); fl != nil {
		fl.Abort()
		s.releaseFollowSlot()
	}
}

// dropParkedOf ends every follower a session parked.
func (s *Server) dropParkedOf(h *handlers) {
	var drop []*gateway.Follower
	s.mu.Lock()
	for name, p := range s.parked[h.tenant] {
		if p.owner == h {
			drop = append(drop, p.fl)
			delete(s.parked[h.tenant], name)
		}
	}
	if len(s.parked[h.tenant]) == 0 {
		delete(s.parked, h.tenant)
	}
	s.mu.Unlock()
	for _, fl := range drop {
		fl.Abort()
		s.releaseFollowSlot()
	}
}

// finalName is name without its temporary suffix (isTempName).
func finalName(name string) string {
	n := strings.ToLower(name)
	for _, suf := range tempSuffixes {
		if strings.HasSuffix(n, suf) {
			return name[:len(name)-len(suf)]
		}
	}
	return name
}

// takeFollowSlot reserves one of the MaxFollowed slots; false: all taken,
// the upload is not followed.
func (s *Server) takeFollowSlot() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.followed >= s.cfg.MaxFollowed {
		return false
	}
	s.followed++
	return true
}

func (s *Server) releaseFollowSlot() {
	s.mu.Lock()
	s.followed--
	s.mu.Unlock()
}

// TransferError implements sftp.TransferError: the session ended while the
// file was open.
func (u *upload) TransferError(err error) {
	u.mu.Lock()
	if err == nil {
		err = errors.New("session ended")
	}
	u.lost = err
	u.mu.Unlock()
}

// Close implements io.Closer. A clean close takes the file in; the error
// returned goes back to the client as the status of its close request.
func (u *upload) Close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	if u.fl != nil && (u.lost != nil || u.refused != nil || u.werr != nil || len(u.pending) > 0 || u.next != u.end) {
		u.unfollow() // a gap never filled: the file is read at take-in
	}
	u.undirect() // the tail of the file, under a block
	lost, refused, werr := u.lost, u.refused, u.werr
	fl := u.fl
	u.fl = nil // the close below ends it
	u.mu.Unlock()
	s, h := u.s, u.h
	if fl != nil && !isTempName(u.name) {
		defer s.releaseFollowSlot() // after the take-in that ends fl
	}
	defer s.releaseName(h.tenant, u.name)
	rel := mailbox.Inbox + "/" + u.name
	ferr := u.f.Close()
	switch {
	case lost != nil:
		_ = h.root.Remove(rel)
		s.log.Warn("sftp upload cut: partial file discarded", "tenant", h.tenant, "remote", h.remote, "err", lost)
		return nil
	case refused != nil:
		_ = h.root.Remove(rel)
		s.countFile(h.tenant)
		s.log.Warn("sftp upload refused", "tenant", h.tenant, "remote", h.remote, "code", refused.code)
		if err := s.cfg.Folders.WriteRefusal(context.WithoutCancel(s.ctx), h.root, u.name, refused.code, refused.msg, nil); err != nil {
			s.log.Error("sftp: cannot write refusal", "tenant", h.tenant, "err", err)
		}
		return refused
	case werr != nil || ferr != nil:
		if fl != nil {
			fl.Abort()
			if isTempName(u.name) {
				s.releaseFollowSlot()
			}
		}
		_ = h.root.Remove(rel)
		return fmt.Errorf("%w: upload failed on the server, not taken in", sftp.ErrSSHFxFailure)
	case isTempName(u.name):
		if fl != nil {
			s.park(h, u.name, fl) // keeps its follow slot
		}
		return nil
	}
	return s.takeIn(h, u.name, fl)
}

// takeIn passes inbox/<name> to the gateway. On success the acknowledgement
// is written to outbox/ (after Intake returned, so the file is durable) and
// the file leaves the inbox. A refusal moves it to errors/ with the reason;
// a temporary failure removes it and tells the client to upload again.
func (s *Server) takeIn(h *handlers, name string, fl *gateway.Follower) error {
	rel := mailbox.Inbox + "/" + name
	defer func() {
		_ = h.root.Remove(rel)
		_ = mailbox.SyncDir(h.root, mailbox.Inbox)
	}()
	f, err := h.root.OpenFile(rel, os.O_RDONLY|noFollow, 0)
	if err != nil {
		fl.Abort()
		return mapErr(err)
	}
	defer f.Close()
	s.countFile(h.tenant)
	src := gateway.Source{Channel: "sftp", Name: name, Remote: h.remote}
	var ack gateway.Ack
	if fi, ok := s.cfg.Intaker.(FollowIntaker); ok && fl != nil {
		ack, err = fi.IntakeFollowed(s.ctx, h.tenant, src, f, fl)
	} else {
		ack, err = s.cfg.Intaker.Intake(s.ctx, h.tenant, src, f)
	}
	local := context.WithoutCancel(s.ctx) // local writes finish even during shutdown
	if err != nil {
		code, permanent := classify(err)
		if !permanent {
			s.log.Warn("sftp file not taken in", "tenant", h.tenant, "remote", h.remote, "code", code, "err", err)
			return fmt.Errorf("%w: not taken in (%s), upload it again later", sftp.ErrSSHFxFailure, code)
		}
		s.log.Warn("sftp file refused", "tenant", h.tenant, "remote", h.remote, "code", code)
		ref := &refusal{code: code, msg: refusalMessage(code)}
		var data io.Reader
		if _, serr := f.Seek(0, io.SeekStart); serr == nil {
			data = f
		}
		if werr := s.cfg.Folders.WriteRefusal(local, h.root, name, ref.code, ref.msg, data); werr != nil {
			s.log.Error("sftp: cannot write refusal", "tenant", h.tenant, "err", werr)
		}
		return ref
	}
	if _, err := mailbox.WriteAck(local, h.root, name, ack); err != nil {
		// The file is durable in the gateway; its acknowledgement is also
		// available from the API.
		s.log.Error("sftp: cannot write acknowledgement", "tenant", h.tenant, "id", ack.ID, "err", err)
	}
	s.log.Info("sftp file taken in", "tenant", h.tenant, "remote", h.remote, "id", ack.ID, "status", ack.Status, "size", ack.Size,
		"duplicate", ack.Duplicate, "followed", fl.Followed())
	return nil
}

// classify maps an Intake error to a refusal code; permanent refusals go
// to errors/, the others ask the client to retry.
func classify(err error) (code string, permanent bool) {
	switch {
	case errors.Is(err, gateway.ErrTooLarge):
		return CodeTooLarge, true
	case errors.Is(err, gateway.ErrEmpty):
		return CodeEmpty, true
	case errors.Is(err, gateway.ErrUnknownTenant):
		return CodeUnknown, true
	case errors.Is(err, gateway.ErrRateLimited):
		return CodeRateLimited, false
	}
	return CodeUnavailable, false
}

func refusalMessage(code string) string {
	switch code {
	case CodeTooLarge:
		return "file above the size limit"
	case CodeEmpty:
		return "empty file"
	case CodeUnknown:
		return "tenant unknown or disabled"
	}
	return code
}

// usageTTL bounds how stale the cached size of a tenant's tree may be. The
// quota is approximate anyway (concurrent uploads are not reserved, see
// docs/vendors.md); walking the tree on every open made a burst of small
// uploads slower the longer it ran (profile in docs/benchmarks.md).
const usageTTL = 2 * time.Second

type usageEntry struct {
	bytes int64
	at    time.Time
}

// usage returns the tenant's tree size, walked at most once per usageTTL.
func (s *Server) usage(tenant string, root *os.Root) (int64, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	e, ok := s.usageCache[tenant]
	s.mu.Unlock()
	if ok && now.Sub(e.at) < usageTTL {
		return e.bytes, nil
	}
	n, err := mailbox.Usage(s.ctx, root)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	if len(s.usageCache) > 10000 {
		clear(s.usageCache)
	}
	s.usageCache[tenant] = usageEntry{n, now}
	s.mu.Unlock()
	return n, nil
}

// forgetUsage drops a tenant's cached tree size.
func (s *Server) forgetUsage(tenant string) {
	s.mu.Lock()
	delete(s.usageCache, tenant)
	s.mu.Unlock()
}

// liveInfo is info of inbox/<name> with, while it is uploaded with direct
// writes, the size the client wrote so far (staged and held bytes are not
// in the file yet).
func (s *Server) liveInfo(tenant, name string, info os.FileInfo) os.FileInfo {
	s.mu.Lock()
	u := s.writing[tenant][name]
	s.mu.Unlock()
	if u == nil {
		return info
	}
	u.mu.Lock()
	end := u.end
	u.mu.Unlock()
	if end <= info.Size() {
		return info
	}
	return sizedInfo{info, end}
}

// sizedInfo is a FileInfo with another size.
type sizedInfo struct {
	os.FileInfo
	size int64
}

func (i sizedInfo) Size() int64 { return i.size }
