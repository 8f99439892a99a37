package gateway

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// TestFollowRing: writes of every size, wrapping around a small ring,
// arrive whole and in order, hashed on the reading side; an error closes
// both ends.
func TestFollowRing(t *testing.T) {
	data := make([]byte, 300_000)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rnd.IntN(256))
	}
	h := sha256.New()
	q := newFollowRing(make([]byte, 4099), h) // odd size: every write wraps somewhere
	got := make(chan []byte, 1)
	go func() {
		var out bytes.Buffer
		buf := make([]byte, 1000)
		for {
			n, err := q.Read(buf[:1+rnd.IntN(len(buf)-1)])
			out.Write(buf[:n])
			if err != nil {
				if !errors.Is(err, io.EOF) {
					out.Reset()
				}
				got <- out.Bytes()
				return
			}
		}
	}()
	wr := rand.New(rand.NewPCG(3, 4))
	for off := 0; off < len(data); {
		n := min(len(data)-off, 1+wr.IntN(9000)) // some larger than the ring
		if k, err := q.Write(data[off : off+n]); err != nil || k != n {
			t.Fatalf("write: %d %v", k, err)
		}
		off += n
	}
	if err := q.CloseWithError(nil); err != nil {
		t.Fatal(err)
	}
	out := <-got
	if !bytes.Equal(out, data) {
		t.Fatalf("read %d bytes, not the %d written in order", len(out), len(data))
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("the hash is not that of the bytes read")
	}

	// Aborted: a writer waiting for room is released with an error, the
	// reader gets the error after what is held.
	q = newFollowRing(make([]byte, 16), sha256.New())
	if _, err := q.Write(make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() { _, err := q.Write([]byte("more")); wrote <- err }()
	abort := errors.New("abort")
	q.CloseWithError(abort)
	if err := <-wrote; !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("writer after abort: %v", err)
	}
	n, err := q.Read(make([]byte, 64))
	if n != 16 || err != nil {
		t.Fatalf("held bytes: %d %v", n, err)
	}
	if _, err := q.Read(make([]byte, 64)); !errors.Is(err, abort) {
		t.Fatalf("reader after abort: %v", err)
	}
}
