package sim

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/smallstep/pkcs7"

	"github.com/octgw/oct/gateway/deliver/iris"
	insmtp "github.com/octgw/oct/gateway/intake/smtp"
)

// StartSMTP listens on addr (e.g. 127.0.0.1:0) and serves the caisses'
// SMTP until Close. It returns the address listened on.
//
// The server offers STARTTLS with the Sim's certificate (RootCAs), refuses
// AUTH and MAIL before STARTTLS, accepts any AUTH PLAIN credentials (AUTH
// is optional), and answers 250 once the message is decoded and its
// returns are scheduled; 550 for a mailbox it does not play, 554 for a
// message it cannot decrypt or decode. InjectFault makes it answer other
// codes.
func (s *Sim) StartSMTP(addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		s.count(func(st *Stats) { st.SMTPSessions++ })
		return &session{s: s, conn: c}, nil
	}))
	srv.Domain = s.cfg.Hostname
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{s.tlsCrt}, MinVersion: tls.VersionTLS12}
	srv.AllowInsecureAuth = false
	srv.MaxMessageBytes = 2*s.cfg.MaxFileSize + 1<<20
	srv.MaxRecipients = 10
	srv.ReadTimeout = 2 * time.Minute
	srv.WriteTimeout = 2 * time.Minute
	srv.ErrorLog = log.New(io.Discard, "", 0)
	tl := &trackingListener{Listener: l, conns: map[net.Conn]struct{}{}}
	if !s.startServer(func() error {
		tl.closeAll()
		if err := srv.Shutdown(context.Background()); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, gosmtp.ErrServerClosed) {
			return err
		}
		return nil
	}, func() { _ = srv.Serve(tl) }) {
		l.Close()
		return "", ErrClosed
	}
	return l.Addr().String(), nil
}

// trackingListener remembers connections so that Close can cut them (go-smtp's
// Shutdown waits for them to end but does not close them).
type trackingListener struct {
	net.Listener
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, l: l}
	l.conns[tc] = struct{}{}
	return tc, nil
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	l.closed = true
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	l.Listener.Close()
	for _, c := range conns {
		c.Close()
	}
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

type session struct {
	s     *Sim
	conn  *gosmtp.Conn
	user  string
	from  string
	rcpts []*caisse
}

func smtpErr(code int, ec gosmtp.EnhancedCode, msg string) *gosmtp.SMTPError {
	return &gosmtp.SMTPError{Code: code, EnhancedCode: ec, Message: msg}
}

func (ss *session) tls() bool {
	_, ok := ss.conn.TLSConnectionState()
	return ok
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if !ss.tls() {
		return nil, smtpErr(523, gosmtp.EnhancedCode{5, 7, 10}, "TLS is required")
	}
	ss.s.count(func(st *Stats) { st.Auths++ })
	return sasl.NewPlainServer(func(identity, username, password string) error {
		ss.user = username // any credentials: the simulator plays open relays
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *gosmtp.MailOptions) error {
	if !ss.tls() {
		return smtpErr(530, gosmtp.EnhancedCode{5, 7, 0}, "Must issue a STARTTLS command first")
	}
	ss.s.count(func(st *Stats) { st.Mails++ })
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if f := ss.s.takeFault(to, "rcpt"); f != nil {
		return smtpErr(f.Code, gosmtp.EnhancedCodeNotSet, f.Message)
	}
	c, err := ss.s.mailbox(to, ss.s.cfg.AnyMailbox)
	if err != nil {
		return smtpErr(550, gosmtp.EnhancedCode{5, 1, 1}, "No such caisse mailbox here")
	}
	ss.rcpts = append(ss.rcpts, c)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	for _, c := range ss.rcpts {
		if f := ss.s.takeFault(c.mailbox, "data"); f != nil {
			return smtpErr(f.Code, gosmtp.EnhancedCodeNotSet, f.Message)
		}
	}
	for _, c := range ss.rcpts {
		if err := ss.s.receiveMail(c, raw, ss.user, ss.tls()); err != nil {
			return err
		}
	}
	return nil
}

func (ss *session) Reset()        { ss.from, ss.rcpts = "", nil }
func (ss *session) Logout() error { return nil }

// receiveMail decodes one message for caisse c with the intake's decoder
// and accepts its B2 file(s).
func (s *Sim) receiveMail(c *caisse, raw []byte, user string, tlsOn bool) error {
	// Extract and inspect both open the enveloped-data: the RSA operation
	// (the simulator's main cost) is done once per message.
	dec := &insmtp.Decrypter{Cert: c.cert, Key: &memoKey{key: c.key}}
	parts, err := insmtp.Extract(bytes.NewReader(raw), insmtp.ExtractOptions{MaxFileSize: s.cfg.MaxFileSize, Decrypter: dec})
	if err != nil {
		return smtpErr(554, gosmtp.EnhancedCode{5, 6, 0}, "Message refused: "+oneLine(err.Error()))
	}
	info := inspect(raw, dec)
	hdr := info.header
	for _, p := range parts {
		if iris.IsSCORDescription(p.Description) {
			if err := s.acceptSCOR(inbound{channel: "smtp", endpoint: c.mailbox, messageID: hdr.Get("Message-Id"), subject: hdr.Get("Subject"),
				description: p.Description, cipher: info.cipher, user: user, tls: tlsOn, file: p.Data, signature: info.signature}); err != nil {
				return err
			}
			continue
		}
		s.accept(inbound{channel: "smtp", endpoint: c.mailbox, messageID: hdr.Get("Message-Id"), subject: hdr.Get("Subject"),
			description: p.Description, cipher: info.cipher, user: user, tls: tlsOn, file: p.Data, signature: info.signature})
	}
	return nil
}

// mailInfo is what the simulator reports beyond the B2 file: the outer
// header, the content cipher and the detached signature part.
type mailInfo struct {
	header    message.Header
	cipher    string
	signature []byte
}

// inspect walks the message for the cipher of its enveloped-data and the
// application/pkcs7-signature part next to the EDI part (the B2 itself is
// decoded by Extract).
func inspect(raw []byte, dec *insmtp.Decrypter) mailInfo {
	var info mailInfo
	ent, err := message.Read(bufio.NewReader(bytes.NewReader(raw)))
	if ent == nil {
		return info
	}
	_ = err
	info.header = ent.Header
	var walk func(e *message.Entity, depth int)
	walk = func(e *message.Entity, depth int) {
		if depth > 6 {
			return
		}
		if mr := e.MultipartReader(); mr != nil {
			for {
				p, err := mr.NextPart()
				if err != nil {
					return
				}
				walk(p, depth+1)
			}
		}
		mt, _, _ := e.Header.ContentType()
		switch strings.ToLower(mt) {
		case strings.ToLower(iris.SignatureContentType), "application/x-pkcs7-signature":
			if b, err := io.ReadAll(io.LimitReader(e.Body, 1<<20)); err == nil && info.signature == nil {
				info.signature = b
			}
		case strings.ToLower(iris.SMIMEContentType), "application/x-pkcs7-mime":
			der, err := io.ReadAll(io.LimitReader(e.Body, 256<<20))
			if err != nil {
				return
			}
			if c, err := iris.CipherOf(der); err == nil {
				info.cipher = c
			}
			p7, err := pkcs7.Parse(der)
			if err != nil {
				return
			}
			plain, err := p7.Decrypt(dec.Cert, dec.Key)
			if err != nil {
				return
			}
			if inner, err := message.Read(bufio.NewReader(bytes.NewReader(plain))); inner != nil && (err == nil || message.IsUnknownCharset(err)) {
				walk(inner, depth+1)
			}
		}
	}
	walk(ent, 0)
	return info
}

func oneLine(s string) string {
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// memoKey is a crypto.Decrypter that remembers what it decrypted, for the
// life of one message (never shared between messages).
type memoKey struct {
	key  *rsa.PrivateKey
	mu   sync.Mutex
	seen map[string][]byte
}

func (m *memoKey) Public() crypto.PublicKey { return m.key.Public() }

func (m *memoKey) Decrypt(rnd io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	k := fmt.Sprintf("%T%v|%s", opts, opts, msg)
	m.mu.Lock()
	if out, ok := m.seen[k]; ok {
		m.mu.Unlock()
		return bytes.Clone(out), nil
	}
	m.mu.Unlock()
	out, err := m.key.Decrypt(rnd, msg, opts)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.seen == nil {
		m.seen = map[string][]byte{}
	}
	if len(m.seen) < 8 {
		m.seen[k] = bytes.Clone(out)
	}
	m.mu.Unlock()
	return out, nil
}
