// Package https delivers lot files to AMC endpoints that take an API: one
// POST per lot over HTTPS with a client certificate (mTLS), the file (and
// its detached signature) as multipart/form-data. 2xx is delivered; 408,
// 429 and 5xx are temporary; other 4xx are permanent. See docs/delivery.md.
package https

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/octgw/oct/gateway/deliver"
	"github.com/octgw/oct/gateway/deliver/iris"
	"github.com/octgw/oct/referentials"
)

// Config configures a Sender.
type Config struct {
	// ClientCert is the OCT's client certificate (required: endpoints
	// authenticate the gateway by mTLS).
	ClientCert tls.Certificate
	RootCAs    *x509.CertPool   // verifies endpoints [system roots]
	Timeout    time.Duration    // whole request [5m]
	Now        func() time.Time // [time.Now]
}

// Sender is the HTTPS deliver.Sender. Safe for concurrent use.
type Sender struct {
	cfg    Config
	client *http.Client
}

// New checks cfg and returns a Sender.
func New(cfg Config) (*Sender, error) {
	client, err := NewClient(&cfg)
	if err != nil {
		return nil, err
	}
	return &Sender{cfg: cfg, client: client}, nil
}

// NewClient checks cfg, fills its defaults in place and returns the HTTP
// client every OCT HTTPS sender uses (this one, gateway/deliver/fhir): mTLS
// with cfg.ClientCert, endpoints verified against cfg.RootCAs, TLS 1.2 or
// later, HTTP/2 when offered, redirects not followed, cfg.Timeout for the
// whole request.
func NewClient(cfg *Config) (*http.Client, error) {
	if len(cfg.ClientCert.Certificate) == 0 || cfg.ClientCert.PrivateKey == nil {
		return nil, fmt.Errorf("%w: an HTTPS client certificate is required", deliver.ErrConfig)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: cfg.RootCAs, Certificates: []tls.Certificate{cfg.ClientCert}, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 30 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// DoError classifies the error of http.Client.Do: the context's end and
// network failures are temporary, TLS failures permanent (ErrTLS).
func DoError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return deliver.Temporary(op, fmt.Errorf("%w (%v)", ctx.Err(), err))
	}
	if deliver.IsTLSError(err) {
		return deliver.Permanent("tls", fmt.Errorf("%w: %w", deliver.ErrTLS, err))
	}
	return deliver.Classify(op, err)
}

// StatusError is the error of a non-2xx answer: 408, 429 and 5xx
// temporary, other codes permanent; reply goes in deliver.Error.Reply.
func StatusError(op string, code int, reply string) error {
	return &deliver.Error{Temporary: code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500,
		Op: op, Code: code, Reply: reply}
}

// Reply formats an answer for deliver.Error.Reply and Receipt.Detail:
// "HTTP <code>: <first 512 bytes of body, one line>".
func Reply(code int, body []byte) string {
	if len(body) > 512 {
		body = body[:512]
	}
	r := fmt.Sprintf("HTTP %d", code)
	a := strings.Join(strings.Fields(strings.ToValidUTF8(string(body), "?")), " ")
	if a != "" {
		r += ": " + a
	}
	return r
}

// Endpoint parses an https URL, or returns a permanent ErrConfig.
func Endpoint(addr string) (*url.URL, error) {
	u, err := url.Parse(addr)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, deliver.Permanent("compose", fmt.Errorf("%w: endpoint %q is not an https URL", deliver.ErrConfig, addr))
	}
	return u, nil
}

// CloseIdleConnections releases pooled connections.
func (s *Sender) CloseIdleConnections() { s.client.CloseIdleConnections() }

// FileName is the name given to a lot file on SFTP and HTTPS:
// <émetteur>_<file id>_<lot>.b2 with only [0-9A-Za-z-] kept from each part.
func FileName(m deliver.Message) string {
	return safe(m.Emitter) + "_" + safe(m.FileID) + "_" + safe(m.Lot) + ".b2"
}

func safe(v string) string {
	var b strings.Builder
	for _, r := range v {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "x"
	}
	return b.String()
}

// Payload returns the bytes to send and the file name for m: the file as
// is when the destination cipher is none (the transport encrypts), or CMS
// enveloped to m.Cert (name + ".p7m") when a cipher and a certificate are
// given.
func Payload(m deliver.Message) (data []byte, name string, err error) {
	name = FileName(m)
	switch m.Dest.Cipher {
	case "", referentials.CipherNone:
		return m.Body, name, nil
	case referentials.AES128, referentials.TripleDES:
		if m.Cert == nil {
			return nil, "", deliver.Permanent("compose", fmt.Errorf("%w: cipher %s without a certificate", deliver.ErrConfig, m.Dest.Cipher))
		}
		der, err := iris.Encrypt(m.Body, m.Cert, m.Dest.Cipher, nil)
		if err != nil {
			return nil, "", deliver.Permanent("compose", fmt.Errorf("%w: %w", deliver.ErrConfig, err))
		}
		return der, name + ".p7m", nil
	default:
		return nil, "", deliver.Permanent("compose", fmt.Errorf("%w: cipher %q", deliver.ErrConfig, m.Dest.Cipher))
	}
}

// Send implements deliver.Sender.
func (s *Sender) Send(ctx context.Context, m deliver.Message) (deliver.Receipt, error) {
	if m.Dest.Transport != "" && m.Dest.Transport != referentials.HTTPS {
		return deliver.Receipt{}, deliver.Permanent("compose", fmt.Errorf("%w: transport %q given to the HTTPS sender", deliver.ErrConfig, m.Dest.Transport))
	}
	u, err := Endpoint(m.Dest.Address)
	if err != nil {
		return deliver.Receipt{}, err
	}
	switch m.Flow {
	case "", deliver.FlowB2:
	case deliver.FlowPEC:
		return s.sendPEC(ctx, u, m)
	default:
		return deliver.Receipt{}, deliver.Permanent("compose", fmt.Errorf("%w: flow %q given to the HTTPS sender", deliver.ErrConfig, m.Flow))
	}
	data, name, err := Payload(m)
	if err != nil {
		return deliver.Receipt{}, err
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part := func(field, filename, ctype string, b []byte) error {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, field, filename))
		h.Set("Content-Type", ctype)
		w, err := mw.CreatePart(h)
		if err == nil {
			_, err = w.Write(b)
		}
		return err
	}
	ctype := "application/octet-stream"
	if strings.HasSuffix(name, ".p7m") {
		ctype = "application/pkcs7-mime; smime-type=enveloped-data"
	}
	if err := part("file", name, ctype, data); err != nil {
		return deliver.Receipt{}, deliver.Permanent("compose", err)
	}
	if len(m.Signature) > 0 {
		if err := part("signature", FileName(m)+".p7s", "application/pkcs7-signature", m.Signature); err != nil {
			return deliver.Receipt{}, deliver.Permanent("compose", err)
		}
	}
	if err := mw.Close(); err != nil {
		return deliver.Receipt{}, deliver.Permanent("compose", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), &body)
	if err != nil {
		return deliver.Receipt{}, deliver.Permanent("compose", fmt.Errorf("%w: %w", deliver.ErrConfig, err))
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	setLotHeaders(req, m)
	req.Header.Set("X-OCT-Emitter", m.Emitter)
	req.Header.Set("X-OCT-File-ID", m.FileID)
	req.Header.Set("X-OCT-Invoices", strconv.Itoa(m.Invoices))
	resp, err := s.client.Do(req)
	if err != nil {
		return deliver.Receipt{}, DoError(ctx, "post", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	reply := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if a := strings.TrimSpace(strings.ToValidUTF8(string(answer), "?")); a != "" {
		reply += ": " + a
	}
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		id := resp.Header.Get("X-Request-Id")
		if id == "" {
			id = resp.Header.Get("Location")
		}
		if id == "" {
			id = u.Host + "/" + name
		}
		return deliver.Receipt{MessageID: id, Detail: reply, At: s.cfg.Now()}, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return deliver.Receipt{}, &deliver.Error{Temporary: true, Op: "post", Code: c, Reply: reply}
	default:
		return deliver.Receipt{}, &deliver.Error{Op: "post", Code: c, Reply: reply}
	}
}
