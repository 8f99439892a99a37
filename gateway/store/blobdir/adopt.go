package blobdir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/octgw/oct/gateway/store"
)

// ErrNotAdoptable: the file cannot be linked into the blob directory (other
// filesystem, not a regular file...); the caller copies it instead.
var ErrNotAdoptable = errors.New("blobdir: file not adoptable")

// Adopt stores the content of an open regular file without copying it: the
// bytes are read once — hashed, and also written to tee when not nil (the
// intake validator reads them there) — then the file's inode is hard-linked
// into its content-addressed place and made durable like a Put. The inode
// is linked through /proc/self/fd, so it is exactly the file that was read,
// whatever its path names meanwhile. The caller must not write to the file
// afterwards (the vendor's upload is closed and its inbox entry removed).
// Callers check CanAdopt first (same filesystem, /proc available);
// ErrNotAdoptable (nothing read, nothing stored) means Put a copy instead.
func (d *Dir) Adopt(ctx context.Context, f *os.File, tee io.Writer, maxBytes int64) (sum string, size int64, err error) {
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		return "", 0, ErrNotAdoptable
	}
	if maxBytes > 0 && info.Size() > maxBytes {
		return "", 0, fmt.Errorf("blobdir: more than %d bytes: %w", maxBytes, store.ErrTooLarge)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", 0, ErrNotAdoptable
	}
	if sum, size, err = teeHash(ctx, tee, f, maxBytes, info.Size()); err != nil {
		return "", 0, err
	}
	return sum, size, d.link(ctx, f, sum)
}

// AdoptHashed is Adopt for a file whose bytes the caller hashed itself
// while they were written (an SFTP upload followed in order, see
// gateway.Follower): the file is not read again, only linked and made
// durable. size must be the file's size now, sum the sha256 of exactly
// those bytes; the caller must not write to the file afterwards. A file
// that is not regular or whose size differs is ErrNotAdoptable (nothing
// stored: read and Put it instead). Trusting sum is the caller's
// responsibility: a wrong one would store bytes under another content's
// name, which is why only bytes seen in order, each written exactly once,
// may be hashed this way.
func (d *Dir) AdoptHashed(ctx context.Context, f *os.File, sum string, size int64) error {
	if !validSum(sum) {
		return fmt.Errorf("blobdir: invalid sum %q", sum)
	}
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() || info.Size() != size {
		return ErrNotAdoptable
	}
	return d.link(ctx, f, sum)
}

// link makes the open file f the blob sum (hard link of its inode through
// /proc/self/fd) and waits for its durability. An existing blob is not
// replaced: the same bytes are already stored.
func (d *Dir) link(ctx context.Context, f *os.File, sum string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blobdir: %w", err)
	}
	final, _ := d.Path(sum)
	if _, err := os.Stat(final); err == nil {
		return d.durable(final, nil) // the same bytes are already a blob
	}
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("blobdir: %w", err)
	}
	err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())), unix.AT_FDCWD, final, unix.AT_SYMLINK_FOLLOW)
	if err != nil && !errors.Is(err, unix.EEXIST) { // EEXIST: the same bytes were stored meanwhile
		return fmt.Errorf("blobdir: link: %w", err)
	}
	return d.durable(final, []string{dir, filepath.Dir(dir), d.root})
}

// CanAdopt reports whether f can be adopted: on the blob directory's
// filesystem, with /proc to link it by descriptor. Callers decide before
// reading anything.
func (d *Dir) CanAdopt(f *os.File) bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Stat(d.root, &b) != nil {
		return false
	}
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		return false
	}
	return a.Dev == b.Dev
}
