// Package smtp delivers B2 lots to AMO caisses by SMTP, one file per
// message, in the IRIS/B2 shape built by gateway/deliver/iris (gzip,
// base64 application/EDI-consent, S/MIME enveloped-data to the caisse
// certificate), through the operator's relay with STARTTLS (certificate
// verified, handshake forced and checked before AUTH and MAIL) and optional
// AUTH PLAIN. See docs/delivery.md.
package smtp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/octgw/oct/formats/scor"
	"github.com/octgw/oct/gateway/deliver"
	"github.com/octgw/oct/gateway/deliver/iris"
	"github.com/octgw/oct/referentials"
)

// Config configures a Sender. Relay and From are required; zero values take
// the defaults in brackets.
type Config struct {
	Relay string // host:port of the submission relay
	From  string // envelope and header sender mailbox
	// Domain is the right-hand side of Message-IDs and the EHLO name
	// [the domain of From].
	Domain string
	// RootCAs verifies the relay's certificate [system roots].
	RootCAs *x509.CertPool
	// ServerName is the name checked in the relay's certificate [host of Relay].
	ServerName string
	// Username and Password: AUTH PLAIN when Username is set (only ever
	// sent after STARTTLS).
	Username, Password string
	// SubjectVersion is the VVVVVV field of the subject
	// [iris.DefaultSubjectVersion]; OmitSubjectVersion writes "IR/…".
	SubjectVersion     string
	OmitSubjectVersion bool
	// Header holds extra outer header fields for every message (e.g.
	// X-SV_CHIFFREMENT, whose semantics are unknown: none by default).
	Header [][2]string

	DialTimeout    time.Duration    // [30s]
	CommandTimeout time.Duration    // per command [2m]
	DataTimeout    time.Duration    // for the answer to the final dot [10m]
	Timeout        time.Duration    // whole send, when ctx has no earlier deadline [15m]
	Now            func() time.Time // [time.Now]
	Rand           io.Reader        // [crypto/rand]
}

// Sender is the SMTP deliver.Sender. It is safe for concurrent use; each
// Send uses its own connection.
type Sender struct {
	cfg     Config
	host    string
	counter atomic.Uint64
}

// New checks cfg and returns a Sender.
func New(cfg Config) (*Sender, error) {
	host, _, err := net.SplitHostPort(cfg.Relay)
	if err != nil || host == "" {
		return nil, fmt.Errorf("%w: relay %q must be host:port", deliver.ErrConfig, cfg.Relay)
	}
	at := strings.LastIndexByte(cfg.From, '@')
	if at <= 0 || at == len(cfg.From)-1 {
		return nil, fmt.Errorf("%w: from %q is not a mailbox", deliver.ErrConfig, cfg.From)
	}
	if cfg.Domain == "" {
		cfg.Domain = cfg.From[at+1:]
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if cfg.SubjectVersion == "" {
		cfg.SubjectVersion = iris.DefaultSubjectVersion
	}
	if cfg.OmitSubjectVersion {
		cfg.SubjectVersion = ""
	} else if len(cfg.SubjectVersion) != 6 {
		return nil, fmt.Errorf("%w: subject version %q is not 6 characters", deliver.ErrConfig, cfg.SubjectVersion)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 30 * time.Second
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = 2 * time.Minute
	}
	if cfg.DataTimeout <= 0 {
		cfg.DataTimeout = 10 * time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	s := &Sender{cfg: cfg, host: host}
	// Start the compostage counter at a random point so that two nodes
	// sending in the same second are unlikely to share a compostage.
	var b [8]byte
	_, _ = io.ReadFull(rand.Reader, b[:])
	s.counter.Store(binary.BigEndian.Uint64(b[:]) % 100000)
	return s, nil
}

// Composed is a message ready to send.
type Composed struct {
	MessageID string // with angle brackets
	Subject   string
	Raw       []byte
}

// Compose builds the message for m (no network). Errors are permanent.
func (s *Sender) Compose(m deliver.Message) (Composed, error) {
	if m.Dest.Transport != "" && m.Dest.Transport != referentials.SMTP {
		return Composed{}, deliver.Permanent("compose", fmt.Errorf("%w: transport %q given to the SMTP sender", deliver.ErrConfig, m.Dest.Transport))
	}
	to := strings.TrimSpace(m.Dest.Address)
	if at := strings.LastIndexByte(to, '@'); at <= 0 || at == len(to)-1 || strings.ContainsAny(to, " <>\r\n") {
		return Composed{}, deliver.Permanent("compose", fmt.Errorf("%w: mailbox %q", deliver.ErrConfig, to))
	}
	cipher := m.Dest.Cipher
	if cipher == "" {
		cipher = referentials.AES128
	}
	switch cipher {
	case referentials.AES128, referentials.TripleDES:
		if m.Cert == nil {
			return Composed{}, deliver.Permanent("compose", fmt.Errorf("%w: no encryption certificate for %s", deliver.ErrConfig, m.Dest.ID))
		}
		now := s.cfg.Now()
		if now.Before(m.Cert.NotBefore) || now.After(m.Cert.NotAfter) {
			return Composed{}, deliver.Permanent("compose", fmt.Errorf("%w: encryption certificate of %s is not valid now (%s to %s)",
				deliver.ErrConfig, m.Dest.ID, m.Cert.NotBefore.Format(time.DateOnly), m.Cert.NotAfter.Format(time.DateOnly)))
		}
	case referentials.CipherNone:
		// Clear text over STARTTLS only: for test relays.
		m.Cert = nil
	default:
		return Composed{}, deliver.Permanent("compose", fmt.Errorf("%w: cipher %q", deliver.ErrConfig, cipher))
	}
	if len(m.Body) == 0 {
		return Composed{}, deliver.Permanent("compose", fmt.Errorf("%w: empty body", deliver.ErrConfig))
	}
	now := s.cfg.Now()
	comp := iris.Compostage(now, s.counter.Add(1))
	var (
		subj, desc, fileName string
		compress             = true
		err                  error
	)
	switch m.Flow {
	case "", deliver.FlowB2:
		subj, err = iris.Subject{Version: s.cfg.SubjectVersion, Emitter: m.Emitter, Compostage: comp, Invoices: m.Invoices}.Format()
		desc, fileName = iris.Description(m.Test, true), "B2_"+comp+".gz"
	case deliver.FlowSCOR:
		pages := m.Invoices
		if pages <= 0 {
			if pages, err = countPages(m.Body); err != nil {
				return Composed{}, deliver.Permanent("compose", fmt.Errorf("%w: %w", deliver.ErrConfig, err))
			}
		}
		subj, err = iris.SCORSubject{Emitter: m.Emitter, FileID: m.FileID, LotNumber: m.LotNumber, LotDate: m.LotDate, Pages: pages}.Format()
		desc, fileName, compress = iris.SCORDescription(m.Test), "SCOR_"+m.FileID+".pdf", false
	default:
		return Composed{}, deliver.Permanent("compose", fmt.Errorf("%w: flow %q given to the SMTP sender", deliver.ErrConfig, m.Flow))
	}
	if err != nil {
		return Composed{}, deliver.Permanent("compose", fmt.Errorf("%w: %w", deliver.ErrConfig, err))
	}
	var rnd [6]byte
	if _, err := io.ReadFull(s.cfg.Rand, rnd[:]); err != nil {
		return Composed{}, deliver.Permanent("compose", err)
	}
	id := comp + "." + hex.EncodeToString(rnd[:]) + "@" + s.cfg.Domain
	var buf bytes.Buffer
	err = iris.Build(&buf, iris.Mail{
		From:        s.cfg.From,
		To:          to,
		MessageID:   id,
		Date:        now,
		Subject:     subj,
		Description: desc,
		FileName:    fileName,
		Data:        m.Body,
		Compress:    compress,
		Signature:   m.Signature,
		Cert:        m.Cert,
		Cipher:      cipher,
		Rand:        s.cfg.Rand,
		Header:      s.cfg.Header,
	})
	if err != nil {
		return Composed{}, deliver.Permanent("compose", fmt.Errorf("%w: %w", deliver.ErrConfig, err))
	}
	return Composed{MessageID: "<" + id + ">", Subject: subj, Raw: buf.Bytes()}, nil
}

// Send implements deliver.Sender: compose, connect, STARTTLS (verified),
// AUTH, MAIL, RCPT, DATA. 4xx answers and network failures are
// ErrTemporary; 5xx answers, TLS verification failures and unusable
// messages are ErrPermanent. The Receipt carries the Message-ID and the
// relay's final answer.
func (s *Sender) Send(ctx context.Context, m deliver.Message) (deliver.Receipt, error) {
	msg, err := s.Compose(m)
	if err != nil {
		return deliver.Receipt{}, err
	}
	if err := ctx.Err(); err != nil {
		return deliver.Receipt{}, deliver.Temporary("dial", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	d := net.Dialer{Timeout: s.cfg.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", s.cfg.Relay)
	if err != nil {
		return deliver.Receipt{}, deliver.Classify("dial", err)
	}
	defer conn.Close()
	// go-smtp has no context: closing the connection ends any command in
	// progress when ctx is done.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	detail, err := s.session(ctx, conn, m.Dest.Address, msg.Raw)
	if err != nil {
		return deliver.Receipt{}, err
	}
	return deliver.Receipt{MessageID: msg.MessageID, Detail: detail, At: s.cfg.Now()}, nil
}

func (s *Sender) session(ctx context.Context, conn net.Conn, to string, raw []byte) (string, error) {
	tlsCfg := &tls.Config{
		RootCAs:    s.cfg.RootCAs,
		ServerName: s.cfg.ServerName,
		MinVersion: tls.VersionTLS12,
	}
	// NewClientStartTLS reads the greeting, says EHLO, checks that STARTTLS
	// is offered and sends it. The TLS handshake itself is lazy: it would
	// only happen at the next command, so it is forced below and checked
	// before anything else (AUTH, MAIL) is said.
	c, err := gosmtp.NewClientStartTLS(conn, tlsCfg)
	if err != nil {
		var se *gosmtp.SMTPError
		if errors.As(err, &se) || ctx.Err() != nil || deliver.IsNetworkError(err) {
			return "", s.fail(ctx, "starttls", err)
		}
		// "server doesn't support STARTTLS": never send in clear.
		return "", deliver.Permanent("starttls", fmt.Errorf("%w: %w", deliver.ErrTLS, err))
	}
	defer c.Close()
	c.CommandTimeout = s.cfg.CommandTimeout
	c.SubmissionTimeout = s.cfg.DataTimeout
	// EHLO again, now over TLS: this drives the handshake.
	if err := c.Hello(s.cfg.Domain); err != nil {
		if deliver.IsTLSError(err) {
			return "", deliver.Permanent("tls", fmt.Errorf("%w: %w", deliver.ErrTLS, err))
		}
		return "", s.fail(ctx, "tls", err)
	}
	st, ok := c.TLSConnectionState()
	if !ok || !st.HandshakeComplete || len(st.VerifiedChains) == 0 {
		return "", deliver.Permanent("tls", fmt.Errorf("%w: handshake not complete or peer not verified", deliver.ErrTLS))
	}
	if s.cfg.Username != "" {
		if !c.SupportsAuth("PLAIN") {
			return "", deliver.Permanent("auth", fmt.Errorf("%w: relay does not offer AUTH PLAIN", deliver.ErrConfig))
		}
		if err := c.Auth(sasl.NewPlainClient("", s.cfg.Username, s.cfg.Password)); err != nil {
			return "", s.fail(ctx, "auth", err)
		}
	}
	if err := c.Mail(s.cfg.From, nil); err != nil {
		return "", s.fail(ctx, "mail", err)
	}
	if err := c.Rcpt(to, nil); err != nil {
		return "", s.fail(ctx, "rcpt", err)
	}
	w, err := c.Data()
	if err != nil {
		return "", s.fail(ctx, "data", err)
	}
	if _, err := w.Write(raw); err != nil {
		return "", s.fail(ctx, "data", err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", s.fail(ctx, "data", err)
	}
	// The message is accepted: a failing QUIT changes nothing.
	_ = c.Quit()
	return strings.TrimSpace("250 " + resp.StatusText), nil
}

// fail classifies an error of step op.
func (s *Sender) fail(ctx context.Context, op string, err error) error {
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		e := &deliver.Error{Temporary: se.Code >= 400 && se.Code < 500, Op: op, Code: se.Code, Reply: reply(se), Err: se}
		return e
	}
	if ctx.Err() != nil {
		return deliver.Temporary(op, fmt.Errorf("%w (%v)", ctx.Err(), err))
	}
	return deliver.Classify(op, err)
}

func reply(se *gosmtp.SMTPError) string {
	r := fmt.Sprintf("%d", se.Code)
	if ec := se.EnhancedCode; ec != gosmtp.NoEnhancedCode && ec != (gosmtp.EnhancedCode{}) {
		r += fmt.Sprintf(" %d.%d.%d", ec[0], ec[1], ec[2])
	}
	if se.Message != "" {
		r += " " + se.Message
	}
	return r
}

// countPages counts the pages of a SCOR PDF (resolution not checked: the
// gateway checked the attachment before; this only fills the subject).
func countPages(pdf []byte) (int, error) {
	rep, err := scor.Check(bytes.NewReader(pdf), int64(len(pdf)), scor.Options{MinDPI: -1})
	if err != nil {
		return 0, err
	}
	if rep.Pages == 0 {
		return 0, fmt.Errorf("SCOR attachment is not a readable PDF (%d findings)", len(rep.Errors))
	}
	return rep.Pages, nil
}
