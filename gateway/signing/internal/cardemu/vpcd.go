package cardemu

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// vpcd control codes (a one-byte message from the reader).
const (
	ctrlOff   = 0
	ctrlOn    = 1
	ctrlReset = 2
	ctrlATR   = 4
)

// VPCD plugs a Card into pcscd's vpcd reader driver. vpcd listens; the card
// dials in ("inserts itself") and closing the connection removes it. Every
// message is a big-endian uint16 length and a payload: one byte is a
// control code, anything longer a command APDU answered by a response APDU.
type VPCD struct {
	Addr string // the vpcd slot, e.g. 127.0.0.1:35963
	Card *Card

	mu   sync.Mutex
	conn net.Conn
	done chan struct{} // closed when the serving goroutine ends
}

// Insert connects to vpcd, retrying until ctx ends (vpcd may not listen
// yet), and serves the card in a goroutine until Remove or Close.
func (v *VPCD) Insert(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.conn != nil {
		return nil
	}
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", v.Addr)
		if err == nil {
			v.conn = conn
			v.done = make(chan struct{})
			go v.serve(conn, v.done)
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(20 * time.Millisecond): // retry pacing, bounded by ctx
		}
	}
}

// Inserted reports whether the card is connected to vpcd.
func (v *VPCD) Inserted() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.conn != nil
}

// Remove closes the connection (the card is pulled out) and waits for the
// serving goroutine. The card's session state is reset.
func (v *VPCD) Remove() {
	v.mu.Lock()
	conn, done := v.conn, v.done
	v.conn, v.done = nil, nil
	v.mu.Unlock()
	if conn == nil {
		return
	}
	_ = conn.Close()
	<-done
	v.Card.Reset()
}

func (v *VPCD) serve(conn net.Conn, done chan struct{}) {
	defer close(done)
	defer func() {
		v.mu.Lock()
		if v.conn == conn { // vpcd hung up
			v.conn, v.done = nil, nil
		}
		v.mu.Unlock()
	}()
	var hdr [2]byte
	for {
		// vpcd writes the length and the payload in two send() calls
		// without TCP_NODELAY: with delayed ACKs here, every APDU would stall
		// ~40 ms. Re-arm TCP_QUICKACK before every read (the kernel clears it).
		quickAck(conn)
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		quickAck(conn)
		if _, err := io.ReadFull(conn, msg); err != nil {
			return
		}
		var out []byte
		if len(msg) == 1 {
			switch msg[0] {
			case ctrlOff, ctrlOn, ctrlReset:
				v.Card.Reset()
				continue
			case ctrlATR:
				out = ATR
			default:
				continue
			}
		} else {
			out = v.Card.Process(msg)
		}
		// One Write per reply, length and payload together.
		reply := make([]byte, 2+len(out))
		binary.BigEndian.PutUint16(reply, uint16(len(out)))
		copy(reply[2:], out)
		if _, err := conn.Write(reply); err != nil {
			return
		}
	}
}
