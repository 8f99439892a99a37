package blobdir

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/gateway/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunBlobs(t, func(t *testing.T) store.Blobs {
		d, err := Open(filepath.Join(t.TempDir(), "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

func TestLayoutAndNoTempLeft(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "blobs")
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	sum, _, err := d.Put(ctx, bytes.NewReader([]byte("hello")), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(root, sum[:2], sum[2:4], sum)
	if b, err := os.ReadFile(want); err != nil || string(b) != "hello" {
		t.Fatalf("blob at %s: %q, %v", want, b, err)
	}
	if _, _, err := d.Put(ctx, bytes.NewReader([]byte("too long")), 3); err == nil {
		t.Fatal("no error for too large")
	}
	left, _ := os.ReadDir(filepath.Join(root, "tmp"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	// An existing blob is not rewritten: its inode stays the same.
	before, _ := os.Stat(want)
	if _, _, err := d.Put(ctx, bytes.NewReader([]byte("hello")), 0); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(want)
	if !os.SameFile(before, after) {
		t.Fatal("existing blob rewritten")
	}
}

func TestOpenRemovesAbandonedTemps(t *testing.T) {
	root := filepath.Join(t.TempDir(), "blobs")
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(root, "tmp", "put-old")
	fresh := filepath.Join(root, "tmp", "put-fresh")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("abandoned temp kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temp (a Put in progress) removed: %v", err)
	}
}
