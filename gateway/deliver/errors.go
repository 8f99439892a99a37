package deliver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
)

// Error classes (errors.Is). Every error a Sender or the Dispatcher returns
// is one or the other.
var (
	// ErrTemporary: 4xx answers, timeouts, connection refused or reset,
	// an open circuit breaker, a lot already in flight. The job queue
	// retries with backoff.
	ErrTemporary = errors.New("deliver: temporary failure")
	// ErrPermanent: 5xx answers, certificate and host-key errors, a file
	// the remote end refused, a message that cannot be built. Retrying the
	// same thing gives the same answer: straight to an anomaly, with the
	// server's reply.
	ErrPermanent = errors.New("deliver: permanent failure")
)

// More specific causes, each also ErrTemporary or ErrPermanent.
var (
	// ErrBreakerOpen: the destination's circuit breaker is open (temporary).
	ErrBreakerOpen = errors.New("deliver: circuit breaker open")
	// ErrInFlight: the same lot is being sent right now (temporary: by the
	// time the job is retried, the first send has finished and the guard
	// answers with its receipt).
	ErrInFlight = errors.New("deliver: lot already being sent")
	// ErrTLS: the server's certificate or the TLS handshake failed
	// (permanent).
	ErrTLS = errors.New("deliver: TLS verification failed")
	// ErrHostKey: the SSH host key is unknown or does not match known_hosts
	// (permanent).
	ErrHostKey = errors.New("deliver: SSH host key refused")
	// ErrConfig: the message or the sender configuration is unusable: no
	// certificate, unknown cipher or transport, bad address (permanent).
	ErrConfig = errors.New("deliver: configuration")
)

// Error is a classified delivery failure. Reply keeps the remote end's
// answer ("550 5.7.1 …", "HTTP 403: …") for the anomaly.
type Error struct {
	Temporary bool
	Op        string // step: dial, starttls, auth, mail, rcpt, data, upload, rename, post…
	Reply     string // server's answer, when there was one
	Code      int    // SMTP or HTTP status, 0 if none
	Err       error  // underlying cause (may be nil)
}

func (e *Error) Error() string {
	class := "permanent"
	if e.Temporary {
		class = "temporary"
	}
	s := "deliver: " + class
	if e.Op != "" {
		s += " failure at " + e.Op
	}
	if e.Reply != "" {
		s += ": server replied " + fmt.Sprintf("%q", e.Reply)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap gives the cause and the class.
func (e *Error) Unwrap() []error {
	class := ErrPermanent
	if e.Temporary {
		class = ErrTemporary
	}
	if e.Err == nil {
		return []error{class}
	}
	return []error{class, e.Err}
}

// Temporary builds a temporary Error.
func Temporary(op string, err error) *Error { return &Error{Temporary: true, Op: op, Err: err} }

// Permanent builds a permanent Error.
func Permanent(op string, err error) *Error { return &Error{Op: op, Err: err} }

// Classify returns err unchanged when it is already classified, and
// otherwise wraps it in an Error whose class follows the cause: TLS
// certificate problems are permanent; context ends, timeouts, refused or
// reset connections and other network errors are temporary; anything else
// is permanent (a Sender that knows better classifies it itself).
func Classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrTemporary) || errors.Is(err, ErrPermanent) {
		return err
	}
	if IsTLSError(err) {
		return &Error{Op: op, Err: fmt.Errorf("%w: %w", ErrTLS, err)}
	}
	if IsNetworkError(err) {
		return Temporary(op, err)
	}
	return Permanent(op, err)
}

// IsTLSError reports whether err comes from certificate verification or the
// TLS handshake.
func IsTLSError(err error) bool {
	var (
		cve  *tls.CertificateVerificationError
		ua   x509.UnknownAuthorityError
		he   x509.HostnameError
		ci   x509.CertificateInvalidError
		ae   tls.AlertError
		rhe  tls.RecordHeaderError
		echo *tls.ECHRejectionError
	)
	if errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &he) ||
		errors.As(err, &ci) || errors.As(err, &ae) || errors.As(err, &rhe) || errors.As(err, &echo) {
		return true
	}
	// An alert sent by the peer (our client certificate refused, no common
	// version or cipher): crypto/tls reports it as a net.OpError "remote
	// error" wrapping an unexported alert type.
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" && oe.Err != nil {
		msg := oe.Err.Error()
		for _, k := range []string{"certificate", "handshake failure", "protocol version", "insufficient security", "access denied"} {
			if strings.Contains(msg, k) {
				return true
			}
		}
	}
	return false
}

// IsNetworkError reports whether err is a transient network condition:
// context cancelled or expired, timeout, refused/reset/unreachable, EOF
// from a dropped connection.
func IsNetworkError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ETIMEDOUT) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	var de *net.DNSError
	return errors.As(err, &oe) || errors.As(err, &de) || isEOF(err)
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
