// Package cardemu emulates, for tests only, the smart card that the signing
// pool speaks to (the "OCT card applet": SELECT, VERIFY with a tries
// counter, MSE SET, PSO COMPUTE DIGITAL SIGNATURE, GET DATA for the
// certificate, GET RESPONSE chaining), with fault injection. It plugs into
// pcscd through the vpcd driver (see VPCD) or is driven in process.
package cardemu

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"sync"
)

// AID is the applet identifier of the OCT card applet.
var AID = []byte{0xF0, 0x00, 0x00, 0x00, 0x47, 0x57}

// ATR is the answer to reset the card presents (T=1).
var ATR = []byte{0x3B, 0x95, 0x13, 0x81, 0x01, 0x80, 0x73, 0xFF, 0x01, 0x00, 0x0B}

// Key is one key slot of the card.
type Key struct {
	Signer  crypto.Signer // *ecdsa.PrivateKey or *rsa.PrivateKey
	CertDER []byte
}

// Config sets up a card.
type Config struct {
	PIN      []byte
	MaxTries int          // default 3
	Keys     map[byte]Key // by key reference
	// Chunk is the largest data field in one response; longer answers are
	// chained with 61xx / GET RESPONSE (default 128, max 256).
	Chunk int
}

// Stats counts what the card did.
type Stats struct {
	Signatures int // successful PSO COMPUTE DIGITAL SIGNATURE
	Verifies   int // VERIFY commands that presented a PIN
	APDUs      int
}

type fault struct {
	ins   byte
	sw    uint16
	count int
}

// Card is the applet state. It is safe for concurrent use.
type Card struct {
	mu       sync.Mutex
	cfg      Config
	tries    int
	selected bool
	verified bool
	seKey    byte
	pending  []byte
	faults   []fault
	stats    Stats
}

// New makes a card.
func New(cfg Config) *Card {
	if cfg.MaxTries == 0 {
		cfg.MaxTries = 3
	}
	if cfg.Chunk <= 0 || cfg.Chunk > 256 {
		cfg.Chunk = 128
	}
	return &Card{cfg: cfg, tries: cfg.MaxTries}
}

// Reset clears the session state, as a power cycle or warm reset does: the
// applet is deselected and the PIN is no longer verified.
func (c *Card) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.selected, c.verified, c.seKey, c.pending = false, false, 0, nil
}

// SetTries sets the PIN tries left (0 blocks the PIN).
func (c *Card) SetTries(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tries = n
	if n == 0 {
		c.verified = false
	}
}

// Tries returns the PIN tries left.
func (c *Card) Tries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tries
}

// Fail makes the next count commands with instruction ins answer sw.
func (c *Card) Fail(ins byte, sw uint16, count int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = append(c.faults, fault{ins, sw, count})
}

// ClearFaults removes pending faults.
func (c *Card) ClearFaults() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = nil
}

// Stats returns the counters.
func (c *Card) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

func sw(data []byte, sw uint16) []byte {
	return append(append([]byte{}, data...), byte(sw>>8), byte(sw))
}

// Process answers one command APDU with a response APDU.
func (c *Card) Process(apdu []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.APDUs++
	if len(apdu) < 4 {
		return sw(nil, 0x6700)
	}
	ins, p1, p2 := apdu[1], apdu[2], apdu[3]
	for i := range c.faults {
		if c.faults[i].ins == ins && c.faults[i].count > 0 {
			c.faults[i].count--
			return sw(nil, c.faults[i].sw)
		}
	}
	var data []byte
	switch {
	case len(apdu) == 5:
		// case 2: Le only
	case len(apdu) > 5:
		lc := int(apdu[4])
		if len(apdu) < 5+lc || len(apdu) > 6+lc {
			return sw(nil, 0x6700)
		}
		data = apdu[5 : 5+lc]
	}
	if ins != 0xC0 {
		c.pending = nil
	}
	switch ins {
	case 0xA4: // SELECT
		if p1 != 0x04 || !bytes.Equal(data, AID) {
			c.selected = false
			return sw(nil, 0x6A82)
		}
		c.selected, c.verified, c.seKey = true, false, 0
		return sw(nil, 0x9000)
	case 0xC0: // GET RESPONSE
		if len(c.pending) == 0 {
			return sw(nil, 0x6985)
		}
		return c.respond(c.pending)
	}
	if !c.selected {
		return sw(nil, 0x6985)
	}
	switch ins {
	case 0x20: // VERIFY
		if p1 != 0x00 || p2 != 0x81 {
			return sw(nil, 0x6A86)
		}
		if c.tries == 0 {
			return sw(nil, 0x6983)
		}
		if data == nil { // status query
			if c.verified {
				return sw(nil, 0x9000)
			}
			return sw(nil, 0x63C0|uint16(c.tries))
		}
		c.stats.Verifies++
		if !bytes.Equal(data, c.cfg.PIN) {
			c.verified = false
			c.tries--
			if c.tries == 0 {
				return sw(nil, 0x6983)
			}
			return sw(nil, 0x63C0|uint16(c.tries))
		}
		c.tries = c.cfg.MaxTries
		c.verified = true
		return sw(nil, 0x9000)
	case 0x22: // MSE SET DST: 84 01 <ref>
		if p1 != 0x41 || p2 != 0xB6 || len(data) != 3 || data[0] != 0x84 || data[1] != 0x01 {
			return sw(nil, 0x6A80)
		}
		if _, ok := c.cfg.Keys[data[2]]; !ok {
			return sw(nil, 0x6A88)
		}
		c.seKey = data[2]
		return sw(nil, 0x9000)
	case 0x2A: // PSO COMPUTE DIGITAL SIGNATURE
		if p1 != 0x9E || p2 != 0x9A {
			return sw(nil, 0x6A86)
		}
		if !c.verified {
			return sw(nil, 0x6982)
		}
		k, ok := c.cfg.Keys[c.seKey]
		if !ok {
			return sw(nil, 0x6985)
		}
		sig, err := signRaw(k.Signer, data)
		if err != nil {
			return sw(nil, 0x6A80)
		}
		c.stats.Signatures++
		return c.respond(sig)
	case 0xCA: // GET DATA 7F21: certificate of key <ref>
		if p1 != 0x7F || p2 != 0x21 || len(data) != 1 {
			return sw(nil, 0x6A86)
		}
		k, ok := c.cfg.Keys[data[0]]
		if !ok || len(k.CertDER) == 0 {
			return sw(nil, 0x6A88)
		}
		return c.respond(k.CertDER)
	}
	return sw(nil, 0x6D00)
}

// respond sends up to Chunk bytes and keeps the rest for GET RESPONSE.
func (c *Card) respond(out []byte) []byte {
	if len(out) <= c.cfg.Chunk {
		c.pending = nil
		return sw(out, 0x9000)
	}
	head := out[:c.cfg.Chunk]
	c.pending = append([]byte{}, out[c.cfg.Chunk:]...)
	left := len(c.pending)
	if left > 255 {
		left = 0 // 6100: 256 or more
	}
	return sw(head, 0x6100|uint16(left))
}

// signRaw signs like a card: ECDSA over the given hash, output r||s;
// RSA PKCS#1 v1.5 over the given DigestInfo.
func signRaw(k crypto.Signer, in []byte) ([]byte, error) {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, in)
		if err != nil {
			return nil, err
		}
		n := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*n)
		r.FillBytes(out[:n])
		s.FillBytes(out[n:])
		return out, nil
	case *rsa.PrivateKey:
		return rsa.SignPKCS1v15(rand.Reader, k, crypto.Hash(0), in)
	}
	return nil, errors.New("cardemu: unsupported key type")
}
