// Package blobdir keeps blobs in a local directory, content-addressed by
// sha256: the blob with sum "abcd…" lives at ab/cd/abcd…. A Put streams the
// bytes to a temporary file in the target directory while hashing them,
// fsyncs the file, renames it into place and fsyncs the directory, so a
// blob is durable when Put returns; bytes are stored exactly as read.
package blobdir

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/octgw/oct/gateway/store"
)

// Dir is a blob directory. It implements store.Blobs and is safe for
// concurrent use (two Puts of the same bytes both succeed; the blob is
// written once).
type Dir struct {
	root string
	sync *groupSync
	// packs keeps blobs of at most packLimit bytes in pack files (nil:
	// every blob is a file). See packs.go.
	packs     *packs
	packLimit int64
}

// Options tune a blob directory.
type Options struct {
	// PackSmall, when > 0, keeps blobs of at most this many bytes in
	// append-only pack files instead of one file each (packs.go).
	PackSmall int64
}

var _ store.Blobs = (*Dir)(nil)

// staleTemp is the age after which a temporary file is an abandoned Put
// (its process died): a live Put writes to it far more often than this.
const staleTemp = time.Hour

// Open uses root as a blob directory, creating it if needed, and removes
// temporary files abandoned by Puts that died (untouched for an hour).
func Open(root string) (*Dir, error) { return OpenWith(root, Options{}) }

// OpenWith is Open with options.
func OpenWith(root string, o Options) (*Dir, error) {
	if root == "" {
		return nil, errors.New("blobdir: empty root")
	}
	tmp := filepath.Join(root, "tmp")
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return nil, fmt.Errorf("blobdir: %w", err)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return nil, fmt.Errorf("blobdir: %w", err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "put-") {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTemp {
			_ = os.Remove(filepath.Join(tmp, e.Name()))
		}
	}
	gs, err := newGroupSync(root)
	if err != nil {
		return nil, err
	}
	d := &Dir{root: root, sync: gs}
	if o.PackSmall > 0 {
		if d.packs, err = openPacks(root); err != nil {
			return nil, err
		}
		d.packLimit = min(o.PackSmall, 1<<30)
	}
	return d, nil
}

// Root is the directory the blobs live in.
func (d *Dir) Root() string { return d.root }

// validSum reports whether s is a lowercase hex sha256.
func validSum(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Path is where the blob with this sum lives (whether or not it exists).
func (d *Dir) Path(sum string) (string, error) {
	if !validSum(sum) {
		return "", fmt.Errorf("blobdir: invalid sum %q: %w", sum, store.ErrNotFound)
	}
	return filepath.Join(d.root, sum[0:2], sum[2:4], sum), nil
}

// ctxReader stops reading when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Put implements store.Blobs. maxBytes <= 0 means no limit. An existing blob
// is not rewritten.
func (d *Dir) Put(ctx context.Context, r io.Reader, maxBytes int64) (sum string, size int64, err error) {
	if d.packs != nil {
		small, rest, err := readSmall(ctxReader{ctx, r}, d.packLimit)
		if err != nil {
			return "", 0, fmt.Errorf("blobdir: %w", err)
		}
		if small != nil {
			return d.putSmall(small, maxBytes)
		}
		r = rest
	}
	tmpDir := filepath.Join(d.root, "tmp")
	tmp, err := os.CreateTemp(tmpDir, "put-*")
	if err != nil {
		return "", 0, fmt.Errorf("blobdir: %w", err)
	}
	defer func() {
		if tmp != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if sum, size, err = hashCopy(ctx, &writeback{f: tmp}, r, maxBytes); err != nil {
		return "", 0, err
	}
	final, _ := d.Path(sum)
	if _, err := os.Stat(final); err == nil {
		// Already there: never rewritten. Another Put may still be waiting
		// for its durability, so wait for a sync too.
		if err := d.durable(final, nil); err != nil {
			return "", 0, err
		}
		return sum, size, nil
	}
	if err := tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("blobdir: close: %w", err)
	}
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", 0, fmt.Errorf("blobdir: %w", err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", 0, fmt.Errorf("blobdir: rename: %w", err)
	}
	tmp = nil
	if err := d.durable(final, []string{dir, filepath.Dir(dir), d.root}); err != nil {
		return "", 0, err
	}
	return sum, size, nil
}

// putSmall keeps a small blob in this process's pack, durably.
func (d *Dir) putSmall(data []byte, maxBytes int64) (string, int64, error) {
	size := int64(len(data))
	if maxBytes > 0 && size > maxBytes {
		return "", 0, fmt.Errorf("blobdir: more than %d bytes: %w", maxBytes, store.ErrTooLarge)
	}
	h := sha256.Sum256(data)
	sum := hex.EncodeToString(h[:])
	final, _ := d.Path(sum)
	if _, err := os.Stat(final); err == nil {
		return sum, size, d.durable(final, nil)
	}
	pack, err := d.packs.append(sum, data)
	if err != nil {
		return "", 0, err
	}
	err = d.sync.wait()
	if errors.Is(err, errNoSyncfs) {
		err = d.packs.fsync(pack)
	}
	if err != nil {
		return "", 0, fmt.Errorf("blobdir: pack sync: %w", err)
	}
	return sum, size, nil
}

// durable returns once the blob at final (data and directory entries) is
// on stable storage: one shared syncfs for all concurrent Puts, or, where
// syncfs is missing, fsync of the file and of dirs.
func (d *Dir) durable(final string, dirs []string) error {
	err := d.sync.wait()
	if !errors.Is(err, errNoSyncfs) {
		return err
	}
	f, err := os.Open(final)
	if err != nil {
		return fmt.Errorf("blobdir: %w", err)
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return fmt.Errorf("blobdir: fsync: %w", err)
	}
	if dirs == nil {
		dirs = []string{filepath.Dir(final)}
	}
	for _, p := range dirs {
		if err := syncDir(p); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("blobdir: fsync dir: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("blobdir: fsync dir: %w", err)
	}
	return nil
}

// Open implements store.Blobs (store.ErrNotFound if there is no such blob).
func (d *Dir) Open(ctx context.Context, sum string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := d.Path(sum)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) && d.packs != nil {
		l, ok, err := d.packs.find(sum)
		if err != nil {
			return nil, err
		}
		if ok {
			return d.packs.open(l)
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blobdir: %s: %w", sum, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blobdir: %w", err)
	}
	return f, nil
}

// Has implements store.Blobs.
func (d *Dir) Has(ctx context.Context, sum string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p, err := d.Path(sum)
	if err != nil {
		return false, nil
	}
	_, err = os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) && d.packs != nil {
		_, ok, err := d.packs.find(sum)
		return ok, err
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("blobdir: %w", err)
	}
	return true, nil
}

// hashCopy copies at most maxBytes (<= 0: no limit) of r to w while hashing
// them; more is ErrTooLarge.
func hashCopy(ctx context.Context, w io.Writer, r io.Reader, maxBytes int64) (sum string, size int64, err error) {
	h := sha256.New()
	if w == nil {
		w = h
	} else {
		w = io.MultiWriter(w, h)
	}
	src := io.Reader(ctxReader{ctx, r})
	if maxBytes > 0 {
		src = io.LimitReader(src, maxBytes+1)
	}
	if size, err = io.Copy(w, src); err != nil {
		return "", 0, fmt.Errorf("blobdir: %w", err)
	}
	if maxBytes > 0 && size > maxBytes {
		return "", 0, fmt.Errorf("blobdir: more than %d bytes: %w", maxBytes, store.ErrTooLarge)
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}
