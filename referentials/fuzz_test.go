package referentials

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// memStore is an in-memory Store for fast tests.
type memStore struct {
	mu   sync.Mutex
	recs []Record
}

func (m *memStore) Put(_ context.Context, rec Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.recs {
		if r.Version.ID == rec.Version.ID {
			return ErrVersionExists
		}
	}
	m.recs = append(m.recs, rec)
	return nil
}

func (m *memStore) Get(_ context.Context, id uint64) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.recs {
		if r.Version.ID == id {
			return r, nil
		}
	}
	return Record{}, ErrVersionNotFound
}

func (m *memStore) Versions(context.Context) ([]Version, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Version
	for _, r := range m.recs {
		out = append(out, r.Version)
	}
	return out, nil
}

// FuzzImport: any file either imports (and then re-importing it changes
// nothing) or is refused with an ImportError listing at least one line.
func FuzzImport(f *testing.F) {
	for _, file := range DemoFeed().Files {
		f.Add(file.Name, file.Data)
	}
	f.Add("rg.csv", []byte("C;0;;00420000;AXA;SP;;;SANTEPHARM;x\n"))
	f.Add("a.json", []byte(`{"amo":[{"grand_regime":"01","caisse":"422"}]}`))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		r, err := Open(context.Background(), Config{Store: &memStore{}, Now: fixedNow, MaxRemovalShare: 1})
		if err != nil {
			t.Fatal(err)
		}
		// Conventions first so AMC tables can reference an operator.
		if _, err := r.Import(context.Background(), DemoFeed(), ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		file, err := DetectFile(name, data)
		if err != nil {
			return
		}
		feed := Feed{Source: "fuzz", Files: []FeedFile{file}}
		res, err := r.Import(context.Background(), feed, ImportOptions{})
		if err != nil {
			var ie *ImportError
			if !errors.As(err, &ie) || len(ie.Lines) == 0 {
				t.Fatalf("refused without lines: %v", err)
			}
			if r.Current().Version.ID != 1 {
				t.Fatal("refused feed changed the version")
			}
			return
		}
		again, err := r.Import(context.Background(), feed, ImportOptions{})
		if err != nil || !again.Unchanged || again.Version.ID != res.Version.ID {
			t.Fatalf("re-import: %+v %v", again, err)
		}
	})
}
