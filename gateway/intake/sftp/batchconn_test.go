package sftp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TestBatchConnKeepsEveryWriteWholeAndInOrder: concurrent writers, each
// write a numbered frame; the peer reads every frame whole (never two
// interleaved), each writer's frames in its order, and the bytes queued at
// Close all arrive before EOF.
func TestBatchConnKeepsEveryWriteWholeAndInOrder(t *testing.T) {
	a, z := tcpPair(t)
	bc := newBatchConn(a)
	const writers, frames = 8, 500
	got := make(chan error, 1)
	counts := make([]int, writers)
	go func() {
		defer z.Close()
		next := make([]uint32, writers)
		hdr := make([]byte, 12)
		for {
			if _, err := io.ReadFull(z, hdr); err != nil {
				if errors.Is(err, io.EOF) {
					got <- nil
				} else {
					got <- err
				}
				return
			}
			w, seq, n := binary.BigEndian.Uint32(hdr), binary.BigEndian.Uint32(hdr[4:]), binary.BigEndian.Uint32(hdr[8:])
			body := make([]byte, n)
			if _, err := io.ReadFull(z, body); err != nil {
				got <- err
				return
			}
			if w >= writers || seq != next[w] || !bytes.Equal(body, bytes.Repeat([]byte{byte(w)}, int(n))) {
				got <- errors.New("frame out of order or mixed with another")
				return
			}
			next[w]++
			counts[w]++
		}
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range frames {
				n := 1 + (seq*37+w*101)%3000
				frame := make([]byte, 12+n)
				binary.BigEndian.PutUint32(frame, uint32(w))
				binary.BigEndian.PutUint32(frame[4:], uint32(seq))
				binary.BigEndian.PutUint32(frame[8:], uint32(n))
				copy(frame[12:], bytes.Repeat([]byte{byte(w)}, n))
				if k, err := bc.Write(frame); err != nil || k != len(frame) {
					t.Errorf("write: %d %v", k, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := bc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	for w, c := range counts {
		if c != frames {
			t.Fatalf("writer %d: %d frames arrived, want %d", w, c, frames)
		}
	}
	select {
	case <-bc.done:
	default:
		t.Fatal("the sender goroutine still runs after Close")
	}
	if _, err := bc.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

// TestBatchConnPeerNotReading: queued bytes a peer never reads do not hold
// Close beyond its bound, and a failed send is returned by later writes.
func TestBatchConnPeerNotReading(t *testing.T) {
	a, z := net.Pipe() // synchronous: nothing is sent unless z reads
	defer z.Close()
	bc := newBatchConn(a)
	if _, err := bc.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err) // queued, not sent
	}
	closed := make(chan error, 1)
	start := time.Now()
	go func() { closed <- bc.Close() }()
	select {
	case <-closed:
	case <-time.After(batchCloseWait + 5*time.Second):
		t.Fatal("Close blocked on a peer that does not read")
	}
	if time.Since(start) < batchCloseWait/2 {
		t.Fatal("Close did not wait for the queued bytes")
	}

	// A peer gone: the send fails, and the next writes say so.
	a2, z2 := net.Pipe()
	bc2 := newBatchConn(a2)
	defer bc2.Close()
	z2.Close()
	if _, err := bc2.Write([]byte("x")); err != nil {
		t.Fatalf("first write is only queued: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for err == nil && time.Now().Before(deadline) {
		_, err = bc2.Write([]byte("x"))
		if err == nil {
			bc2.mu.Lock()
			for bc2.err == nil && len(bc2.queue) > 0 {
				bc2.cond.Wait() // the sender tried: wait for its result
			}
			bc2.mu.Unlock()
		}
	}
	if !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("writes to a closed peer: %v", err)
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		acc <- c
	}()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	z := <-acc
	if z == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); z.Close() })
	return a, z
}
