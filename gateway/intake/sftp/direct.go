package sftp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"unsafe"

	"github.com/pkg/sftp"
	"golang.org/x/sys/unix"
)

// Direct writes. A followed upload (see upload.follow) has its bytes in
// order anyway; instead of copying every SFTP write into the page cache
// (and having the kernel write it back before the take-in's sync), they
// are staged in an aligned 1 MiB block that is written with O_DIRECT when
// full: one copy fewer, no write-back work, and no page cache filled with
// files that are already in the blob store. Two blocks per upload: one
// fills while the other is written by a goroutine of its own, so that an
// SFTP write never waits for the disk unless the disk is the slower. The
// tail of the file (under a block) goes through the page cache at close.
// Durability still comes from the take-in's sync, which also flushes the
// device cache.
//
// Where the filesystem refuses O_DIRECT (tmpfs, some network and overlay
// filesystems: EINVAL at open or at the first write), the upload goes on
// through the page cache, as without Config.DirectWrites, and so do the
// next ones.
//
// Off by default: on the 2-vCPU benchmark machine, with the client in the
// same process, it used 3-6 % less CPU per MB and cut the take-in of a
// 25 MiB file from about 6 to 3.5 ms, but with four sessions of the
// pkg/sftp client it was 8 % slower (a goroutine blocked in a 1 MiB
// O_DIRECT write holds one of the two Ps until the runtime takes it back;
// with three Ps it was the fastest): docs/benchmarks.md.

const (
	directChunk = 1 << 20 // bytes per O_DIRECT write
	directAlign = 4096    // buffer address, offset and length alignment
)

// errNoDirect: the filesystem refused O_DIRECT, at the open or at the
// first block (which was then written through the page cache).
var errNoDirect = errors.New("sftp: O_DIRECT refused")

// directStage holds the two blocks of one upload.
type directStage struct {
	bufs [2][]byte  // directChunk bytes each, aligned
	cur  int        // the block being filled: bufs[cur]
	n    int        // bytes in it
	off  int64      // its file offset, a multiple of directChunk
	f    directFile // the upload reopened with O_DIRECT, at the first full block

	// The other block, bufs[1-cur], may be in flight: written at
	// flightOff by a goroutine that sends its result on res (settle).
	inflight  bool
	flightOff int64
	res       chan error
}

func newDirectStage() *directStage {
	d := &directStage{res: make(chan error, 1)}
	for i := range d.bufs {
		mem := make([]byte, directChunk+directAlign)
		skip := 0
		if r := int(uintptr(unsafe.Pointer(&mem[0])) % directAlign); r != 0 {
			skip = directAlign - r
		}
		d.bufs[i] = mem[skip : skip+directChunk : skip+directChunk]
	}
	return d
}

// directFile is what direct blocks are written to: an *os.File opened
// with O_DIRECT (tests give others).
type directFile interface {
	io.WriterAt
	io.Closer
}

// reopenDirect opens f again for direct writes, through /proc/self/fd: the
// same inode, whatever happened to its name (Server.openDirect).
func reopenDirect(f *os.File) (directFile, error) {
	return os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_WRONLY|unix.O_DIRECT, 0)
}

// getStage takes a staging pair from the server's pool.
func (s *Server) getStage() *directStage {
	if d, ok := s.stages.Get().(*directStage); ok {
		return d
	}
	return newDirectStage()
}

// putStage returns d, settled (nothing in flight), to the pool.
func (s *Server) putStage(d *directStage) {
	d.cur, d.n, d.off, d.f = 0, 0, 0, nil
	s.stages.Put(d)
}

// stage appends in-order bytes to the current block, sending it to disk
// when full. The caller holds u.mu.
func (u *upload) stage(b []byte) {
	for len(b) > 0 {
		d := u.ds
		k := copy(d.bufs[d.cur][d.n:], b)
		d.n += k
		b = b[k:]
		if d.n < directChunk {
			return
		}
		err := u.writeBlock()
		if err == nil {
			continue
		}
		rest := d.off + int64(d.n) // file offset of b
		u.undirect()               // the full block goes through the page cache
		if !errors.Is(err, errNoDirect) {
			// Another failure, EINVAL on a later block included: that
			// block is lost, the upload fails.
			u.failWrite(err)
			return
		}
		u.refuseDirect(err)
		if len(b) > 0 {
			if _, err := u.f.WriteAt(b, rest); err != nil {
				u.failWrite(err)
			}
		}
		return
	}
}

// writeBlock starts writing the full current block, once the one before it
// is written, and makes the other block current.
func (u *upload) writeBlock() error {
	if err := u.settle(); err != nil {
		return err
	}
	d := u.ds
	if d.f == nil {
		f, err := u.s.openDirect(u.f)
		if errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("%w: open: %v", errNoDirect, err)
		} else if err != nil {
			return fmt.Errorf("open for direct writes: %w", err)
		}
		d.f = f
	}
	f, b, off := d.f, d.bufs[d.cur], d.off
	d.inflight, d.flightOff = true, off
	go func() {
		_, err := f.WriteAt(b, off)
		d.res <- err
	}()
	d.cur = 1 - d.cur
	d.off += directChunk
	d.n = 0
	return nil
}

// settle waits for the block in flight, if any. The first block of the
// file refused with EINVAL is written through the page cache instead
// (errNoDirect); any other error is returned as is.
func (u *upload) settle() error {
	d := u.ds
	if !d.inflight {
		return nil
	}
	d.inflight = false
	err := <-d.res
	switch {
	case err == nil:
		u.s.directBlocks.Add(1)
		return nil
	case errors.Is(err, unix.EINVAL) && d.flightOff == 0:
		if _, werr := u.f.WriteAt(d.bufs[1-d.cur], 0); werr != nil {
			return werr
		}
		return fmt.Errorf("%w: %v", errNoDirect, err)
	}
	return err
}

// refuseDirect records that the inbox filesystem does not take direct
// writes: no upload tries again.
func (u *upload) refuseDirect(err error) {
	if !u.s.noDirect.Swap(true) {
		u.s.log.Info("sftp: the inbox filesystem refuses O_DIRECT, uploads go through the page cache", "err", err)
	}
}

// undirect ends the direct writes of the upload: once the block in flight
// is written, what is staged, and what is held for the follower out of
// order (not written yet in this mode), goes to the file through the page
// cache. The caller holds u.mu.
func (u *upload) undirect() {
	d := u.ds
	if d == nil {
		return
	}
	err := u.settle()
	if errors.Is(err, errNoDirect) {
		u.refuseDirect(err)
		err = nil
	}
	u.ds = nil
	if err == nil && d.n > 0 {
		_, err = u.f.WriteAt(d.bufs[d.cur][:d.n], d.off)
	}
	for off, b := range u.pending {
		if err == nil {
			_, err = u.f.WriteAt(b, off)
		}
	}
	if d.f != nil {
		if cerr := d.f.Close(); err == nil {
			err = cerr
		}
	}
	u.s.putStage(d)
	if err != nil {
		u.failWrite(err)
	}
}

// failWrite records that writing the upload failed on our side: the
// client is told, the file is never taken in. The caller holds u.mu.
func (u *upload) failWrite(err error) {
	if u.werr == nil {
		u.werr = fmt.Errorf("%w: write failed", sftp.ErrSSHFxFailure)
		u.s.log.Error("sftp upload write failed", "tenant", u.h.tenant, "err", err)
	}
}
