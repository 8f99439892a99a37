package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/octgw/oct/gateway/store"
)

// RunBlobs is the conformance suite of store.Blobs.
func RunBlobs(t *testing.T, open func(t *testing.T) store.Blobs) {
	ctx := context.Background()
	// Bytes that a careless implementation would change: CR LF, NUL, Latin-1
	// and UTF-8, trailing spaces, no final newline.
	raw := []byte("000\x00header  \r\nDUPONT\xe9 \xc3\xa9\r\n\x1a\xff   ")
	sumOf := func(b []byte) string {
		h := sha256.Sum256(b)
		return hex.EncodeToString(h[:])
	}
	read := func(t *testing.T, b store.Blobs, sum string) []byte {
		t.Helper()
		rc, err := b.Open(ctx, sum)
		if err != nil {
			t.Fatalf("Open(%s): %v", sum, err)
		}
		defer rc.Close()
		got, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	t.Run("RoundTrip", func(t *testing.T) {
		b := open(t)
		sum, size, err := b.Put(ctx, bytes.NewReader(raw), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if sum != sumOf(raw) || size != int64(len(raw)) {
			t.Fatalf("Put = %s, %d; want %s, %d", sum, size, sumOf(raw), len(raw))
		}
		if got := read(t, b, sum); !bytes.Equal(got, raw) {
			t.Fatalf("bytes changed:\n got  %q\n want %q", got, raw)
		}
		if ok, err := b.Has(ctx, sum); !ok || err != nil {
			t.Fatalf("Has = %v, %v", ok, err)
		}
		// Same bytes again: same sum, still readable.
		sum2, size2, err := b.Put(ctx, bytes.NewReader(raw), 1<<20)
		if err != nil || sum2 != sum || size2 != size {
			t.Fatalf("second Put = %s, %d, %v", sum2, size2, err)
		}
		if got := read(t, b, sum); !bytes.Equal(got, raw) {
			t.Fatalf("bytes changed after second Put")
		}
		// Empty blob.
		sum, size, err = b.Put(ctx, bytes.NewReader(nil), 10)
		if err != nil || size != 0 || sum != sumOf(nil) {
			t.Fatalf("empty Put = %s, %d, %v", sum, size, err)
		}
		if got := read(t, b, sum); len(got) != 0 {
			t.Fatalf("empty blob read %d bytes", len(got))
		}
	})

	t.Run("MaxBytes", func(t *testing.T) {
		b := open(t)
		data := bytes.Repeat([]byte("x"), 1000)
		if _, _, err := b.Put(ctx, bytes.NewReader(data), 999); !errors.Is(err, store.ErrTooLarge) {
			t.Fatalf("Put of 1000 bytes with max 999: %v, want ErrTooLarge", err)
		}
		if ok, _ := b.Has(ctx, sumOf(data)); ok {
			t.Fatalf("too large blob kept")
		}
		if _, _, err := b.Put(ctx, bytes.NewReader(data), 1000); err != nil {
			t.Fatalf("Put of exactly max bytes: %v", err)
		}
	})

	t.Run("Missing", func(t *testing.T) {
		b := open(t)
		missing := sumOf([]byte("never stored"))
		if _, err := b.Open(ctx, missing); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Open(missing) = %v, want ErrNotFound", err)
		}
		if ok, err := b.Has(ctx, missing); ok || err != nil {
			t.Errorf("Has(missing) = %v, %v", ok, err)
		}
		for _, bad := range []string{"", "../../etc/passwd", strings.Repeat("Z", 64), "abc"} {
			if rc, err := b.Open(ctx, bad); err == nil {
				rc.Close()
				t.Errorf("Open(%q) succeeded", bad)
			}
			if ok, _ := b.Has(ctx, bad); ok {
				t.Errorf("Has(%q) = true", bad)
			}
		}
	})

	t.Run("ReaderError", func(t *testing.T) {
		b := open(t)
		boom := errors.New("connection reset")
		r := io.MultiReader(bytes.NewReader(raw), errReader{boom})
		if _, _, err := b.Put(ctx, r, 0); !errors.Is(err, boom) {
			t.Fatalf("Put with a failing reader = %v, want %v", err, boom)
		}
		if ok, _ := b.Has(ctx, sumOf(raw)); ok {
			t.Fatalf("partial blob kept")
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := b.Put(cctx, bytes.NewReader(raw), 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("Put with a cancelled context = %v", err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		b := open(t)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				data := raw
				if i%2 == 1 {
					data = append([]byte{byte(i)}, raw...)
				}
				sum, _, err := b.Put(ctx, bytes.NewReader(data), 0)
				if err == nil && sum != sumOf(data) {
					err = errors.New("wrong sum " + sum)
				}
				if err != nil {
					errs <- err
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got := read(t, b, sumOf(raw)); !bytes.Equal(got, raw) {
			t.Fatalf("bytes changed under concurrent Puts")
		}
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
