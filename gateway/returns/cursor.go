package returns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Cursor keeps, per mailbox, the UIDVALIDITY seen and the last UID
// processed, durably. Load of a mailbox never saved returns zeros.
type Cursor interface {
	Load(ctx context.Context, mailbox string) (uidValidity, uid uint32, err error)
	Save(ctx context.Context, mailbox string, uidValidity, uid uint32) error
}

// FileCursor is a Cursor in a directory: one small JSON file per mailbox,
// replaced atomically (temporary file, fsync, rename, fsync of the
// directory), so a crash leaves the old position or the new one.
type FileCursor struct {
	dir string
	mu  sync.Mutex
}

// NewFileCursor returns a FileCursor in dir, creating it (0700) if needed.
func NewFileCursor(dir string) (*FileCursor, error) {
	if dir == "" {
		return nil, errors.New("returns: empty cursor directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("returns: cursor directory: %w", err)
	}
	return &FileCursor{dir: dir}, nil
}

type cursorFile struct {
	Mailbox     string `json:"mailbox"`
	UIDValidity uint32 `json:"uid_validity"`
	UID         uint32 `json:"uid"`
}

// path names a mailbox's file by the hex of its name: any mailbox name
// (slashes, dots, UTF-7) maps to a safe file name.
func (c *FileCursor) path(mailbox string) string {
	return filepath.Join(c.dir, "cursor-"+hex.EncodeToString([]byte(mailbox))+".json")
}

// Load implements Cursor.
func (c *FileCursor) Load(ctx context.Context, mailbox string) (uint32, uint32, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := os.ReadFile(c.path(mailbox))
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("returns: load cursor: %w", err)
	}
	var f cursorFile
	if err := json.Unmarshal(b, &f); err != nil || f.Mailbox != mailbox {
		return 0, 0, fmt.Errorf("returns: cursor file of %q is damaged", mailbox)
	}
	return f.UIDValidity, f.UID, nil
}

// Save implements Cursor.
func (c *FileCursor) Save(ctx context.Context, mailbox string, uidValidity, uid uint32) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b, _ := json.Marshal(cursorFile{Mailbox: mailbox, UIDValidity: uidValidity, UID: uid})
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(c.dir, ".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("returns: save cursor: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(b); err != nil {
		return fmt.Errorf("returns: save cursor: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("returns: save cursor: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("returns: save cursor: %w", err)
	}
	if err = os.Rename(tmp, c.path(mailbox)); err != nil {
		return fmt.Errorf("returns: save cursor: %w", err)
	}
	d, err := os.Open(c.dir)
	if err != nil {
		return fmt.Errorf("returns: save cursor: %w", err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("returns: save cursor: %w", err)
	}
	return nil
}
