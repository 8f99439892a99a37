package durable

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteAndCreate(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	if err := WriteFile(dir, "a", write("one")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(dir, "a", write("two")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a")); string(b) != "two" {
		t.Fatalf("WriteFile did not replace: %q", b)
	}
	if err := CreateFile(dir, "b", write("first")); err != nil {
		t.Fatal(err)
	}
	if err := CreateFile(dir, "b", write("second")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateFile over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "b")); string(b) != "first" {
		t.Fatalf("CreateFile replaced the file: %q", b)
	}
	// A failing writer leaves nothing, not even its temporary file.
	boom := errors.New("boom")
	if err := WriteFile(dir, "c", func(io.Writer) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("writer error: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("directory holds %d entries, want a and b", len(ents))
	}
	if info, err := os.Stat(filepath.Join(dir, "a")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", info.Mode(), err)
	}
}
