package blobdir

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/octgw/oct/gateway/store"
)

func TestTeeHashMatchesTheBytes(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{0, 1, teeChunk - 1, teeChunk, teeChunk + 1, 3*teeChunk + 17, teeBuffers*teeChunk + teeChunk/2} {
		data := make([]byte, n)
		rand.Read(data)
		want := sha256.Sum256(data)
		// A right, a missing and a wrong size hint all give the same result.
		for _, hint := range []int64{int64(n), -1, 10} {
			var tee bytes.Buffer
			sum, size, err := teeHash(ctx, &tee, bytes.NewReader(data), 0, hint)
			if err != nil || sum != hex.EncodeToString(want[:]) || size != int64(n) || !bytes.Equal(tee.Bytes(), data) {
				t.Fatalf("n=%d hint=%d: sum %s size %d tee %d err %v", n, hint, sum, size, tee.Len(), err)
			}
		}
	}
}

func TestTeeHashLimitAndErrors(t *testing.T) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789"), teeChunk/5) // two chunks
	var tee bytes.Buffer
	if _, _, err := teeHash(ctx, &tee, bytes.NewReader(data), int64(len(data))-1, -1); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("one byte over the limit: %v", err)
	}
	if _, size, err := teeHash(ctx, io.Discard, bytes.NewReader(data), int64(len(data)), -1); err != nil || size != int64(len(data)) {
		t.Fatalf("exactly the limit: %d %v", size, err)
	}
	boom := errors.New("validator gone")
	if _, _, err := teeHash(ctx, failWriter{boom}, bytes.NewReader(data), 0, -1); !errors.Is(err, boom) {
		t.Fatalf("tee error: %v", err)
	}
	if _, _, err := teeHash(ctx, io.Discard, io.MultiReader(bytes.NewReader(data), failReader{boom}), 0, -1); !errors.Is(err, boom) {
		t.Fatalf("read error: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := teeHash(cctx, io.Discard, bytes.NewReader(data), 0, -1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestPutLargeBlobIntact(t *testing.T) {
	// Larger than writebackEvery: the write-out hints run along the way.
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 2*writebackEvery+12345)
	rand.Read(data)
	sum, size, err := d.Put(context.Background(), bytes.NewReader(data), 0)
	if err != nil || size != int64(len(data)) {
		t.Fatalf("put: %d %v", size, err)
	}
	if !bytes.Equal(readAll(t, d, sum), data) {
		t.Fatal("blob differs from what was put")
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

type failReader struct{ err error }

func (r failReader) Read([]byte) (int, error) { return 0, r.err }
