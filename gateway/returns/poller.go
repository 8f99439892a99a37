package returns

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Handler processes one raw message (Processor implements it).
type Handler interface {
	Process(ctx context.Context, raw []byte) (Outcome, error)
}

// TLS modes of the IMAP connection.
const (
	TLSNone     = "none"     // plain IMAP: loopback and tests only
	TLSImplicit = "tls"      // IMAPS (port 993)
	TLSStartTLS = "starttls" // IMAP + STARTTLS (port 143)
)

// PollerOptions configure a Poller. Addr, Username, Handler and Cursor are
// required.
type PollerOptions struct {
	Addr      string      // host:port of the IMAP server
	TLS       string      // TLSNone, TLSImplicit or TLSStartTLS (default TLSImplicit)
	TLSConfig *tls.Config // for TLSImplicit and TLSStartTLS
	Username  string
	Password  string

	Mailbox    string // watched mailbox (default "INBOX")
	Processed  string // where processed messages go (default "OCT/processed")
	Unparsable string // where undecodable and oversized messages go (default "OCT/unparsable")

	// Interval between checks when the server has no IDLE (or NoIdle is
	// set); default 30s.
	Interval time.Duration
	// NoIdle polls every Interval even when the server offers IDLE.
	NoIdle bool
	// IdleRecheck bounds one IDLE wait: the mailbox is searched again after
	// it even without news (default 5m; go-imap renews IDLE every 28m).
	IdleRecheck time.Duration
	// Batch bounds the messages handled per search round (default 50).
	Batch int
	// MaxMessageBytes: a larger message is not fetched; it is moved to the
	// unparsable folder (default 64 MiB).
	MaxMessageBytes int64
	// Backoff after a failed session, doubled up to BackoffMax (defaults 1s
	// and 1m).
	Backoff, BackoffMax time.Duration
	DialTimeout         time.Duration // default 10s

	Handler Handler
	Cursor  Cursor
	Logger  *slog.Logger
}

// PollerStats count what a Poller did since it was made.
type PollerStats struct {
	Sessions   int64 // successful logins
	Rounds     int64 // searches of the mailbox
	Idles      int64 // IDLE commands started
	Processed  int64 // messages moved to Processed
	Unparsable int64 // messages moved to Unparsable
	Duplicates int64 // messages found already applied (content idempotency)
	Failures   int64 // sessions ended by an error
}

// Poller watches an IMAP mailbox and hands every new message to its
// Handler, once: the UIDVALIDITY and last UID processed are saved in the
// Cursor after each message is applied and moved, and the Handler is
// idempotent on content, so a restart or a UIDVALIDITY change never applies
// a message twice.
type Poller struct {
	o PollerOptions

	sessions, rounds, idles, processed, unparsable, duplicates, failures atomic.Int64
}

// NewPoller checks o and fills its defaults.
func NewPoller(o PollerOptions) (*Poller, error) {
	if o.Addr == "" || o.Username == "" || o.Handler == nil || o.Cursor == nil {
		return nil, errors.New("returns: poller needs Addr, Username, Handler and Cursor")
	}
	switch o.TLS {
	case "":
		o.TLS = TLSImplicit
	case TLSNone, TLSImplicit, TLSStartTLS:
	default:
		return nil, fmt.Errorf("returns: unknown TLS mode %q", o.TLS)
	}
	if o.Mailbox == "" {
		o.Mailbox = "INBOX"
	}
	if o.Processed == "" {
		o.Processed = "OCT/processed"
	}
	if o.Unparsable == "" {
		o.Unparsable = "OCT/unparsable"
	}
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.IdleRecheck <= 0 {
		o.IdleRecheck = 5 * time.Minute
	}
	if o.Batch <= 0 {
		o.Batch = 50
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 64 << 20
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.BackoffMax < o.Backoff {
		o.BackoffMax = max(time.Minute, o.Backoff)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Poller{o: o}, nil
}

// Stats returns the counters.
func (p *Poller) Stats() PollerStats {
	return PollerStats{Sessions: p.sessions.Load(), Rounds: p.rounds.Load(), Idles: p.idles.Load(),
		Processed: p.processed.Load(), Unparsable: p.unparsable.Load(), Duplicates: p.duplicates.Load(),
		Failures: p.failures.Load()}
}

// Run polls until ctx ends, reconnecting with backoff after errors, and
// returns nil then; every goroutine it started has stopped by then.
func (p *Poller) Run(ctx context.Context) error {
	backoff := p.o.Backoff
	for ctx.Err() == nil {
		progressed, err := p.session(ctx)
		if ctx.Err() != nil {
			break
		}
		p.failures.Add(1)
		if progressed {
			backoff = p.o.Backoff
		}
		p.o.Logger.Warn("returns: IMAP session ended", "addr", p.o.Addr, "error", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(backoff*2, p.o.BackoffMax)
	}
	return nil
}

func (p *Poller) dial(ctx context.Context, opts *imapclient.Options) (*imapclient.Client, error) {
	d := &net.Dialer{Timeout: p.o.DialTimeout}
	switch p.o.TLS {
	case TLSImplicit:
		cfg := p.o.TLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(p.o.Addr)
		}
		conn, err := (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, "tcp", p.o.Addr)
		if err != nil {
			return nil, err
		}
		return imapclient.New(conn, opts), nil
	case TLSStartTLS:
		conn, err := d.DialContext(ctx, "tcp", p.o.Addr)
		if err != nil {
			return nil, err
		}
		opts.TLSConfig = p.o.TLSConfig
		c, err := imapclient.NewStartTLS(conn, opts)
		if err != nil {
			conn.Close()
			return nil, err
		}
		return c, nil
	}
	conn, err := d.DialContext(ctx, "tcp", p.o.Addr)
	if err != nil {
		return nil, err
	}
	return imapclient.New(conn, opts), nil
}

// session is one connection: log in, make the folders, select the
// mailbox, then rounds of search-and-process separated by IDLE or the
// polling interval. progressed reports whether it got as far as a round.
func (p *Poller) session(ctx context.Context) (progressed bool, err error) {
	wake := make(chan struct{}, 1)
	opts := &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		},
	}}
	c, err := p.dial(ctx, opts)
	if err != nil {
		return false, fmt.Errorf("dial: %w", err)
	}
	// The watcher closes the connection when ctx ends, which unblocks any
	// command in flight; it is stopped and waited for on return.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			_ = c.Close()
		case <-stop:
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
		_ = c.Close()
	}()

	if err := c.WaitGreeting(); err != nil {
		return false, fmt.Errorf("greeting: %w", err)
	}
	if err := c.Login(p.o.Username, p.o.Password).Wait(); err != nil {
		return false, fmt.Errorf("login: %w", err)
	}
	p.sessions.Add(1)
	processed, unparsable, err := p.folders(c)
	if err != nil {
		return false, err
	}
	sel, err := c.Select(p.o.Mailbox, nil).Wait()
	if err != nil {
		return false, fmt.Errorf("select %s: %w", p.o.Mailbox, err)
	}
	validity, last, err := p.o.Cursor.Load(ctx, p.o.Mailbox)
	if err != nil {
		return false, err
	}
	if validity != sel.UIDValidity {
		if validity != 0 {
			p.o.Logger.Warn("returns: UIDVALIDITY changed, scanning the mailbox again (content idempotency applies)",
				"mailbox", p.o.Mailbox, "old", validity, "new", sel.UIDValidity)
		}
		validity, last = sel.UIDValidity, 0
		if err := p.o.Cursor.Save(ctx, p.o.Mailbox, validity, last); err != nil {
			return false, err
		}
	}
	idle := !p.o.NoIdle && c.Caps().Has(imap.CapIdle)
	for ctx.Err() == nil {
		select { // news that arrived before this round is covered by it
		case <-wake:
		default:
		}
		more, err := p.round(ctx, c, validity, &last, processed, unparsable)
		if err != nil {
			return true, err
		}
		progressed = true
		if more {
			continue
		}
		if idle {
			if err := p.idle(ctx, c, wake); err != nil {
				return true, err
			}
			continue
		}
		t := time.NewTimer(p.o.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	return progressed, ctx.Err()
}

// folders creates the processed and unparsable folders (with the server's
// hierarchy delimiter in place of "/") and returns their names.
func (p *Poller) folders(c *imapclient.Client) (string, string, error) {
	delim := '/'
	if ls, err := c.List("", "", nil).Collect(); err == nil && len(ls) > 0 && ls[0].Delim != 0 {
		delim = ls[0].Delim
	}
	var names [2]string
	for i, n := range []string{p.o.Processed, p.o.Unparsable} {
		n = strings.ReplaceAll(n, "/", string(delim))
		names[i] = n
		err := c.Create(n, nil).Wait()
		var ierr *imap.Error
		if err != nil && !(errors.As(err, &ierr) && ierr.Code == imap.ResponseCodeAlreadyExists) {
			return "", "", fmt.Errorf("create %s: %w", n, err)
		}
	}
	return names[0], names[1], nil
}

// round searches the UIDs after *last and handles up to Batch of them in
// UID order. more reports that the batch was full.
func (p *Poller) round(ctx context.Context, c *imapclient.Client, validity uint32, last *uint32, processed, unparsable string) (more bool, err error) {
	p.rounds.Add(1)
	crit := &imap.SearchCriteria{UID: []imap.UIDSet{{imap.UIDRange{Start: imap.UID(*last + 1), Stop: 0}}}}
	data, err := c.UIDSearch(crit, nil).Wait()
	if err != nil {
		return false, fmt.Errorf("search: %w", err)
	}
	var uids []imap.UID
	for _, u := range data.AllUIDs() {
		if uint32(u) > *last { // "n:*" also matches the highest UID when it is below n
			uids = append(uids, u)
		}
	}
	slices.Sort(uids)
	if len(uids) > p.o.Batch {
		uids, more = uids[:p.o.Batch], true
	}
	for _, uid := range uids {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		dest, dup, err := p.message(ctx, c, uid, processed, unparsable)
		if err != nil {
			return false, fmt.Errorf("message uid %d: %w", uid, err)
		}
		if dest != "" {
			if _, err := c.Move(imap.UIDSetNum(uid), dest).Wait(); err != nil {
				return false, fmt.Errorf("move uid %d to %s: %w", uid, dest, err)
			}
		}
		*last = uint32(uid)
		if err := p.o.Cursor.Save(ctx, p.o.Mailbox, validity, *last); err != nil {
			return false, err
		}
		switch dest { // counted once the message is moved and the cursor saved
		case processed:
			p.processed.Add(1)
		case unparsable:
			p.unparsable.Add(1)
		}
		if dup {
			p.duplicates.Add(1)
		}
	}
	return more, nil
}

// message fetches one message (BODY.PEEK[]: the \Seen flag is left alone)
// and processes it. It returns the folder to move it to ("" when the
// message is gone) and whether it had been applied before.
func (p *Poller) message(ctx context.Context, c *imapclient.Client, uid imap.UID, processed, unparsable string) (string, bool, error) {
	set := imap.UIDSetNum(uid)
	sz, err := c.Fetch(set, &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
	if err != nil {
		return "", false, fmt.Errorf("fetch size: %w", err)
	}
	if len(sz) == 0 {
		return "", false, nil // expunged by someone else meanwhile
	}
	if sz[0].RFC822Size > p.o.MaxMessageBytes {
		p.o.Logger.Warn("returns: message too large, moved without processing", "uid", uid,
			"size", sz[0].RFC822Size, "limit", p.o.MaxMessageBytes)
		return unparsable, false, nil
	}
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		return "", false, fmt.Errorf("fetch: %w", err)
	}
	if len(msgs) == 0 {
		return "", false, nil
	}
	out, err := p.o.Handler.Process(ctx, msgs[0].FindBodySection(section))
	if errors.Is(err, ErrTooLarge) {
		return unparsable, false, nil
	}
	if err != nil {
		return "", false, err
	}
	if out.Unparsable {
		return unparsable, out.Duplicate, nil
	}
	return processed, out.Duplicate, nil
}

// idle waits in IDLE for news (EXISTS), IdleRecheck or the end of ctx.
func (p *Poller) idle(ctx context.Context, c *imapclient.Client, wake <-chan struct{}) error {
	cmd, err := c.Idle()
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	p.idles.Add(1)
	t := time.NewTimer(p.o.IdleRecheck)
	defer t.Stop()
	select {
	case <-wake:
	case <-t.C:
	case <-ctx.Done():
	}
	cerr := cmd.Close()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if cerr != nil {
		return fmt.Errorf("idle done: %w", cerr)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	return nil
}
