// Package nir handles the French social-security number (NIR, "numéro
// d'inscription au répertoire"): its control key, syntax checks, masking for
// display and keyed hashing for storage.
//
// A NIR is personal data. The gateway never logs one and stores only the
// keyed hash (Hasher.Sum); the masked form (Mask) shows the sex, year and
// month of birth only. Nothing in this package logs or keeps a NIR.
//
// Layout of the 13 characters (sex 1, year 2, month 2, department 2, commune
// 3, order 3) followed by the 2-digit key. The key is 97 − (NIR mod 97); for
// Corsica the department is 2A or 2B, and the number is read with the letter
// replaced by 0 minus 1 000 000 (2A) or 2 000 000 (2B) (docs/formats.md §1.5).
package nir

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"github.com/octgw/oct/formats/fixed"
)

// Stable error codes.
const (
	// ErrSyntax: not 13 characters of digits (2A/2B allowed as department).
	ErrSyntax fixed.Code = "nir-syntax"
	// ErrKey: the key does not match the number.
	ErrKey fixed.Code = "nir-key"
)

// Len is the length of a NIR without its key; LenWithKey with it.
const (
	Len        = 13
	LenWithKey = 15
)

// Number returns the numeric value used for the key: the 13 digits, with the
// Corsican departments 2A and 2B rewritten. ok is false for a syntax error.
// It does not allocate.
func Number(nir []byte) (n int64, ok bool) {
	if len(nir) != Len {
		return 0, false
	}
	var corsica int64
	for i, c := range nir {
		d := c - '0'
		if d > 9 {
			if i != 6 || nir[5] != '2' {
				return 0, false
			}
			switch c {
			case 'A', 'a':
				corsica = 1000000
			case 'B', 'b':
				corsica = 2000000
			default:
				return 0, false
			}
			d = 0
		}
		n = n*10 + int64(d)
	}
	return n - corsica, true
}

// KeyOf computes the key (1..97) of a 13-character NIR without allocating.
func KeyOf(nir []byte) (int, bool) {
	n, ok := Number(nir)
	if !ok {
		return 0, false
	}
	return int(97 - n%97), true
}

// Key computes the key of a 13-character NIR.
func Key(nir string) (int, error) {
	k, ok := KeyOf([]byte(nir))
	if !ok {
		return 0, ErrSyntax
	}
	return k, nil
}

// CheckBytes verifies a 13-character NIR against its 2-digit key without
// allocating. It returns nil, ErrSyntax or ErrKey.
func CheckBytes(nir, key []byte) error {
	want, ok := KeyOf(nir)
	if !ok {
		return ErrSyntax
	}
	got, ok := fixed.ParseUint(key)
	if !ok || len(key) != 2 {
		return ErrSyntax
	}
	if int(got) != want {
		return ErrKey
	}
	return nil
}

// Check verifies a NIR given with its key (15 characters, blanks allowed
// between groups: "1 84 12 75 123 456 78").
func Check(s string) error {
	b, ok := compact(s)
	if !ok || len(b) != LenWithKey {
		return ErrSyntax
	}
	return CheckBytes(b[:Len], b[Len:])
}

// Valid reports whether s is a well-formed NIR with a correct key.
func Valid(s string) bool { return Check(s) == nil }

// compact drops blanks and upper-cases a/b; at most LenWithKey characters.
func compact(s string) ([]byte, bool) {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			continue
		case c == 'a' || c == 'b':
			c -= 'a' - 'A'
		}
		if len(b) == LenWithKey {
			return nil, false
		}
		b = append(b, c)
	}
	return b, true
}

// Mask returns a display form that keeps only the sex, year and month of
// birth: "1 84 12 ** *** *** **". Anything that is not a 13- or 15-character
// NIR is masked entirely (never echoed).
func Mask(s string) string {
	b, ok := compact(s)
	if !ok || (len(b) != Len && len(b) != LenWithKey) {
		return "* ** ** ** *** *** **"
	}
	for _, c := range b[:5] {
		if c < '0' || c > '9' {
			return "* ** ** ** *** *** **"
		}
	}
	return string(b[0:1]) + " " + string(b[1:3]) + " " + string(b[3:5]) + " ** *** *** **"
}

// Hasher computes keyed hashes of NIRs so that the gateway can match
// invoices of the same insured without storing the number.
type Hasher struct{ key []byte }

// MinKeyLen is the minimum HMAC key length accepted by NewHasher.
const MinKeyLen = 16

// ErrShortKey is returned by NewHasher for a key shorter than MinKeyLen.
var ErrShortKey = errors.New("nir: hash key shorter than 16 bytes")

// NewHasher returns a Hasher for the caller's secret key (copied).
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) < MinKeyLen {
		return nil, ErrShortKey
	}
	return &Hasher{key: append([]byte(nil), key...)}, nil
}

// Sum returns hex(HMAC-SHA256(key, NIR)) over the 13-character NIR, blanks
// removed and upper-cased; the key digits, when present, are not hashed (they
// derive from the number), so "184127512345678" and "1841275123456" hash
// alike. Input that is not a NIR is hashed as given after the same
// normalisation, so equal inputs still match.
func (h *Hasher) Sum(nir string) string {
	b, ok := compact(nir)
	if !ok {
		b = []byte(nir)
	} else if len(b) == LenWithKey {
		b = b[:Len]
	}
	m := hmac.New(sha256.New, h.key)
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

// Hash is NewHasher(key).Sum(nir) for one-off use; it returns ErrShortKey
// for a short key.
func Hash(key []byte, nir string) (string, error) {
	h, err := NewHasher(key)
	if err != nil {
		return "", err
	}
	return h.Sum(nir), nil
}
