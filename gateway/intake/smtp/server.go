// Package smtp is OCT's SMTP intake: a go-smtp server that requires
// STARTTLS before AUTH PLAIN, takes IRIS/B2 messages (application/EDI-consent
// parts, base64, gzip when "/Z", optionally S/MIME enveloped to the OCT)
// and passes each B2 file to the gateway's Intake. It answers 250 only once
// every file of the message is durable, 451 when the gateway cannot take it
// now, and 5xx with the reason when the message is invalid.
package smtp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/intake/mailbox"
	"github.com/octgw/oct/gateway/intake/penalty"
)

// Intaker is the gateway's single intake entry. It returns only once the
// raw bytes and the file row are durable.
type Intaker interface {
	Intake(ctx context.Context, tenant string, src gateway.Source, r io.Reader) (gateway.Ack, error)
}

// Tenants checks AUTH PLAIN credentials. It returns the tenant id, or an
// error wrapping ErrBadCredentials (unknown user, wrong password, disabled
// tenant); any other error is treated as temporary (454).
type Tenants interface {
	CheckPassword(ctx context.Context, user, pass string) (tenantID string, err error)
}

// Errors (errors.Is).
var (
	ErrBadCredentials = errors.New("smtp: bad credentials")
	ErrClosed         = errors.New("smtp: server closed")
)

// Config configures a Server. TLS, Tenants and Intaker are required; zero
// values take the defaults in brackets.
type Config struct {
	TLS       *tls.Config      // certificate for STARTTLS (required)
	Tenants   Tenants          // AUTH PLAIN
	Intaker   Intaker          // gateway.Intake
	Decrypter *Decrypter       // the OCT's certificate and key for S/MIME [encrypted messages refused]
	Folders   *mailbox.Folders // when set, each acknowledgement is also written to the tenant's outbox/
	Logger    *slog.Logger     // [discard]
	Now       func() time.Time // [time.Now]
	Domain    string           // name in the greeting [localhost]

	MaxMessageBytes int64         // whole message as sent [32 MiB]
	MaxFileSize     int64         // one decoded B2 file [64 MiB]
	MaxParts        int           // B2 parts per message [20]
	MaxRecipients   int           // RCPT per message [10]
	MaxMessages     int           // messages per connection [100]
	MaxConns        int           // connections, all tenants [128]
	ReadTimeout     time.Duration // per command and data chunk [2m]
	WriteTimeout    time.Duration // [2m]
	MaxConnDuration time.Duration // whole connection [30m]
	AuthDelay       time.Duration // after one failed AUTH from an address [500ms]; doubles per failure
	MaxAuthDelay    time.Duration // bound [15s]
}

// Server is the SMTP intake server.
type Server struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	served atomic.Bool

	wg      sync.WaitGroup
	running atomic.Int64 // our goroutines not yet ended (tests)

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	l     net.Listener
	fails *penalty.Table
}

// New checks cfg and returns a server. Nothing runs until Serve.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.TLS == nil:
		return nil, errors.New("smtp: no TLS config: STARTTLS is required")
	case cfg.Tenants == nil:
		return nil, errors.New("smtp: no tenants")
	case cfg.Intaker == nil:
		return nil, errors.New("smtp: no intaker")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	defI := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 32 << 20
	}
	if cfg.MaxFileSize <= 0 {
		cfg.MaxFileSize = 64 << 20
	}
	defI(&cfg.MaxParts, 20)
	defI(&cfg.MaxRecipients, 10)
	defI(&cfg.MaxMessages, 100)
	defI(&cfg.MaxConns, 128)
	defD(&cfg.ReadTimeout, 2*time.Minute)
	defD(&cfg.WriteTimeout, 2*time.Minute)
	defD(&cfg.MaxConnDuration, 30*time.Minute)
	defD(&cfg.AuthDelay, 500*time.Millisecond)
	defD(&cfg.MaxAuthDelay, 15*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, log: cfg.Logger.With("component", "intake/smtp"),
		ctx: ctx, cancel: cancel,
		conns: make(map[net.Conn]struct{}),
		fails: penalty.New(cfg.AuthDelay, cfg.MaxAuthDelay, time.Hour, 10000),
	}, nil
}

// Serve accepts connections on l until ctx is done or Close is called, then
// closes l and every connection and returns once every goroutine started
// for it (ours and go-smtp's) has ended. Serve may be called once.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if !s.served.CompareAndSwap(false, true) {
		return errors.New("smtp: Serve called twice")
	}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		l.Close()
		return ErrClosed
	}
	s.l = l
	s.mu.Unlock()

	srv := smtp.NewServer(&backend{s})
	srv.Domain = s.cfg.Domain
	srv.TLSConfig = s.cfg.TLS
	srv.AllowInsecureAuth = false
	srv.MaxMessageBytes = s.cfg.MaxMessageBytes
	srv.MaxRecipients = s.cfg.MaxRecipients
	srv.ReadTimeout = s.cfg.ReadTimeout
	srv.WriteTimeout = s.cfg.WriteTimeout
	srv.ErrorLog = log.New(slogWriter{s.log}, "", 0)

	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()

	served := make(chan error, 1)
	s.spawn(func() { served <- srv.Serve(&listener{Listener: l, s: s}) })
	var err error
	select {
	case err = <-served:
		if s.ctx.Err() != nil {
			err = nil
		}
	case <-s.ctx.Done():
	}
	s.Close()
	// Shutdown closes the listener and waits for go-smtp's connection
	// goroutines; Close above closed their connections.
	if serr := srv.Shutdown(context.Background()); serr != nil && !errors.Is(serr, smtp.ErrServerClosed) && err == nil && s.ctx.Err() == nil {
		err = serr
	}
	s.wg.Wait()
	return err
}

// Close stops the server: the listener and every connection are closed and
// intakes in progress are cancelled (they answer 451). Serve returns once
// all is done.
func (s *Server) Close() error {
	s.cancel()
	s.mu.Lock()
	l := s.l
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if l != nil {
		l.Close()
	}
	for _, c := range conns { // conn.Close takes s.mu
		c.Close()
	}
	return nil
}

func (s *Server) spawn(f func()) {
	s.wg.Add(1)
	s.running.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.running.Add(-1)
		f()
	}()
}

// listener tracks connections so that Close can cut them, and bounds their
// number and duration.
type listener struct {
	net.Listener
	s *Server
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		s := l.s
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			c.Close()
			return nil, net.ErrClosed
		}
		if len(s.conns) >= s.cfg.MaxConns {
			s.mu.Unlock()
			s.log.Warn("smtp connection refused: server full", "remote", c.RemoteAddr().String())
			_, _ = io.WriteString(c, "421 4.3.2 Too many connections, try again later\r\n")
			c.Close()
			continue
		}
		tc := &conn{Conn: c, s: s, done: make(chan struct{})}
		s.conns[tc] = struct{}{}
		s.mu.Unlock()
		// Duration bound: a watchdog per connection, ended with it.
		s.spawn(func() {
			t := time.NewTimer(s.cfg.MaxConnDuration)
			defer t.Stop()
			select {
			case <-t.C:
				s.log.Info("smtp connection closed: duration limit", "remote", c.RemoteAddr().String())
				tc.Close()
			case <-tc.done:
			}
		})
		return tc, nil
	}
}

type conn struct {
	net.Conn
	s    *Server
	once sync.Once
	done chan struct{}
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		close(c.done)
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return err
}

// slogWriter sends go-smtp's own log lines to the logger.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Info("smtp server", "msg", string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

type backend struct{ s *Server }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, c: c, remote: c.Conn().RemoteAddr().String()}, nil
}

// session is one SMTP connection.
type session struct {
	s      *Server
	c      *smtp.Conn
	remote string
	tenant string
	rcpts  int
	msgs   int
}

var _ smtp.AuthSession = (*session)(nil)

func (se *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (se *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	if _, ok := se.c.TLSConnectionState(); !ok {
		return nil, errTLSRequired
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		return se.login(identity, user, pass)
	}), nil
}

func (se *session) login(identity, user, pass string) error {
	s := se.s
	addr := se.remote
	if h, _, err := net.SplitHostPort(addr); err == nil {
		addr = h
	}
	s.mu.Lock()
	d := s.fails.Delay(addr, s.cfg.Now())
	s.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return errShuttingDown
		}
	}
	var tenant string
	err := ErrBadCredentials
	if identity == "" || identity == user {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ReadTimeout)
		tenant, err = s.cfg.Tenants.CheckPassword(ctx, user, pass)
		cancel()
	}
	if err != nil {
		if !errors.Is(err, ErrBadCredentials) {
			s.log.Error("smtp auth: cannot check credentials", "remote", se.remote, "err", err)
			return errAuthTemp
		}
		s.mu.Lock()
		n := s.fails.Fail(addr, s.cfg.Now())
		s.mu.Unlock()
		s.log.Warn("smtp login failed", "remote", se.remote, "failures", n)
		return smtp.ErrAuthFailed
	}
	s.mu.Lock()
	s.fails.OK(addr)
	s.mu.Unlock()
	se.tenant = tenant
	s.log.Info("smtp login", "tenant", tenant, "remote", se.remote)
	return nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if _, ok := se.c.TLSConnectionState(); !ok {
		return errTLSRequired
	}
	if se.tenant == "" {
		return smtp.ErrAuthRequired
	}
	if se.msgs >= se.s.cfg.MaxMessages {
		return errTooManyMessages
	}
	se.rcpts = 0
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if se.tenant == "" {
		return smtp.ErrAuthRequired
	}
	se.rcpts++
	if se.rcpts > se.s.cfg.MaxRecipients {
		return errTooManyRecipients
	}
	return nil
}

func (se *session) Data(r io.Reader) error {
	if se.tenant == "" {
		return smtp.ErrAuthRequired
	}
	se.msgs++
	s := se.s
	parts, err := Extract(r, ExtractOptions{MaxFileSize: s.cfg.MaxFileSize, MaxParts: s.cfg.MaxParts, Decrypter: s.cfg.Decrypter})
	if err != nil {
		reply := replyFor(err)
		s.log.Warn("smtp message refused", "tenant", se.tenant, "remote", se.remote, "code", reply.Code, "reason", reply.Message)
		return reply
	}
	// Every part is decoded before any is taken in, so an invalid message
	// takes nothing in. A 451 after some parts were taken in makes the
	// client resend them: the gateway acknowledges those as duplicates.
	ids := make([]string, 0, len(parts))
	for _, p := range parts {
		src := gateway.Source{Channel: "smtp", Name: p.Name, Remote: se.remote}
		ack, err := s.cfg.Intaker.Intake(s.ctx, se.tenant, src, bytes.NewReader(p.Data))
		if err != nil {
			reply := replyFor(err)
			s.log.Warn("smtp file not taken in", "tenant", se.tenant, "remote", se.remote, "code", reply.Code, "taken_in_before", len(ids), "err", err)
			return reply
		}
		ids = append(ids, ack.ID)
		s.writeAck(se.tenant, p.Name, ack)
		s.log.Info("smtp file taken in", "tenant", se.tenant, "remote", se.remote, "id", ack.ID, "status", ack.Status, "size", ack.Size, "encrypted", p.Encrypted, "duplicate", ack.Duplicate)
	}
	return nil
}

func (se *session) Reset()        { se.rcpts = 0 }
func (se *session) Logout() error { return nil }

// Replies.
var (
	errTLSRequired       = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	errAuthTemp          = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure"}
	errShuttingDown      = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Shutting down, try again later"}
	errTooManyRecipients = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "Too many recipients"}
	errTooManyMessages   = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many messages on this connection, reconnect"}
)

func isDataTooLarge(err error) bool { return errors.Is(err, smtp.ErrDataTooLarge) }

// replyFor maps an extraction or intake error to the SMTP reply.
func replyFor(err error) *smtp.SMTPError {
	e := func(code int, enh smtp.EnhancedCode, msg string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
	}
	switch {
	case isDataTooLarge(err):
		return smtp.ErrDataTooLarge
	case errors.Is(err, ErrTooLarge), errors.Is(err, gateway.ErrTooLarge):
		return e(552, smtp.EnhancedCode{5, 3, 4}, "B2 file too large")
	case errors.Is(err, ErrTooMany):
		return e(554, smtp.EnhancedCode{5, 6, 0}, fmt.Sprintf("Too many EDI parts in one message"))
	case errors.Is(err, ErrNoEDIPart):
		return e(554, smtp.EnhancedCode{5, 6, 0}, "No application/EDI-consent part in the message")
	case errors.Is(err, ErrBadBase64):
		return e(554, smtp.EnhancedCode{5, 6, 0}, "Bad base64 in the EDI part")
	case errors.Is(err, ErrBadGzip):
		return e(554, smtp.EnhancedCode{5, 6, 0}, "Bad gzip in the EDI part (Content-Description ends in /Z)")
	case errors.Is(err, ErrDecrypt):
		return e(554, smtp.EnhancedCode{5, 7, 5}, "Cannot decrypt the S/MIME part (must be enveloped to the OCT certificate, AES-128-CBC or 3DES)")
	case errors.Is(err, ErrBadMessage):
		return e(554, smtp.EnhancedCode{5, 6, 0}, "Malformed MIME message")
	case errors.Is(err, gateway.ErrEmpty):
		return e(554, smtp.EnhancedCode{5, 6, 0}, "Empty B2 file")
	case errors.Is(err, gateway.ErrUnknownTenant):
		return e(550, smtp.EnhancedCode{5, 7, 1}, "Tenant unknown or disabled")
	case errors.Is(err, gateway.ErrRateLimited):
		return e(451, smtp.EnhancedCode{4, 7, 0}, "Rate limited, try again later")
	case errors.Is(err, gateway.ErrShuttingDown):
		return e(451, smtp.EnhancedCode{4, 3, 2}, "Shutting down, try again later")
	case errors.Is(err, gateway.ErrUnavailable):
		return e(451, smtp.EnhancedCode{4, 3, 0}, "Cannot take the file now, try again later")
	}
	return e(451, smtp.EnhancedCode{4, 3, 0}, "Temporary failure, try again later")
}

// writeAck puts the acknowledgement in the tenant's outbox/ (the file is
// durable already: a failure here is logged, the 250 still holds and the
// acknowledgement stays available in the API).
func (s *Server) writeAck(tenant, name string, ack gateway.Ack) {
	if s.cfg.Folders == nil {
		return
	}
	if name == "" {
		name = "smtp-" + ack.ID + ".b2"
	}
	root, err := s.cfg.Folders.Open(tenant)
	if err == nil {
		defer root.Close()
		_, err = mailbox.WriteAck(s.ctx, root, name, ack)
	}
	if err != nil {
		s.log.Warn("smtp acknowledgement not written to outbox", "tenant", tenant, "id", ack.ID, "err", err)
	}
}
