package referentials

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/octgw/oct/internal/durable"
)

// Record is what a Store keeps per version: its description and content.
type Record struct {
	Version Version `json:"version"`
	Data    Data    `json:"data"`
}

// Store keeps versions durably. Put never overwrites: a second Put of the
// same id fails with ErrVersionExists. Implementations: DirStore; a
// Redis-backed one can satisfy the same contract later.
type Store interface {
	Put(ctx context.Context, rec Record) error
	Get(ctx context.Context, id uint64) (Record, error)
	// Versions lists the stored versions in ascending id order.
	Versions(ctx context.Context) ([]Version, error)
}

// DirStore keeps one JSON file per version in a directory
// (v00000000000000000001.json …). Each file is written to a temporary name,
// fsynced, hard-linked to its final name (which fails if it exists) and the
// directory fsynced, so a crash leaves either the whole version or none.
type DirStore struct {
	Dir string
}

// NewDirStore creates the directory if needed.
func NewDirStore(dir string) (*DirStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, errorf(ErrStore, err, "create %s", dir)
	}
	return &DirStore{Dir: dir}, nil
}

func (s *DirStore) name(id uint64) string {
	return filepath.Join(s.Dir, fmt.Sprintf("v%020d.json", id))
}

// Put writes a version durably.
func (s *DirStore) Put(ctx context.Context, rec Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return errorf(ErrStore, err, "encode version %d", rec.Version.ID)
	}
	final := s.name(rec.Version.ID)
	if _, err := os.Stat(final); err == nil {
		return errorf(ErrVersionExists, nil, "version %d", rec.Version.ID)
	}
	err = durable.CreateFile(s.Dir, filepath.Base(final), func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	switch {
	case errors.Is(err, fs.ErrExist):
		return errorf(ErrVersionExists, nil, "version %d", rec.Version.ID)
	case err != nil:
		return errorf(ErrStore, err, "write version %d", rec.Version.ID)
	}
	return nil
}

// Get reads one version.
func (s *DirStore) Get(ctx context.Context, id uint64) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	b, err := os.ReadFile(s.name(id))
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, errorf(ErrVersionNotFound, nil, "version %d", id)
	}
	if err != nil {
		return Record{}, errorf(ErrStore, err, "read version %d", id)
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return Record{}, errorf(ErrStore, err, "decode version %d", id)
	}
	if rec.Version.ID != id {
		return Record{}, errorf(ErrStore, nil, "file of version %d holds version %d", id, rec.Version.ID)
	}
	return rec, nil
}

// Versions lists the versions, reading each file's header.
func (s *DirStore) Versions(ctx context.Context) ([]Version, error) {
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, errorf(ErrStore, err, "list %s", s.Dir)
	}
	var ids []uint64
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, "v") || !strings.HasSuffix(n, ".json") {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(n[1:], ".json"), 10, 64)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]Version, 0, len(ids))
	for _, id := range ids {
		rec, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, rec.Version)
	}
	return out, nil
}
