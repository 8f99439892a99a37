package sftp

import (
	"errors"
	"fmt"
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
// files that are already in the blob store. The tail of the file (under a
// block) goes through the page cache at close. Durability still comes
// from the take-in's sync, which also flushes the device cache.
//
// Where the filesystem refuses O_DIRECT (tmpfs, some network and overlay
// filesystems: EINVAL at open or at the first write), the upload goes on
// through the page cache, as with Config.BufferedWrites.

const (
	directChunk = 1 << 20 // bytes per O_DIRECT write
	directAlign = 4096    // buffer address, offset and length alignment
)

// directStage is the staging block of one upload.
type directStage struct {
	mem []byte   // directChunk+directAlign bytes; buf is its aligned part
	buf []byte   // directChunk bytes, aligned
	n   int      // bytes staged in buf
	off int64    // file offset of buf[0], a multiple of directChunk
	f   *os.File // the upload reopened with O_DIRECT, at the first full block
}

func newDirectStage() *directStage {
	mem := make([]byte, directChunk+directAlign)
	skip := 0
	if r := int(uintptr(unsafe.Pointer(&mem[0])) % directAlign); r != 0 {
		skip = directAlign - r
	}
	return &directStage{mem: mem, buf: mem[skip : skip+directChunk : skip+directChunk]}
}

// reopenDirect opens f again for direct writes, through /proc/self/fd: the
// same inode, whatever happened to its name (Server.openDirect).
func reopenDirect(f *os.File) (*os.File, error) {
	return os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_WRONLY|unix.O_DIRECT, 0)
}

// getStage takes a staging block from the server's pool.
func (s *Server) getStage() *directStage {
	if d, ok := s.stages.Get().(*directStage); ok {
		return d
	}
	return newDirectStage()
}

func (s *Server) putStage(d *directStage) {
	d.n, d.off, d.f = 0, 0, nil
	s.stages.Put(d)
}

// stage appends in-order bytes to the block, writing it out when full.
// The caller holds u.mu.
func (u *upload) stage(b []byte) {
	for len(b) > 0 && u.ds != nil {
		d := u.ds
		k := copy(d.buf[d.n:], b)
		d.n += k
		b = b[k:]
		if d.n < len(d.buf) {
			return
		}
		err := u.writeBlock()
		if err == nil {
			continue
		}
		rest := d.off + int64(d.n) // file offset of b
		u.undirect()               // the block goes through the page cache
		if !errors.Is(err, unix.EINVAL) {
			u.failWrite(err)
			return
		}
		// The filesystem does not take direct writes: the page cache for
		// the rest too, and for the next uploads.
		u.s.noDirect.Store(true)
		u.s.log.Info("sftp: the inbox filesystem refuses O_DIRECT, uploads go through the page cache", "err", err)
		if len(b) > 0 {
			if _, err := u.f.WriteAt(b, rest); err != nil {
				u.failWrite(err)
			}
		}
		return
	}
}

// writeBlock writes the full block with O_DIRECT, opening the upload's
// file again for it the first time (through /proc/self/fd: the same inode,
// whatever happened to the name).
func (u *upload) writeBlock() error {
	d := u.ds
	if d.f == nil {
		f, err := u.s.openDirect(u.f)
		if err != nil {
			return fmt.Errorf("open for direct writes: %w", err)
		}
		d.f = f
	}
	if _, err := d.f.WriteAt(d.buf, d.off); err != nil {
		return err
	}
	u.s.directBlocks.Add(1)
	d.off += int64(d.n)
	d.n = 0
	return nil
}

// undirect ends the direct writes of the upload: what is staged, and what
// is held for the follower out of order (not written yet in this mode),
// goes to the file through the page cache. The caller holds u.mu.
func (u *upload) undirect() {
	d := u.ds
	if d == nil {
		return
	}
	u.ds = nil
	var err error
	if d.n > 0 {
		_, err = u.f.WriteAt(d.buf[:d.n], d.off)
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
