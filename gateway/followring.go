package gateway

import (
	"hash"
	"io"
	"sync"
)

// followRing carries a followed upload's bytes from the upload's writes to
// the validation goroutine, and hashes them there: the writer only copies
// (≈ 2 µs for 32 KiB) and goes on with the upload, while SHA-256 and the
// validation run on the other side, on bytes still in cache. The ring
// holds at most ringSize bytes; a writer finding it full waits (the upload
// goes at the pace of the validation). An io.Pipe would make every write
// wait for the validator to take it, and the upload serialises its writes:
// each write would cost the validation of the previous one.
type followRing struct {
	mu       sync.Mutex
	notEmpty sync.Cond
	notFull  sync.Cond
	buf      []byte
	r, n     int   // read position, bytes held
	err      error // set by CloseWithError: io.EOF for a clean end
	h        hash.Hash
}

// ringSize is the ring of one followed upload: 32 SFTP writes.
const ringSize = 1 << 20

// newFollowRing returns a ring on buf hashing what is read into h.
func newFollowRing(buf []byte, h hash.Hash) *followRing {
	q := &followRing{buf: buf, h: h}
	q.notEmpty.L = &q.mu
	q.notFull.L = &q.mu
	return q
}

// Write copies p into the ring, waiting for room.
func (q *followRing) Write(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	done := 0
	for len(p) > 0 {
		for q.n == len(q.buf) && q.err == nil {
			q.notFull.Wait()
		}
		if q.err != nil {
			return done, io.ErrClosedPipe
		}
		w := (q.r + q.n) % len(q.buf)
		k := copy(q.buf[w:min(len(q.buf), w+len(q.buf)-q.n)], p)
		q.n += k
		done += k
		p = p[k:]
		q.notEmpty.Signal()
	}
	return done, nil
}

// Read gives the next bytes to the validator and hashes them.
func (q *followRing) Read(b []byte) (int, error) {
	q.mu.Lock()
	for q.n == 0 && q.err == nil {
		q.notEmpty.Wait()
	}
	if q.n == 0 {
		err := q.err
		q.mu.Unlock()
		return 0, err
	}
	k := copy(b, q.buf[q.r:min(len(q.buf), q.r+q.n)])
	q.r = (q.r + k) % len(q.buf)
	q.n -= k
	q.notFull.Signal()
	q.mu.Unlock()
	q.h.Write(b[:k])
	return k, nil
}

// CloseWithError ends the stream: the reader gets what is held then err
// (io.EOF when err is nil); writers get io.ErrClosedPipe.
func (q *followRing) CloseWithError(err error) error {
	if err == nil {
		err = io.EOF
	}
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	q.notEmpty.Broadcast()
	q.notFull.Broadcast()
	q.mu.Unlock()
	return nil
}
