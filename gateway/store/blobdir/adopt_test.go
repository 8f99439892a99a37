package blobdir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/octgw/oct/gateway/store"
)

// adoptable writes data to an upload file beside a fresh blob directory
// and opens it; the test is skipped where adoption cannot work.
func adoptable(t *testing.T, data []byte) (d *Dir, root, src string, f *os.File) {
	t.Helper()
	root = t.TempDir()
	d, err := Open(filepath.Join(root, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	src = filepath.Join(root, "upload")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if f, err = os.Open(src); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if !d.CanAdopt(f) {
		t.Skip("the temp dir and /proc do not allow adoption here")
	}
	return d, root, src, f
}

func TestAdoptLinksTheFileWithoutCopying(t *testing.T) {
	data := bytes.Repeat([]byte("B2 RECORD "), 5000)
	d, root, src, f := adoptable(t, data)
	var tee bytes.Buffer
	sum, size, err := d.Adopt(context.Background(), f, &tee, 1<<20)
	if err != nil || size != int64(len(data)) || !bytes.Equal(tee.Bytes(), data) {
		t.Fatalf("adopt: %v size %d tee %d", err, size, tee.Len())
	}
	if !bytes.Equal(readAll(t, d, sum), data) {
		t.Fatal("blob content differs")
	}
	p, _ := d.Path(sum)
	a, _ := os.Stat(src)
	b, _ := os.Stat(p)
	if !os.SameFile(a, b) || a.Sys().(*syscall.Stat_t).Nlink != 2 {
		t.Fatal("the blob is a copy, not the adopted inode")
	}
	// Removing the upload leaves the blob whole.
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	if ok, _ := d.Has(context.Background(), sum); !ok {
		t.Fatal("blob gone with the upload")
	}
	// Too large: nothing stored.
	big := filepath.Join(root, "big")
	os.WriteFile(big, data, 0o600)
	g, _ := os.Open(big)
	defer g.Close()
	if _, _, err := d.Adopt(context.Background(), g, nil, 100); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
}

func TestAdoptHashedLinksWithoutReading(t *testing.T) {
	data := bytes.Repeat([]byte("FOLLOWED "), 4000)
	d, _, src, f := adoptable(t, data)
	h := sha256.Sum256(data)
	sum := hex.EncodeToString(h[:])
	ctx := context.Background()
	if err := d.AdoptHashed(ctx, f, sum, int64(len(data))+1); !errors.Is(err, ErrNotAdoptable) {
		t.Fatalf("size differing from the file: %v, want ErrNotAdoptable", err)
	}
	if err := d.AdoptHashed(ctx, f, "NOTAHASH", int64(len(data))); err == nil {
		t.Fatal("an invalid sum was accepted")
	}
	if ok, _ := d.Has(ctx, sum); ok {
		t.Fatal("a refused adoption stored the blob")
	}
	if err := d.AdoptHashed(ctx, f, sum, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	p, _ := d.Path(sum)
	a, _ := os.Stat(src)
	b, _ := os.Stat(p)
	if !os.SameFile(a, b) {
		t.Fatal("the blob is not the adopted inode")
	}
	// Adopting the same bytes again keeps the first blob.
	if err := d.AdoptHashed(ctx, f, sum, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.AdoptHashed(canceled, f, sum, int64(len(data))); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled context: %v", err)
	}
}
