package sftp

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/pkg/sftp"

	"github.com/octgw/oct/gateway/intake/mailbox"
)

// handlers implements the pkg/sftp request handlers over one tenant's tree.
// The tree is flat: "/" lists the folders, "/<folder>/<name>" is a file.
// Anything else (deeper paths, other top-level names, directories made by
// the client, links) is refused. Every access goes through the os.Root.
type handlers struct {
	s      *Server
	tenant string
	remote string
	root   *os.Root
}

var (
	errDenied      = sftp.ErrSSHFxPermissionDenied
	errNoSuchFile  = sftp.ErrSSHFxNoSuchFile
	errUnsupported = sftp.ErrSSHFxOpUnsupported
)

// loc is a parsed request path.
type loc struct {
	folder string // "" for the root
	name   string // "" for a folder
}

func (l loc) rel() string {
	if l.name == "" {
		return l.folder
	}
	return l.folder + "/" + l.name
}

// parse maps a request path (absolute and cleaned by pkg/sftp) to a place in
// the tree, refusing what is not one.
func parse(p string) (loc, error) {
	if strings.ContainsRune(p, 0) {
		return loc{}, fmt.Errorf("%w: bad path", errDenied)
	}
	p = path.Clean("/" + p)
	if p == "/" {
		return loc{}, nil
	}
	parts := strings.Split(p[1:], "/")
	if !mailbox.IsFolder(parts[0]) {
		return loc{}, fmt.Errorf("%w: no folder %q", errNoSuchFile, parts[0])
	}
	switch len(parts) {
	case 1:
		return loc{folder: parts[0]}, nil
	case 2:
		if err := mailbox.CheckName(parts[1]); err != nil {
			return loc{}, fmt.Errorf("%w: %v", errDenied, err)
		}
		return loc{folder: parts[0], name: parts[1]}, nil
	}
	return loc{}, fmt.Errorf("%w: folders have no subfolders", errDenied)
}

func parseFile(p string) (loc, error) {
	l, err := parse(p)
	if err != nil {
		return l, err
	}
	if l.name == "" {
		return l, fmt.Errorf("%w: not a file", errDenied)
	}
	return l, nil
}

// Fileread opens a file of outbox, returns, errors or referentials.
func (h *handlers) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	l, err := parseFile(r.Filepath)
	if err != nil {
		return nil, err
	}
	if l.folder == mailbox.Inbox {
		return nil, fmt.Errorf("%w: the inbox cannot be read", errDenied)
	}
	f, err := h.root.OpenFile(l.rel(), os.O_RDONLY|noFollow, 0)
	if err != nil {
		return nil, mapErr(err)
	}
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: not a regular file", errDenied)
	}
	return f, nil
}

// Filewrite opens an upload in the inbox.
func (h *handlers) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	l, err := parseFile(r.Filepath)
	if err != nil {
		return nil, err
	}
	if l.folder != mailbox.Inbox {
		return nil, fmt.Errorf("%w: upload into inbox/", errDenied)
	}
	return h.s.openUpload(h, l.name, r.Pflags())
}

// Filecmd handles Setstat, Rename, Rmdir, Mkdir, Link, Symlink, Remove.
func (h *handlers) Filecmd(r *sftp.Request) error {
	switch r.Method {
	case "Setstat":
		// Accepted and ignored (clients set times and modes after a put).
		l, err := parse(r.Filepath)
		if err != nil {
			return err
		}
		if l.folder == "" {
			return nil
		}
		if _, err := h.root.Lstat(l.rel()); err != nil {
			return mapErr(err)
		}
		return nil
	case "Rename", "PosixRename":
		return h.rename(r.Filepath, r.Target)
	case "Remove":
		return h.remove(r.Filepath)
	case "Mkdir", "Rmdir":
		return fmt.Errorf("%w: the folders are fixed", errDenied)
	case "Link", "Symlink":
		return fmt.Errorf("%w: links are refused", errUnsupported)
	}
	return errUnsupported
}

// PosixRename implements sftp.PosixRenameFileCmder.
func (h *handlers) PosixRename(r *sftp.Request) error { return h.rename(r.Filepath, r.Target) }

func (h *handlers) rename(from, to string) error {
	src, err := parseFile(from)
	if err != nil {
		return err
	}
	dst, err := parseFile(to)
	if err != nil {
		return err
	}
	if src.folder != mailbox.Inbox || dst.folder != mailbox.Inbox {
		return fmt.Errorf("%w: rename works inside inbox/ only", errDenied)
	}
	// Both names are held until the rename and the take-in are done: an
	// upload opened meanwhile under either would change the file taken in.
	if !h.s.holdNames(h.tenant, src.name, dst.name) {
		return fmt.Errorf("%w: upload in progress", sftp.ErrSSHFxFailure)
	}
	defer h.s.releaseName(h.tenant, dst.name)
	defer h.s.releaseName(h.tenant, src.name)
	// What was followed of src goes with it to the take-in; on any other
	// outcome it is dropped.
	fl := h.s.unpark(h.tenant, src.name)
	defer func() {
		if fl != nil {
			fl.Abort() // a no-op once the take-in ended it
			h.s.releaseFollowSlot()
		}
	}()
	info, err := h.root.Lstat(src.rel())
	if err != nil {
		return mapErr(err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%w: not a regular file", errDenied)
	}
	if _, err := h.root.Lstat(dst.rel()); err == nil {
		return fmt.Errorf("%w: %s exists", sftp.ErrSSHFxFailure, dst.name)
	}
	if err := h.root.Rename(src.rel(), dst.rel()); err != nil {
		return mapErr(err)
	}
	if isTempName(dst.name) {
		return nil
	}
	return h.s.takeIn(h, dst.name, fl)
}

func (h *handlers) remove(p string) error {
	l, err := parseFile(p)
	if err != nil {
		return err
	}
	if l.folder == mailbox.Inbox && h.s.isWriting(h.tenant, l.name) {
		return fmt.Errorf("%w: upload in progress", sftp.ErrSSHFxFailure)
	}
	info, err := h.root.Lstat(l.rel())
	if err != nil {
		return mapErr(err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%w: not a regular file", errDenied)
	}
	h.s.forgetUsage(h.tenant) // space freed by the vendor counts at once
	if l.folder == mailbox.Inbox {
		h.s.dropParked(h.tenant, l.name)
	}
	return mapErr(h.root.Remove(l.rel()))
}

// Filelist handles List, Stat and Readlink.
func (h *handlers) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	switch r.Method {
	case "List":
		l, err := parse(r.Filepath)
		if err != nil {
			return nil, err
		}
		if l.name != "" {
			return nil, fmt.Errorf("%w: not a folder", sftp.ErrSSHFxFailure)
		}
		if l.folder == "" {
			var out []os.FileInfo
			for _, f := range mailbox.Names() {
				out = append(out, h.folderInfo(f))
			}
			return listerAt(out), nil
		}
		d, err := h.root.Open(l.folder)
		if err != nil {
			return nil, mapErr(err)
		}
		defer d.Close()
		entries, err := d.ReadDir(-1)
		if err != nil {
			return nil, mapErr(err)
		}
		out := make([]os.FileInfo, 0, len(entries))
		for _, e := range entries {
			if !e.Type().IsRegular() || mailbox.CheckName(e.Name()) != nil {
				continue
			}
			if info, err := e.Info(); err == nil {
				if l.folder == mailbox.Inbox {
					info = h.s.liveInfo(h.tenant, info.Name(), info)
				}
				out = append(out, info)
			}
		}
		return listerAt(out), nil
	case "Stat", "Lstat":
		return h.stat(r.Filepath)
	case "Readlink":
		return nil, fmt.Errorf("%w: no links", errUnsupported)
	}
	return nil, errUnsupported
}

// Lstat implements sftp.LstatFileLister (nothing here is a link).
func (h *handlers) Lstat(r *sftp.Request) (sftp.ListerAt, error) { return h.stat(r.Filepath) }

// RealPath implements sftp.RealPathFileLister.
func (h *handlers) RealPath(p string) (string, error) { return path.Clean("/" + p), nil }

func (h *handlers) stat(p string) (sftp.ListerAt, error) {
	l, err := parse(p)
	if err != nil {
		return nil, err
	}
	if l.folder == "" {
		return listerAt{dirInfo{name: "/", mod: h.s.cfg.Now()}}, nil
	}
	info, err := h.root.Lstat(l.rel())
	if err != nil {
		return nil, mapErr(err)
	}
	if l.name != "" && !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file", errNoSuchFile)
	}
	if l.folder == mailbox.Inbox && l.name != "" {
		info = h.s.liveInfo(h.tenant, l.name, info)
	}
	return listerAt{info}, nil
}

func (h *handlers) folderInfo(name string) os.FileInfo {
	if info, err := h.root.Lstat(name); err == nil {
		return info
	}
	return dirInfo{name: name, mod: h.s.cfg.Now()}
}

// mapErr turns file system errors into SFTP status errors without leaking
// server paths.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return errNoSuchFile
	case errors.Is(err, fs.ErrPermission):
		return errDenied
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%w: exists", sftp.ErrSSHFxFailure)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: %s", sftp.ErrSSHFxFailure, pe.Op)
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return fmt.Errorf("%w: %s", sftp.ErrSSHFxFailure, le.Op)
	}
	return err
}

type listerAt []os.FileInfo

func (l listerAt) ListAt(ls []os.FileInfo, offset int64) (int, error) {
	if offset >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(ls, l[offset:])
	if n < len(ls) {
		return n, io.EOF
	}
	return n, nil
}

type dirInfo struct {
	name string
	mod  time.Time
}

func (d dirInfo) Name() string       { return d.name }
func (d dirInfo) Size() int64        { return 0 }
func (d dirInfo) Mode() os.FileMode  { return os.ModeDir | 0o700 }
func (d dirInfo) ModTime() time.Time { return d.mod }
func (d dirInfo) IsDir() bool        { return true }
func (d dirInfo) Sys() any           { return nil }

// tempSuffixes end the temporary names of uploads (lower case).
var tempSuffixes = []string{".tmp", ".part", ".partial", ".filepart", ".upload"}

// isTempName reports whether an inbox name is a temporary upload name: such
// a file is taken in when it is renamed to its final name, not on close.
func isTempName(name string) bool {
	n := strings.ToLower(name)
	for _, suf := range tempSuffixes {
		if strings.HasSuffix(n, suf) {
			return true
		}
	}
	return false
}
