package returns

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/octgw/oct/internal/testenv"
)

const (
	imapUser = "oct@example.test"
	imapPass = "secret"
)

// memIMAP starts go-imap's in-memory server on 127.0.0.1:0 with one user
// and its INBOX, stopped when the test ends.
func memIMAP(t *testing.T, caps imap.CapSet) string {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(imapUser, imapPass)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
		Logger:       log.New(io.Discard, "", 0),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// imapClient logs in to addr as imapUser; closed when the test ends.
func imapClient(t *testing.T, addr string) *imapclient.Client {
	t.Helper()
	return imapClientAs(t, addr, imapUser, imapPass)
}

func imapClientAs(t *testing.T, addr, user, pass string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// appendMsg seeds a message by APPEND.
func appendMsg(t *testing.T, c *imapclient.Client, mailbox string, raw []byte) {
	t.Helper()
	cmd := c.Append(mailbox, int64(len(raw)), nil)
	if _, err := cmd.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

// count returns the number of messages in a mailbox (0 if it does not
// exist yet).
func count(t *testing.T, c *imapclient.Client, mailbox string) int {
	t.Helper()
	st, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		var ierr *imap.Error
		if errors.As(err, &ierr) {
			return 0
		}
		t.Fatal(err)
	}
	return int(*st.NumMessages)
}

// countingHandler wraps a Handler and counts calls per message content.
type countingHandler struct {
	h       Handler
	mu      sync.Mutex
	calls   map[string]int
	batches int
}

func newCounting(h Handler) *countingHandler { return &countingHandler{h: h, calls: map[string]int{}} }

func (c *countingHandler) Process(ctx context.Context, raw []byte) (Outcome, error) {
	s := sha256.Sum256(raw)
	c.mu.Lock()
	c.calls[hex.EncodeToString(s[:])]++
	c.mu.Unlock()
	return c.h.Process(ctx, raw)
}

// ProcessBatch counts each message and hands the batch on when the
// wrapped Handler takes batches.
func (c *countingHandler) ProcessBatch(ctx context.Context, raws [][]byte) ([]Outcome, int, error) {
	c.mu.Lock()
	c.batches++
	for _, raw := range raws {
		s := sha256.Sum256(raw)
		c.calls[hex.EncodeToString(s[:])]++
	}
	c.mu.Unlock()
	if bh, ok := c.h.(BatchHandler); ok {
		return bh.ProcessBatch(ctx, raws)
	}
	outs := make([]Outcome, len(raws))
	for i, raw := range raws {
		out, err := c.h.Process(ctx, raw)
		outs[i] = out
		if err != nil {
			return outs, i, err
		}
	}
	return outs, len(raws), nil
}

func (c *countingHandler) of(raw []byte) int {
	s := sha256.Sum256(raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[hex.EncodeToString(s[:])]
}

// runPoller starts p.Run; the returned stop cancels it and waits for Run to
// return (failing the test if it does not within 10 s).
func runPoller(t *testing.T, p *Poller) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("poller did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond (bounded).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	if err := testenv.Poll(ctx, 5*time.Millisecond, func() (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// serverName turns "OCT/processed" into the server's hierarchy.
func serverName(t *testing.T, c *imapclient.Client, name string) string {
	t.Helper()
	ls, err := c.List("", "", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) == 0 || ls[0].Delim == 0 {
		return name
	}
	return strings.ReplaceAll(name, "/", string(ls[0].Delim))
}
