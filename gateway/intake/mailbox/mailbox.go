// Package mailbox holds the per-tenant folders vendors see over SFTP:
// inbox, outbox, returns, errors and referentials. Each tenant has one
// directory under the data directory and every access goes through an
// os.Root, so no name can escape it. Files the gateway drops for a vendor
// (acknowledgements, returns, referential diffs, refusals) are written
// atomically: temporary file, fsync, rename, fsync of the directory.
package mailbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
	"unicode/utf8"
)

// Folder names, as vendors see them at the top of their SFTP tree.
const (
	Inbox        = "inbox"        // vendor uploads
	Outbox       = "outbox"       // syntax acknowledgements, one pair per file
	Returns      = "returns"      // ARL/RSP relayed unchanged
	Errors       = "errors"       // files refused at intake, with the reason
	Referentials = "referentials" // AMC referential diffs
)

// Names returns the folder names in display order.
func Names() []string { return []string{Inbox, Outbox, Returns, Errors, Referentials} }

// IsFolder reports whether name is one of the tenant folders.
func IsFolder(name string) bool {
	switch name {
	case Inbox, Outbox, Returns, Errors, Referentials:
		return true
	}
	return false
}

// MaxNameLen is the longest file name accepted, in bytes.
const MaxNameLen = 200

// tmpPrefix starts the names of files being written; they are hidden from
// vendors and such names are refused from them.
const tmpPrefix = ".tmp-"

// Errors (errors.Is).
var (
	ErrBadName   = errors.New("mailbox: bad file name")
	ErrBadTenant = errors.New("mailbox: bad tenant id")
	ErrBadFolder = errors.New("mailbox: bad folder")
)

// CheckName says whether name is acceptable as a file name in a folder:
// one path element, valid UTF-8, no control characters, no slash or
// backslash, not "." or "..", not starting with a dot, at most MaxNameLen
// bytes. It returns an error wrapping ErrBadName.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrBadName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrBadName, MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not UTF-8", ErrBadName)
	case name[0] == '.':
		return fmt.Errorf("%w: starts with a dot", ErrBadName)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w: control character", ErrBadName)
		}
		if r == '/' || r == '\\' {
			return fmt.Errorf("%w: path separator", ErrBadName)
		}
	}
	return nil
}

// CheckTenant says whether id can name a tenant directory: the rules of
// CheckName, restricted to ASCII letters, digits, '-', '_' and '.'.
func CheckTenant(id string) error {
	if err := CheckName(id); err != nil {
		return fmt.Errorf("%w: %v", ErrBadTenant, err)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%w: character %q", ErrBadTenant, c)
		}
	}
	return nil
}

// Folders is the tree of tenant folders under one directory.
type Folders struct {
	dir string
	now func() time.Time
}

// Option configures Folders.
type Option func(*Folders)

// WithClock sets the clock used for refusal timestamps (default time.Now).
func WithClock(now func() time.Time) Option { return func(f *Folders) { f.now = now } }

// New returns the folders under dir, creating dir (0700) if needed.
func New(dir string, opts ...Option) (*Folders, error) {
	if dir == "" {
		return nil, errors.New("mailbox: empty directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mailbox: %w", err)
	}
	f := &Folders{dir: dir, now: time.Now}
	for _, o := range opts {
		o(f)
	}
	return f, nil
}

// Open returns the root of a tenant's tree, creating the tenant directory
// and its folders if needed. The caller closes the root.
func (f *Folders) Open(tenant string) (*os.Root, error) {
	if err := CheckTenant(tenant); err != nil {
		return nil, err
	}
	top, err := os.OpenRoot(f.dir)
	if err != nil {
		return nil, fmt.Errorf("mailbox: %w", err)
	}
	defer top.Close()
	for _, name := range Names() {
		if err := top.MkdirAll(path.Join(tenant, name), 0o700); err != nil {
			return nil, fmt.Errorf("mailbox: %w", err)
		}
	}
	r, err := top.OpenRoot(tenant)
	if err != nil {
		return nil, fmt.Errorf("mailbox: %w", err)
	}
	return r, nil
}

// Deliver writes data as folder/name in the tenant's tree, atomically (a
// reader sees the whole file or nothing). An existing file of that name is
// replaced. Only the returns and referentials folders take deliveries.
func (f *Folders) Deliver(ctx context.Context, tenant, folder, name string, data []byte) error {
	if folder != Returns && folder != Referentials {
		return fmt.Errorf("%w: cannot deliver to %q", ErrBadFolder, folder)
	}
	if err := CheckName(name); err != nil {
		return err
	}
	r, err := f.Open(tenant)
	if err != nil {
		return err
	}
	defer r.Close()
	return WriteAtomic(ctx, r, folder, name, bytes.NewReader(data))
}

// Usage returns the bytes held by regular files in the tenant's tree
// (files being written included).
func Usage(ctx context.Context, r *os.Root) (int64, error) {
	var total int64
	err := fs.WalkDir(r.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			total += info.Size()
		}
		return nil
	})
	return total, err
}

// IsTemp reports whether a directory entry is a file being written by the
// gateway (hidden from vendors).
func IsTemp(name string) bool { return strings.HasPrefix(name, tmpPrefix) }

// WriteAtomic copies src to folder/name under r: a temporary file in the
// same folder, fsync, rename over name, fsync of the folder.
func WriteAtomic(ctx context.Context, r *os.Root, folder, name string, src io.Reader) (err error) {
	return WriteAtomicAll(ctx, r, folder, []File{{Name: name, Data: src}})
}

// File is one file for WriteAtomicAll.
type File struct {
	Name string
	Data io.Reader
}

// WriteAtomicAll writes several files into folder as WriteAtomic does,
// with one fsync of the folder for all of them: each is written to a
// temporary name and fsync'd, then they are renamed in order and the
// folder is synced once. On an error none of the temporary files stays;
// the files renamed before it stay (each is whole).
func WriteAtomicAll(ctx context.Context, r *os.Root, folder string, files []File) (err error) {
	if !IsFolder(folder) {
		return fmt.Errorf("%w: %q", ErrBadFolder, folder)
	}
	for _, f := range files {
		if err := CheckName(f.Name); err != nil {
			return err
		}
	}
	tmps := make([]string, 0, len(files))
	defer func() {
		if err != nil {
			for _, t := range tmps {
				_ = r.Remove(t)
			}
		}
	}()
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		tmp := path.Join(folder, tmpPrefix+hex.EncodeToString(rnd[:]))
		fh, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("mailbox: %w", err)
		}
		tmps = append(tmps, tmp)
		if _, err = io.Copy(fh, ctxReader{ctx, f.Data}); err == nil {
			err = fh.Sync()
		}
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("mailbox: write %s: %w", f.Name, err)
		}
	}
	for i, f := range files {
		if err = r.Rename(tmps[i], path.Join(folder, f.Name)); err != nil {
			tmps = tmps[i:]
			return fmt.Errorf("mailbox: rename %s: %w", f.Name, err)
		}
	}
	tmps = nil
	return SyncDir(r, folder)
}

// SyncDir fsyncs a folder so that renames and removals in it are durable.
func SyncDir(r *os.Root, folder string) error {
	d, err := r.Open(folder)
	if err != nil {
		return fmt.Errorf("mailbox: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("mailbox: fsync %s: %w", folder, err)
	}
	return nil
}

// ctxReader stops a copy once the context is done.
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
