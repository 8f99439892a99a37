// Package certdir fetches the encryption certificates of caisses and AMCs
// from an LDAP directory (entries cn=<mailbox>, attribute
// userCertificate;binary), caches them with a TTL, picks the currently valid
// one with the highest serial, and reports the ones about to expire.
package certdir

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Code is a stable error code (errors.Is(err, Code)). Never rename one.
type Code string

func (c Code) Error() string { return string(c) }

// Codes.
const (
	ErrNotFound   Code = "CERT_NOT_FOUND"       // no entry or no certificate for the mailbox
	ErrNoValid    Code = "CERT_NO_VALID"        // certificates exist, none valid now
	ErrDirectory  Code = "CERT_DIRECTORY"       // the LDAP directory failed
	ErrBadCert    Code = "CERT_BAD_CERTIFICATE" // a value is not a DER certificate (skipped, reported only if none parses)
	ErrConfig     Code = "CERT_CONFIG"
	DefaultTTL         = 6 * time.Hour
	DefaultWindow      = 30 * 24 * time.Hour
	certAttr           = "userCertificate;binary"
)

// Error carries a code, the mailbox and a cause.
type Error struct {
	Code    Code
	Mailbox string
	Err     error
}

func (e *Error) Error() string {
	s := string(e.Code) + ": " + e.Mailbox
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error        { return e.Err }
func (e *Error) Is(target error) bool { c, ok := target.(Code); return ok && c == e.Code }

// Config of a Directory.
type Config struct {
	URL      string // ldap://host:port or ldaps://host:port
	BaseDN   string // e.g. ou=AC-FACTURATION,ou=AC-SESAM-VITALE-2034,o=sesam-vitale,c=fr
	BindDN   string // empty: anonymous
	Password string
	TLS      *tls.Config      // for ldaps
	TTL      time.Duration    // cache lifetime, default DefaultTTL
	Now      func() time.Time // required: the clock
	Dialer   *net.Dialer      // optional
	Logger   *slog.Logger     // optional
}

// Directory is a caching certificate directory, safe for concurrent use.
type Directory struct {
	cfg   Config
	fetch func(ctx context.Context, mailbox string) ([][]byte, error)
	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	certs   []*x509.Certificate
	fetched time.Time
}

// New checks the configuration.
func New(cfg Config) (*Directory, error) {
	if cfg.Now == nil {
		return nil, &Error{Code: ErrConfig, Err: errors.New("Now is required")}
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		return nil, &Error{Code: ErrConfig, Err: fmt.Errorf("URL %q: ldap://host:port or ldaps://host:port expected", cfg.URL)}
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Dialer == nil {
		cfg.Dialer = &net.Dialer{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Directory{cfg: cfg, cache: map[string]cached{}}
	d.fetch = d.ldapFetch
	return d, nil
}

func (d *Directory) connect(ctx context.Context) (*ldap.Conn, error) {
	u, _ := url.Parse(d.cfg.URL)
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "ldaps" {
			host = net.JoinHostPort(u.Hostname(), "636")
		} else {
			host = net.JoinHostPort(u.Hostname(), "389")
		}
	}
	var nc net.Conn
	var err error
	if u.Scheme == "ldaps" {
		td := &tls.Dialer{NetDialer: d.cfg.Dialer, Config: d.cfg.TLS}
		nc, err = td.DialContext(ctx, "tcp", host)
	} else {
		nc, err = d.cfg.Dialer.DialContext(ctx, "tcp", host)
	}
	if err != nil {
		return nil, err
	}
	c := ldap.NewConn(nc, u.Scheme == "ldaps")
	c.Start()
	if dl, ok := ctx.Deadline(); ok {
		c.SetTimeout(time.Until(dl))
	}
	if d.cfg.BindDN != "" {
		if err := c.Bind(d.cfg.BindDN, d.cfg.Password); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// ldapFetch searches cn=<mailbox> under BaseDN and returns every
// userCertificate;binary value.
func (d *Directory) ldapFetch(ctx context.Context, mailbox string) ([][]byte, error) {
	c, err := d.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	req := ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(cn="+ldap.EscapeFilter(mailbox)+")", []string{certAttr}, nil)
	resp := c.SearchAsync(ctx, req, 0)
	var out [][]byte
	for resp.Next() {
		e := resp.Entry()
		if e == nil {
			continue
		}
		out = append(out, e.GetRawAttributeValues(certAttr)...)
		out = append(out, e.GetRawAttributeValues("userCertificate")...)
	}
	if err := resp.Err(); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return nil, nil
		}
		return nil, err
	}
	return out, nil
}

// Certificates returns every certificate published for the mailbox, from
// the cache while it is fresh. When the directory fails and a stale copy
// exists, the stale copy is returned (and the failure logged): a directory
// outage must not stop deliveries.
func (d *Directory) Certificates(ctx context.Context, mailbox string) ([]*x509.Certificate, error) {
	now := d.cfg.Now()
	d.mu.Lock()
	c, ok := d.cache[mailbox]
	d.mu.Unlock()
	if ok && now.Sub(c.fetched) < d.cfg.TTL {
		return c.certs, nil
	}
	raw, err := d.fetch(ctx, mailbox)
	if err != nil {
		if ok {
			d.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "certificate directory failed, serving cached copy",
				slog.String("mailbox", mailbox), slog.String("error", err.Error()))
			return c.certs, nil
		}
		return nil, &Error{Code: ErrDirectory, Mailbox: mailbox, Err: err}
	}
	var certs []*x509.Certificate
	var parseErr error
	for _, der := range raw {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			parseErr = err
			continue
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		if parseErr != nil {
			return nil, &Error{Code: ErrBadCert, Mailbox: mailbox, Err: parseErr}
		}
		return nil, &Error{Code: ErrNotFound, Mailbox: mailbox}
	}
	d.mu.Lock()
	d.cache[mailbox] = cached{certs: certs, fetched: now}
	d.mu.Unlock()
	return certs, nil
}

// Certificate returns the certificate to encrypt to: currently valid, with
// the highest serial.
func (d *Directory) Certificate(ctx context.Context, mailbox string) (*x509.Certificate, error) {
	certs, err := d.Certificates(ctx, mailbox)
	if err != nil {
		return nil, err
	}
	c := Select(certs, d.cfg.Now())
	if c == nil {
		return nil, &Error{Code: ErrNoValid, Mailbox: mailbox, Err: fmt.Errorf("%d certificate(s), none valid now", len(certs))}
	}
	return c, nil
}

// Select returns the certificate valid at now with the highest serial, or nil.
func Select(certs []*x509.Certificate, now time.Time) *x509.Certificate {
	var best *x509.Certificate
	for _, c := range certs {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			continue
		}
		if best == nil || c.SerialNumber.Cmp(best.SerialNumber) > 0 {
			best = c
		}
	}
	return best
}

// Expiry is a certificate (or its absence) that needs attention.
type Expiry struct {
	Mailbox   string        `json:"mailbox"`
	Serial    string        `json:"serial,omitempty"` // hex
	Subject   string        `json:"subject,omitempty"`
	NotAfter  time.Time     `json:"not_after,omitzero"`
	Remaining time.Duration `json:"remaining"`
	// Problem: "expiring" (valid, ends within the window), "no-valid"
	// (published certificates, none valid), "not-found", "directory".
	Problem string `json:"problem"`
}

// Check reports, for each mailbox, a certificate in use that expires within
// window (DefaultWindow when 0) or the absence of a valid one. The gateway
// turns the result into a metric and anomalies. A mailbox whose newest
// valid certificate is far from expiry is not reported, even if older ones
// are expiring: that is the normal rollover.
func (d *Directory) Check(ctx context.Context, mailboxes []string, window time.Duration) []Expiry {
	if window <= 0 {
		window = DefaultWindow
	}
	now := d.cfg.Now()
	var out []Expiry
	for _, m := range mailboxes {
		if ctx.Err() != nil {
			out = append(out, Expiry{Mailbox: m, Problem: "directory"})
			continue
		}
		c, err := d.Certificate(ctx, m)
		switch {
		case errors.Is(err, ErrNoValid):
			out = append(out, Expiry{Mailbox: m, Problem: "no-valid"})
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrBadCert):
			out = append(out, Expiry{Mailbox: m, Problem: "not-found"})
		case err != nil:
			out = append(out, Expiry{Mailbox: m, Problem: "directory"})
		case c.NotAfter.Sub(now) <= window:
			out = append(out, Expiry{Mailbox: m, Serial: c.SerialNumber.Text(16), Subject: c.Subject.String(),
				NotAfter: c.NotAfter, Remaining: c.NotAfter.Sub(now), Problem: "expiring"})
		}
	}
	slices.SortStableFunc(out, func(a, b Expiry) int { return a.NotAfter.Compare(b.NotAfter) })
	return out
}

// Watch runs Check at every tick until ctx ends and hands each non-empty
// result to report. mailboxes is called at each tick so the list follows the
// referential.
func (d *Directory) Watch(ctx context.Context, ticks <-chan time.Time, mailboxes func() []string, window time.Duration, report func([]Expiry)) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticks:
			report(d.Check(ctx, mailboxes(), window))
		}
	}
}
