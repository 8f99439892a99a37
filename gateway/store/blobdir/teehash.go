package blobdir

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/octgw/oct/gateway/store"
)

// teeChunk is the read size of teeHash; teeBuffers chunks are in flight.
const (
	teeChunk   = 256 << 10
	teeBuffers = 3
)

// teeHash is hashCopy for a reader that is not written anywhere but tee
// (Adopt): each chunk read from r is hashed by a second goroutine while it
// is written to tee, so that the sha256 and the consumer of tee (the intake
// validator) run side by side instead of one after the other. It reads at
// most maxBytes (<= 0: no limit); more is ErrTooLarge. sizeHint is the
// expected size (< 0: unknown): a file of less than one chunk is hashed in
// line, there is nothing to overlap. The hashing goroutine has ended when
// teeHash returns.
func teeHash(ctx context.Context, tee io.Writer, r io.Reader, maxBytes int64, sizeHint int64) (sum string, size int64, err error) {
	if tee == nil || (sizeHint >= 0 && sizeHint < teeChunk) {
		return hashCopy(ctx, tee, r, maxBytes) // one chunk: nothing to overlap
	}
	chunk := int64(teeChunk)
	h := sha256.New()
	free := make(chan []byte, teeBuffers)
	for range teeBuffers {
		free <- make([]byte, chunk)
	}
	toHash := make(chan []byte, teeBuffers)
	hashed := make(chan struct{})
	go func() {
		defer close(hashed)
		for b := range toHash {
			h.Write(b)
			free <- b[:cap(b)]
		}
	}()
	stop := sync.OnceFunc(func() {
		close(toHash)
		<-hashed
	})
	defer stop()

	src := r
	if maxBytes > 0 {
		src = io.LimitReader(r, maxBytes+1)
	}
	for {
		if err := ctx.Err(); err != nil {
			return "", 0, fmt.Errorf("blobdir: %w", err)
		}
		buf := <-free
		n, rerr := io.ReadFull(src, buf)
		if n > 0 {
			size += int64(n)
			toHash <- buf[:n] // read only, by both: reused once hashed and written
			if _, werr := tee.Write(buf[:n]); werr != nil {
				return "", 0, fmt.Errorf("blobdir: %w", werr)
			}
		} else {
			free <- buf
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return "", 0, fmt.Errorf("blobdir: %w", rerr)
		}
	}
	if maxBytes > 0 && size > maxBytes {
		return "", 0, fmt.Errorf("blobdir: more than %d bytes: %w", maxBytes, store.ErrTooLarge)
	}
	stop() // every chunk hashed
	return hex.EncodeToString(h.Sum(nil)), size, nil
}
