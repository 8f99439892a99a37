package sftp

import (
	"net"
	"sync"
	"time"
)

// batchConn sits between the SSH transport and the TCP connection and
// sends the transport's writes in batches. x/crypto/ssh writes and flushes
// every SSH packet on its own; during an upload the server's packets are
// small and many (an SFTP status for each 32 KiB written, a window
// adjustment every few packets: about 1,100 per 25 MiB), and each write is
// a syscall plus, on loopback, the whole TCP receive path run on the
// sender's CPU. OpenSSH's sshd gathers its output and writes it once per
// loop; batchConn does the same: Write queues the bytes, one goroutine
// sends everything queued in one write. Busy, it sends dozens of packets
// per syscall; idle, a packet goes at once (the cost is one goroutine
// wake-up). Written in-house: this is the few lines net.Buffers would be if
// it did not need a goroutine to know when to flush.
//
// A write error is kept and returned by every later Write. At most
// maxQueued bytes wait: more and Write blocks until they are sent, so a
// client that stops reading stalls the server as a plain connection would
// (the write deadline set on the connection bounds it). Close sends what
// is queued (bounded by batchCloseWait), then closes the connection; the
// sending goroutine has ended when Close returns.
type batchConn struct {
	net.Conn

	mu     sync.Mutex
	cond   *sync.Cond // queue drained, or failed, or closing
	queue  []byte
	spare  []byte
	err    error
	closed bool

	kick chan struct{} // something queued (capacity 1)
	done chan struct{} // sender ended
	once sync.Once
}

const (
	maxQueued      = 1 << 20
	batchCloseWait = time.Second
)

func newBatchConn(c net.Conn) *batchConn {
	b := &batchConn{Conn: c, kick: make(chan struct{}, 1), done: make(chan struct{})}
	b.cond = sync.NewCond(&b.mu)
	go b.send()
	return b
}

// Write implements net.Conn: p is queued, and sent by the sender goroutine.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	for len(b.queue) >= maxQueued && b.err == nil && !b.closed {
		b.cond.Wait()
	}
	switch {
	case b.err != nil:
		err := b.err
		b.mu.Unlock()
		return 0, err
	case b.closed:
		b.mu.Unlock()
		return 0, net.ErrClosed
	}
	b.queue = append(b.queue, p...)
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default: // already kicked: the sender will take these bytes too
	}
	return len(p), nil
}

// send writes whatever is queued, in one write, until the connection is
// closed (and what was queued sent) or a write fails.
func (b *batchConn) send() {
	defer close(b.done)
	for {
		b.mu.Lock()
		for len(b.queue) == 0 && !b.closed && b.err == nil {
			b.mu.Unlock()
			<-b.kick
			b.mu.Lock()
		}
		if b.err != nil || len(b.queue) == 0 { // failed, or closed with nothing left
			b.mu.Unlock()
			return
		}
		out := b.queue
		b.queue = b.spare[:0]
		b.mu.Unlock()

		_, err := b.Conn.Write(out)

		b.mu.Lock()
		b.spare = out[:0]
		if err != nil && b.err == nil {
			b.err = err
		}
		b.cond.Broadcast()
		b.mu.Unlock()
	}
}

// Close sends what is queued, then closes the connection.
func (b *batchConn) Close() error {
	var err error
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.cond.Broadcast()
		b.mu.Unlock()
		select {
		case b.kick <- struct{}{}:
		default:
		}
		// A peer that does not read would hold the last write forever.
		_ = b.Conn.SetWriteDeadline(time.Now().Add(batchCloseWait))
		<-b.done
		err = b.Conn.Close()
	})
	return err
}
