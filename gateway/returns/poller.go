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

// BatchHandler is a Handler that also applies several messages at once,
// in order, with the contract of Processor.ProcessBatch: outs[i] for each
// message, the first n done, raws[n] failed with err. The Poller hands
// each chunk of a round to ProcessBatch when its Handler has it.
type BatchHandler interface {
	Handler
	ProcessBatch(ctx context.Context, raws [][]byte) (outs []Outcome, n int, err error)
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
	// They are fetched and processed together (BatchHandler), moved with
	// one MOVE per folder and the cursor is saved once.
	Batch int
	// MaxBatchBytes bounds the bytes of the messages fetched and processed
	// together (a round is split in chunks; a chunk holds at least one
	// message); default MaxMessageBytes.
	MaxBatchBytes int64
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
// Cursor after the messages are applied and moved, and the Handler is
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
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = o.MaxMessageBytes
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
// UID order, in chunks of at most MaxBatchBytes. more reports that the
// batch was full.
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
	if len(uids) == 0 {
		return more, nil
	}
	sz, err := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
	if err != nil {
		return false, fmt.Errorf("fetch sizes: %w", err)
	}
	sizes := make(map[imap.UID]int64, len(sz))
	for _, m := range sz {
		sizes[m.UID] = m.RFC822Size
	}
	for len(uids) > 0 {
		// A chunk: as many messages as fit in MaxBatchBytes, at least one.
		n, total := 0, int64(0)
		for n < len(uids) {
			s, ok := sizes[uids[n]]
			if ok && s <= p.o.MaxMessageBytes {
				if n > 0 && total+s > p.o.MaxBatchBytes {
					break
				}
				total += s
			}
			n++
		}
		if err := p.chunk(ctx, c, uids[:n], sizes, validity, last, processed, unparsable); err != nil {
			return false, err
		}
		uids = uids[n:]
	}
	return more, nil
}

// chunk fetches the messages of uids (BODY.PEEK[]: the \Seen flag is left
// alone), processes them in UID order as one batch, moves those done to
// their folder and saves the cursor after the last one done. A message
// whose processing fails stops the chunk there: it and the ones after it
// stay in the mailbox, before the cursor, and the error ends the session.
func (p *Poller) chunk(ctx context.Context, c *imapclient.Client, uids []imap.UID, sizes map[imap.UID]int64,
	validity uint32, last *uint32, processed, unparsable string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dest := make(map[imap.UID]string, len(uids)) // "" when the message is gone
	var want []imap.UID
	for _, uid := range uids {
		s, ok := sizes[uid]
		switch {
		case !ok: // expunged by someone else meanwhile
		case s > p.o.MaxMessageBytes:
			p.o.Logger.Warn("returns: message too large, moved without processing", "uid", uid,
				"size", s, "limit", p.o.MaxMessageBytes)
			dest[uid] = unparsable
		default:
			want = append(want, uid)
		}
	}
	raws := map[imap.UID][]byte{}
	if len(want) > 0 {
		section := &imap.FetchItemBodySection{Peek: true}
		msgs, err := c.Fetch(imap.UIDSetNum(want...),
			&imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		for _, m := range msgs {
			raws[m.UID] = m.FindBodySection(section)
		}
	}
	var order []imap.UID // messages to process, in UID order
	for _, uid := range want {
		if _, ok := raws[uid]; ok {
			order = append(order, uid)
		}
	}
	dup := map[imap.UID]bool{}
	failed, ferr := imap.UID(0), error(nil) // the first message not done
	for len(order) > 0 {
		batch := make([][]byte, len(order))
		for i, uid := range order {
			batch[i] = raws[uid]
		}
		outs, n, err := p.handle(ctx, batch)
		for i := 0; i < n; i++ {
			dest[order[i]] = processed
			if outs[i].Unparsable {
				dest[order[i]] = unparsable
			}
			dup[order[i]] = outs[i].Duplicate
		}
		if err == nil {
			break
		}
		if errors.Is(err, ErrTooLarge) {
			dest[order[n]] = unparsable
			order = order[n+1:]
			continue
		}
		failed, ferr = order[n], fmt.Errorf("message uid %d: %w", order[n], err)
		break
	}
	// Done: every uid before the failed one. Move them, then save the cursor.
	done := uids
	if ferr != nil {
		done = uids[:slices.Index(uids, failed)]
	}
	for _, folder := range []string{processed, unparsable} {
		var set []imap.UID
		for _, uid := range done {
			if dest[uid] == folder {
				set = append(set, uid)
			}
		}
		if len(set) == 0 {
			continue
		}
		if _, err := c.Move(imap.UIDSetNum(set...), folder).Wait(); err != nil {
			return fmt.Errorf("move %d message(s) to %s: %w", len(set), folder, err)
		}
	}
	if len(done) > 0 {
		*last = uint32(done[len(done)-1])
		if err := p.o.Cursor.Save(ctx, p.o.Mailbox, validity, *last); err != nil {
			return err
		}
	}
	for _, uid := range done { // counted once the messages are moved and the cursor saved
		switch dest[uid] {
		case processed:
			p.processed.Add(1)
		case unparsable:
			p.unparsable.Add(1)
		}
		if dup[uid] {
			p.duplicates.Add(1)
		}
	}
	return ferr
}

// handle processes raws in order with the Handler: as one batch when it
// is a BatchHandler, else one by one until one fails.
func (p *Poller) handle(ctx context.Context, raws [][]byte) ([]Outcome, int, error) {
	if bh, ok := p.o.Handler.(BatchHandler); ok {
		return bh.ProcessBatch(ctx, raws)
	}
	outs := make([]Outcome, len(raws))
	for i, raw := range raws {
		out, err := p.o.Handler.Process(ctx, raw)
		outs[i] = out
		if err != nil {
			return outs, i, err
		}
	}
	return outs, len(raws), nil
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
