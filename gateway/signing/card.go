package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
)

// The card profile spoken to smart cards (ISO 7816-4/-8 commands; the OCT
// card applet, emulated in tests by internal/cardemu):
//
//	SELECT          00 A4 04 0C Lc <AID>
//	PIN status      00 20 00 81            -> 9000 verified | 63Cx x tries left | 6983 blocked
//	VERIFY          00 20 00 81 Lc <PIN>   -> 9000 | 63Cx wrong, x left | 6983 blocked
//	MSE SET DST     00 22 41 B6 03 84 01 <key ref>
//	PSO CDS         00 2A 9E 9A Lc <input> 00
//	                input: the hash (ECDSA) or a DigestInfo (RSA PKCS#1 v1.5)
//	                output: r||s (ECDSA, plain format) or the RSA signature
//	GET DATA cert   00 CA 7F 21 01 <key ref> 00  -> certificate DER
//	GET RESPONSE    00 C0 00 00 xx           while SW is 61xx
const (
	insSelect      = 0xA4
	insVerify      = 0x20
	insMSE         = 0x22
	insPSO         = 0x2A
	insGetData     = 0xCA
	insGetResponse = 0xC0
	pinRef         = 0x81
)

// Status words.
const (
	swOK               = 0x9000
	swWrongLength      = 0x6700
	swSecurityStatus   = 0x6982
	swPINBlocked       = 0x6983
	swConditions       = 0x6985
	swFileNotFound     = 0x6A82
	swRefDataNotFound  = 0x6A88
	swBytesRemaining   = 0x61 // SW1
	swPINTriesLeftMask = 0x63C0
)

// cardTransport carries APDUs to one card: PC/SC (build tag pcsc) in
// production, the emulator in process in unit tests. Errors are typed:
// CodeDeviceGone when the card was removed or reset, else CodeDevice.
type cardTransport interface {
	Transmit(ctx context.Context, apdu []byte) ([]byte, error)
	// Reconnect gets a fresh connection to the card after a removal or reset.
	Reconnect(ctx context.Context) error
	Close() error
}

// cardMember is a key on a smart card. The card does one thing at a time:
// a mutex serializes its APDU sequences.
type cardMember struct {
	mc     MemberConfig
	pin    pin
	aid    []byte
	keyRef byte
	tr     cardTransport

	mu    sync.Mutex
	ready bool // applet selected and PIN verified in the current card session
	pub   crypto.PublicKey
	cert  *x509.Certificate
}

// newCardMember logs in (SELECT, PIN status, VERIFY once), reads the
// certificate (card or cert_file) and checks with one probe signature that
// the card's key matches it. On error the transport is closed.
func newCardMember(ctx context.Context, mc MemberConfig, p pin, tr cardTransport) (*cardMember, error) {
	aid, err := hex.DecodeString(mc.AID)
	if err != nil {
		_ = tr.Close()
		return nil, newErr(CodeConfig, mc.ID, "aid", err)
	}
	m := &cardMember{mc: mc, pin: p, aid: aid, keyRef: byte(mc.KeyRef), tr: tr}
	if err := m.open(ctx); err != nil {
		_ = tr.Close()
		return nil, err
	}
	return m, nil
}

func (m *cardMember) open(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.login(ctx); err != nil {
		return err
	}
	cert, err := m.readCert(ctx)
	if err != nil {
		return err
	}
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
	case *ecdsa.PublicKey:
		_ = k
	default:
		return newErr(CodeUnsupported, m.mc.ID, "open", fmt.Errorf("unsupported card key %T", cert.PublicKey))
	}
	m.cert, m.pub = cert, cert.PublicKey
	sig, err := m.signLocked(ctx, healthDigest[:], crypto.SHA256)
	if err != nil {
		return err
	}
	return verifyRaw(m.mc.ID, m.pub, healthDigest[:], sig)
}

func (m *cardMember) readCert(ctx context.Context) (*x509.Certificate, error) {
	if m.mc.CertFile != "" {
		c, err := readCertFile(m.mc.CertFile)
		if err != nil {
			return nil, newErr(CodeKeyNotFound, m.mc.ID, "read cert_file", err)
		}
		return c, nil
	}
	der, sw, err := m.transmit(ctx, "get certificate", []byte{0x00, insGetData, 0x7F, 0x21, 0x01, m.keyRef, 0x00})
	if err != nil {
		return nil, err
	}
	switch sw {
	case swOK:
	case swRefDataNotFound, swFileNotFound:
		return nil, newErr(CodeKeyNotFound, m.mc.ID, "get certificate", fmt.Errorf("no certificate for key %d (SW %04X)", m.keyRef, sw))
	default:
		return nil, m.swErr("get certificate", sw)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, newErr(CodeDevice, m.mc.ID, "parse certificate", err)
	}
	return c, nil
}

// login selects the applet and verifies the PIN. The remaining tries are
// read first, so a blocked card never sees the PIN; a rejected PIN is
// reported with the tries left and the pool never presents it again.
// Called with m.mu held.
func (m *cardMember) login(ctx context.Context) error {
	m.ready = false
	if err := m.selectApplet(ctx); err != nil {
		return err
	}
	_, sw, err := m.transmit(ctx, "pin status", []byte{0x00, insVerify, 0x00, pinRef})
	if err != nil {
		return err
	}
	switch {
	case sw == swOK: // still verified in this card session
		m.ready = true
		return nil
	case sw == swPINBlocked || sw == swPINTriesLeftMask:
		return newErr(CodePINBlocked, m.mc.ID, "pin status", nil)
	case sw&0xFFF0 == swPINTriesLeftMask:
	default:
		return m.swErr("pin status", sw)
	}
	verify := append([]byte{0x00, insVerify, 0x00, pinRef, byte(len(m.pin))}, m.pin...)
	_, sw, err = m.transmit(ctx, "verify pin", verify)
	if err != nil {
		return err
	}
	switch {
	case sw == swOK:
		m.ready = true
		return nil
	case sw == swPINBlocked || sw == swPINTriesLeftMask:
		return newErr(CodePINBlocked, m.mc.ID, "verify pin", nil)
	case sw&0xFFF0 == swPINTriesLeftMask:
		e := newErr(CodePINIncorrect, m.mc.ID, "verify pin", nil)
		e.TriesLeft = int(sw & 0x0F)
		return e
	case sw == swWrongLength:
		return newErr(CodePINIncorrect, m.mc.ID, "verify pin", errors.New("PIN length refused by the card"))
	default:
		return m.swErr("verify pin", sw)
	}
}

// selectApplet selects the OCT applet. Called with m.mu held.
func (m *cardMember) selectApplet(ctx context.Context) error {
	sel := append([]byte{0x00, insSelect, 0x04, 0x0C, byte(len(m.aid))}, m.aid...)
	_, sw, err := m.transmit(ctx, "select", sel)
	if err != nil {
		return err
	}
	switch sw {
	case swOK:
		return nil
	case swFileNotFound:
		return newErr(CodeKeyNotFound, m.mc.ID, "select", fmt.Errorf("applet %X not on the card", m.aid))
	default:
		return m.swErr("select", sw)
	}
}

func (m *cardMember) swErr(op string, sw uint16) error {
	return newErr(CodeDevice, m.mc.ID, op, fmt.Errorf("card status word %04X", sw))
}

// transmit sends one command and follows 61xx with GET RESPONSE. It
// returns the data and the final status word. Called with m.mu held.
func (m *cardMember) transmit(ctx context.Context, op string, cmd []byte) ([]byte, uint16, error) {
	var data []byte
	for range 128 { // at most 128 chained responses (32 KiB)
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		resp, err := m.tr.Transmit(ctx, cmd)
		if err != nil {
			if CodeOf(err) == CodeDeviceGone {
				m.ready = false
			}
			var e *Error
			if errors.As(err, &e) && e.Op == "" {
				e.Op = op
			}
			return nil, 0, err
		}
		if len(resp) < 2 {
			return nil, 0, newErr(CodeDevice, m.mc.ID, op, fmt.Errorf("short response (%d bytes)", len(resp)))
		}
		n := len(resp) - 2
		data = append(data, resp[:n]...)
		sw := uint16(resp[n])<<8 | uint16(resp[n+1])
		if resp[n] != swBytesRemaining {
			return data, sw, nil
		}
		cmd = []byte{0x00, insGetResponse, 0x00, 0x00, resp[n+1]}
	}
	return nil, 0, newErr(CodeDevice, m.mc.ID, op, errors.New("response chaining does not end"))
}

// DigestInfo prefixes (RFC 8017 section 9.2, note 1).
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA1:   {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	crypto.SHA224: {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c},
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

func (m *cardMember) ID() string                     { return m.mc.ID }
func (m *cardMember) Public() crypto.PublicKey       { return m.pub }
func (m *cardMember) Certificate() *x509.Certificate { return m.cert }

func (m *cardMember) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return m.SignContext(context.Background(), digest, opts)
}

// SignContext runs MSE SET and PSO COMPUTE DIGITAL SIGNATURE. If the card
// session was lost (removal, reset) it fails with ErrDeviceGone; the pool's
// health check logs in again.
func (m *cardMember) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if err := checkDigest(m.mc.ID, digest, opts); err != nil {
		return nil, err
	}
	if _, pss := opts.(*rsa.PSSOptions); pss {
		return nil, newErr(CodeUnsupported, m.mc.ID, "sign", errors.New("the card profile signs PKCS#1 v1.5 only"))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.ready {
		return nil, newErr(CodeDeviceGone, m.mc.ID, "sign", errors.New("card session lost; waiting for a health check to log in again"))
	}
	return m.signLocked(ctx, digest, opts)
}

func (m *cardMember) signLocked(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	var input []byte
	switch m.pub.(type) {
	case *rsa.PublicKey:
		prefix, ok := digestInfoPrefix[opts.HashFunc()]
		if !ok {
			return nil, newErr(CodeUnsupported, m.mc.ID, "sign", fmt.Errorf("hash %v", opts.HashFunc()))
		}
		input = append(append([]byte{}, prefix...), digest...)
	default:
		input = digest
	}
	_, sw, err := m.transmit(ctx, "mse set", []byte{0x00, insMSE, 0x41, 0xB6, 0x03, 0x84, 0x01, m.keyRef})
	if err != nil {
		return nil, err
	}
	if err := m.checkSignSW("mse set", sw); err != nil {
		return nil, err
	}
	pso := append([]byte{0x00, insPSO, 0x9E, 0x9A, byte(len(input))}, input...)
	pso = append(pso, 0x00)
	out, sw, err := m.transmit(ctx, "pso cds", pso)
	if err != nil {
		return nil, err
	}
	if err := m.checkSignSW("pso cds", sw); err != nil {
		return nil, err
	}
	return m.encodeSignature(out)
}

func (m *cardMember) checkSignSW(op string, sw uint16) error {
	switch sw {
	case swOK:
		return nil
	case swSecurityStatus, swConditions:
		// PIN no longer verified or applet no longer selected (the card was
		// reset behind our back): the health check logs in again.
		m.ready = false
		return newErr(CodeDeviceGone, m.mc.ID, op, fmt.Errorf("card status word %04X: card session lost", sw))
	case swRefDataNotFound:
		return newErr(CodeKeyNotFound, m.mc.ID, op, fmt.Errorf("no key %d on the card", m.keyRef))
	}
	return m.swErr(op, sw)
}

// encodeSignature turns the card's output into crypto.Signer form: ASN.1
// DER for ECDSA (the card returns r||s), unchanged for RSA.
func (m *cardMember) encodeSignature(out []byte) ([]byte, error) {
	switch k := m.pub.(type) {
	case *rsa.PublicKey:
		if len(out) != k.Size() {
			return nil, newErr(CodeDevice, m.mc.ID, "pso cds", fmt.Errorf("RSA signature is %d bytes, want %d", len(out), k.Size()))
		}
		return out, nil
	case *ecdsa.PublicKey:
		n := (k.Curve.Params().BitSize + 7) / 8
		if len(out) != 2*n {
			return nil, newErr(CodeDevice, m.mc.ID, "pso cds", fmt.Errorf("ECDSA signature is %d bytes, want %d", len(out), 2*n))
		}
		der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(out[:n]), new(big.Int).SetBytes(out[n:])})
		if err != nil {
			return nil, newErr(CodeDevice, m.mc.ID, "pso cds", err)
		}
		return der, nil
	}
	return nil, newErr(CodeUnsupported, m.mc.ID, "sign", errors.New("unsupported key"))
}

// Health asks the card whether the PIN is still verified. After a removal
// or reset it reconnects and logs in again with the PIN the card accepted
// before (a rejection disables the member; it is never retried).
func (m *cardMember) Health(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ready {
		_, sw, err := m.transmit(ctx, "pin status", []byte{0x00, insVerify, 0x00, pinRef})
		if err == nil && sw == swOK {
			return nil
		}
		if err != nil && CodeOf(err) != CodeDeviceGone {
			return err
		}
		m.ready = false
	}
	if err := m.tr.Reconnect(ctx); err != nil {
		return err
	}
	return m.login(ctx)
}

func (m *cardMember) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ready = false
	return m.tr.Close()
}
