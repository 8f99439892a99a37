// Package durable writes small files so that after a crash they are
// either absent or whole, and there: the bytes go to a temporary file in
// the same directory, which is synced, then put into place, then the
// directory is synced.
package durable

import (
	"io"
	"os"
	"path/filepath"
)

// WriteFile writes dir/name with write, replacing the file if it exists
// (rename into place). The file is created with mode 0600.
func WriteFile(dir, name string, write func(io.Writer) error) error {
	return put(dir, write, func(tmp string) error { return os.Rename(tmp, filepath.Join(dir, name)) })
}

// CreateFile writes dir/name with write unless it exists: the temporary
// file is hard-linked into place, so of several writers racing for one
// name exactly one wins and the others get an error wrapping fs.ErrExist.
// The file is created with mode 0600.
func CreateFile(dir, name string, write func(io.Writer) error) error {
	return put(dir, write, func(tmp string) error { return os.Link(tmp, filepath.Join(dir, name)) })
}

func put(dir string, write func(io.Writer) error, place func(tmp string) error) error {
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := place(tmp.Name()); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir syncs a directory, making the entries added or removed in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
