package blobdir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/gateway/store/storetest"
)

// TestConformancePacks: with small blobs in packs (the limit set so that
// both small and large blobs of the suite are exercised), the blob
// directory still passes the Blobs conformance suite.
func TestConformancePacks(t *testing.T) {
	storetest.RunBlobs(t, func(t *testing.T) store.Blobs {
		d, err := OpenWith(filepath.Join(t.TempDir(), "blobs"), Options{PackSmall: 64})
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

func readAll(t *testing.T, d *Dir, sum string) []byte {
	t.Helper()
	rc, err := d.Open(context.Background(), sum)
	if err != nil {
		t.Fatalf("open %s: %v", sum[:8], err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPacksAcrossNodesAndTornTail: a second process on the same directory
// finds the first one's small blobs (refresh on a miss), a record torn by a
// crash is never served, and the blobs before it still are; new blobs go
// to a new pack.
func TestPacksAcrossNodesAndTornTail(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "blobs")
	a, err := OpenWith(root, Options{PackSmall: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenWith(root, Options{PackSmall: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	sumA, _, err := a.Put(ctx, bytes.NewReader([]byte("written by node A")), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, b, sumA); string(got) != "written by node A" {
		t.Fatalf("node B read %q", got)
	}
	if ok, err := b.Has(ctx, sumA); !ok || err != nil {
		t.Fatalf("Has on node B: %v %v", ok, err)
	}
	// No file per blob: one pack per node.
	if _, err := os.Stat(filepath.Join(root, sumA[0:2], sumA[2:4], sumA)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a small blob became a file: %v", err)
	}
	// A crash in the middle of a record: its header is there, its data cut.
	torn := []byte("this record never completed")
	h := sha256.Sum256(torn)
	packsDir := filepath.Join(root, "packs")
	ents, _ := os.ReadDir(packsDir)
	var packA string
	for _, e := range ents {
		if e.Name() == a.packs.curName {
			packA = filepath.Join(packsDir, e.Name())
		}
	}
	f, err := os.OpenFile(packA, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec := append([]byte(packMagic), h[:]...)
	rec = append(rec, 0, 0, 0, byte(len(torn)), 1, 2, 3, 4)
	rec = append(rec, torn[:5]...)
	f.Write(rec)
	f.Close()
	c, err := OpenWith(root, Options{PackSmall: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, c, sumA); string(got) != "written by node A" {
		t.Fatalf("after the torn record: %q", got)
	}
	if _, err := c.Open(ctx, hex.EncodeToString(h[:])); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a torn record was served: %v", err)
	}
	sumC, _, err := c.Put(ctx, bytes.NewReader([]byte("after the crash")), 0)
	if err != nil || c.packs.curName == a.packs.curName {
		t.Fatalf("new blob: %v, pack %s", err, c.packs.curName)
	}
	if got := readAll(t, a, sumC); string(got) != "after the crash" {
		t.Fatalf("node A reading node C's blob: %q", got)
	}
	// Large blobs are still files.
	big := bytes.Repeat([]byte("x"), 1<<17)
	sumBig, _, err := a.Put(ctx, bytes.NewReader(big), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, sumBig[0:2], sumBig[2:4], sumBig)); err != nil {
		t.Fatalf("a large blob is not a file: %v", err)
	}
}

// TestPacksConcurrentPuts: many goroutines putting small blobs, some the
// same, all readable with the right bytes.
func TestPacksConcurrentPuts(t *testing.T) {
	ctx := context.Background()
	d, err := OpenWith(filepath.Join(t.TempDir(), "blobs"), Options{PackSmall: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	sums := make([]string, 200)
	for i := range sums {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, _, err := d.Put(ctx, bytes.NewReader([]byte(fmt.Sprintf("blob %d", i%150))), 0)
			if err != nil {
				t.Error(err)
			}
			sums[i] = s
		}(i)
	}
	wg.Wait()
	for i, s := range sums {
		if got := readAll(t, d, s); string(got) != fmt.Sprintf("blob %d", i%150) {
			t.Fatalf("blob %d: %q", i, got)
		}
	}
	if n := len(d.packs.index); n != 150 {
		t.Fatalf("%d records indexed, want 150 (same bytes kept once)", n)
	}
}
