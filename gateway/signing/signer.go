// Package signing signs outbound files before they are enveloped.
//
// Keys live in PKCS#11 tokens (HSMs), on PC/SC smart cards or, for
// development and the demo only, in software. A Pool puts them behind one
// Signer: each signature goes to a healthy member of the requested profile
// (least busy or weighted choice, per-member concurrency limit), with health
// checks, a circuit breaker per member, failover to another member, and hot
// reconfiguration. Every signature is an audit Event and a metric sample.
//
// The delivery code calls Pool.SignFile to get a CMS SignedData with the
// signer certificate; Verify checks one (tests, simulator).
//
// PC/SC support needs libpcsclite and is compiled only with the build tag
// "pcsc"; without it a pcsc member fails to open with ErrPCSCUnavailable.
package signing

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"time"
)

// Signer is one signing key: a crypto.Signer plus identity and health.
// Members implement it, and so does the profile view of a Pool
// (Pool.Signer), so callers do not care which one they hold.
type Signer interface {
	crypto.Signer
	// SignContext is Sign with a context; Sign is SignContext with
	// context.Background(). ECDSA signatures are ASN.1 DER, RSA signatures are
	// PKCS#1 v1.5 unless opts is *rsa.PSSOptions (and the key supports it).
	SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error)
	// ID is the member id from the configuration (or "pool/<profile>").
	ID() string
	// Health returns nil when the key can sign now.
	Health(ctx context.Context) error
}

// Member is a key the pool can dispatch to. OpenMember opens the built-in
// kinds; Options.Open may supply others (tests, simulators).
type Member interface {
	Signer
	// Certificate is the certificate of the key (from the token, the card or
	// cert_file); it goes into the CMS.
	Certificate() *x509.Certificate
	// Close releases the device. The pool calls it once, with no signature in flight.
	Close() error
}

// Clock is the time source of the pool (breaker cooldowns, health interval,
// latencies). Tests pass a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// KeyID returns the identifier used in audit events for a public key: the
// hex SHA-256 of its DER SubjectPublicKeyInfo, or "" if it cannot be encoded.
func KeyID(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
