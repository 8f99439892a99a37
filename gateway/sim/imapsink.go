package sim

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// IMAPSink delivers returns the way a caisse's mail would arrive: APPENDed
// into the OCT's return mailbox, where the gateway's IMAP poller picks them
// up. One connection per return keeps it simple and robust; the simulator
// does not need throughput here.
type IMAPSink struct {
	Addr     string
	TLS      *tls.Config // nil: plain IMAP (loopback tests only)
	Username string
	Password string
	Mailbox  string // default INBOX

	mu     sync.Mutex
	nextID atomic.Int64
}

// Deliver implements ReturnSink.
func (s *IMAPSink) Deliver(ctx context.Context, r Return) error {
	raw, err := r.Message(time.Now(), fmt.Sprintf("<sim-%d-%d@caisse.sim>", time.Now().UnixNano(), s.nextID.Add(1)))
	if err != nil {
		return err
	}
	s.mu.Lock() // returns are appended in order
	defer s.mu.Unlock()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("imap sink: %w", err)
	}
	if s.TLS != nil {
		conn = tls.Client(conn, s.TLS)
	}
	c := imapclient.New(conn, nil)
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.Login(s.Username, s.Password).Wait(); err != nil {
		return fmt.Errorf("imap sink: login: %w", err)
	}
	mb := s.Mailbox
	if mb == "" {
		mb = "INBOX"
	}
	cmd := c.Append(mb, int64(len(raw)), nil)
	if _, err := cmd.Write(raw); err != nil {
		cmd.Close()
		return fmt.Errorf("imap sink: append: %w", err)
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("imap sink: append: %w", err)
	}
	if _, err := cmd.Wait(); err != nil {
		return fmt.Errorf("imap sink: append: %w", err)
	}
	return c.Logout().Wait()
}

// DirSink writes each return's mail (.eml) into Dir atomically, for a
// simulator run without a mailbox.
type DirSink struct {
	Dir    string
	nextID atomic.Int64
}

// Deliver implements ReturnSink.
func (s *DirSink) Deliver(_ context.Context, r Return) error {
	n := s.nextID.Add(1)
	raw, err := r.Message(time.Now(), fmt.Sprintf("<sim-%d-%d@caisse.sim>", time.Now().UnixNano(), n))
	if err != nil {
		return err
	}
	name := filepath.Join(s.Dir, fmt.Sprintf("%s-%06d.eml", r.Kind, n))
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
