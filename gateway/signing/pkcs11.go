package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// pkcs11Member is a key on a PKCS#11 token, selected by token label and key
// label (never by slot number: slot ids change when tokens are created).
type pkcs11Member struct {
	mc  MemberConfig
	pin pin

	mu   sync.RWMutex // Sign holds it shared; a reopen holds it exclusively
	ctx  *crypto11.Context
	key  crypto11.Signer
	pub  crypto.PublicKey
	cert *x509.Certificate
}

func openPKCS11(ctx context.Context, mc MemberConfig, pin pin) (Member, error) {
	m := &pkcs11Member{mc: mc, pin: pin}
	if err := m.connect(ctx); err != nil {
		return nil, err
	}
	m.pub = m.key.Public()
	return m, nil
}

// connect opens the token, logs in once and finds the key and certificate.
// Called at open and by Health after the token went away; a PIN that the
// token rejects is reported and never presented again by the pool.
func (m *pkcs11Member) connect(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return newErr(CodeDevice, m.mc.ID, "open", err)
	}
	c, err := crypto11.Configure(&crypto11.Config{
		Path:        m.mc.Module,
		TokenLabel:  m.mc.TokenLabel,
		Pin:         string(m.pin),
		MaxSessions: m.mc.MaxConcurrency + 2, // + crypto11's persistent session + a health probe
	})
	if err != nil {
		return p11Err(m.mc.ID, "open token "+m.mc.TokenLabel, err, CodeDeviceGone)
	}
	key, err := c.FindKeyPair(nil, []byte(m.mc.KeyLabel))
	if err != nil {
		_ = c.Close()
		return p11Err(m.mc.ID, "find key", err, CodeDevice)
	}
	if key == nil {
		_ = c.Close()
		return newErr(CodeKeyNotFound, m.mc.ID, "find key", fmt.Errorf("no key pair labelled %q on token %q", m.mc.KeyLabel, m.mc.TokenLabel))
	}
	cert := m.cert
	if cert == nil {
		if m.mc.CertFile != "" {
			cert, err = readCertFile(m.mc.CertFile)
			if err != nil {
				_ = c.Close()
				return newErr(CodeKeyNotFound, m.mc.ID, "read cert_file", err)
			}
		} else {
			cert, err = c.FindCertificate(nil, []byte(m.mc.KeyLabel), nil)
			if err != nil {
				_ = c.Close()
				return p11Err(m.mc.ID, "find certificate", err, CodeDevice)
			}
			if cert == nil {
				_ = c.Close()
				return newErr(CodeKeyNotFound, m.mc.ID, "find certificate", fmt.Errorf("no certificate labelled %q on token %q and no cert_file", m.mc.KeyLabel, m.mc.TokenLabel))
			}
		}
	}
	if m.pub != nil {
		if k, ok := m.pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(key.Public()) {
			_ = c.Close()
			return newErr(CodeKeyNotFound, m.mc.ID, "reopen", errors.New("the key on the token changed"))
		}
	}
	m.ctx, m.key, m.cert = c, key, cert
	return nil
}

// p11Err maps a crypto11/PKCS#11 error to a typed error; other is the code
// for errors that carry no PKCS#11 return value.
func p11Err(id, op string, err error, other Code) error {
	var rv pkcs11.Error
	if !errors.As(err, &rv) {
		return newErr(other, id, op, err)
	}
	code := CodeDevice
	switch rv {
	case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE, pkcs11.CKR_PIN_EXPIRED:
		code = CodePINIncorrect
	case pkcs11.CKR_PIN_LOCKED:
		code = CodePINBlocked
	case pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED,
		pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_USER_NOT_LOGGED_IN,
		pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, pkcs11.CKR_SLOT_ID_INVALID, pkcs11.CKR_KEY_HANDLE_INVALID,
		pkcs11.CKR_OBJECT_HANDLE_INVALID, pkcs11.CKR_DEVICE_ERROR:
		code = CodeDeviceGone
	case pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID, pkcs11.CKR_DATA_LEN_RANGE,
		pkcs11.CKR_KEY_TYPE_INCONSISTENT, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED:
		code = CodeUnsupported
	}
	return newErr(code, id, op, err)
}

func (m *pkcs11Member) ID() string                     { return m.mc.ID }
func (m *pkcs11Member) Public() crypto.PublicKey       { return m.pub }
func (m *pkcs11Member) Certificate() *x509.Certificate { return m.cert }

func (m *pkcs11Member) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return m.SignContext(context.Background(), digest, opts)
}

// SignContext signs on the token. A PKCS#11 call cannot be interrupted: the
// context is checked before it starts.
func (m *pkcs11Member) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if err := checkDigest(m.mc.ID, digest, opts); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.ctx == nil {
		return nil, newErr(CodeDeviceGone, m.mc.ID, "sign", errors.New("token not open"))
	}
	sig, err := m.key.Sign(rand.Reader, digest, opts)
	if err != nil {
		return nil, p11Err(m.mc.ID, "sign", err, CodeDevice)
	}
	return sig, nil
}

// checkDigest refuses requests that no member could serve, before they
// reach a device.
func checkDigest(id string, digest []byte, opts crypto.SignerOpts) error {
	if opts == nil {
		return newErr(CodeUnsupported, id, "sign", errors.New("nil SignerOpts"))
	}
	switch h := opts.HashFunc(); h {
	case crypto.SHA256, crypto.SHA384, crypto.SHA512, crypto.SHA224, crypto.SHA1:
		if len(digest) != h.Size() {
			return newErr(CodeUnsupported, id, "sign", fmt.Errorf("digest is %d bytes, %v wants %d", len(digest), h, h.Size()))
		}
		return nil
	}
	return newErr(CodeUnsupported, id, "sign", fmt.Errorf("unsupported hash %v", opts.HashFunc()))
}

var healthDigest = sha256.Sum256([]byte("oct signing health probe"))

// Health signs a fixed digest and verifies the signature with the public
// key. If the token went away, it reopens it (logging in with the PIN that
// the token accepted before).
func (m *pkcs11Member) Health(ctx context.Context) error {
	err := m.probe(ctx)
	if err == nil || CodeOf(err) != CodeDeviceGone {
		return err
	}
	if err := m.reconnect(ctx); err != nil {
		return err
	}
	return m.probe(ctx)
}

func (m *pkcs11Member) reconnect(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx != nil {
		_ = m.ctx.Close()
		m.ctx, m.key = nil, nil
	}
	return m.connect(ctx)
}

func (m *pkcs11Member) probe(ctx context.Context) error {
	sig, err := m.SignContext(ctx, healthDigest[:], crypto.SHA256)
	if err != nil {
		return err
	}
	return verifyRaw(m.mc.ID, m.pub, healthDigest[:], sig)
}

// verifyRaw checks a PKCS#1 v1.5 or ECDSA signature over a SHA-256 digest.
func verifyRaw(id string, pub crypto.PublicKey, digest, sig []byte) error {
	ok := false
	switch k := pub.(type) {
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(k, digest, sig)
	default:
		return nil
	}
	if !ok {
		return newErr(CodeDevice, id, "health", errors.New("probe signature does not verify"))
	}
	return nil
}

func (m *pkcs11Member) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil {
		return nil
	}
	err := m.ctx.Close()
	m.ctx, m.key = nil, nil
	return err
}
