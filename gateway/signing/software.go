package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"os"
)

// OpenMember opens a member of a built-in kind. getenv reads pin_env
// variables (nil: os.Getenv). A pcsc member needs the build tag pcsc.
func OpenMember(ctx context.Context, mc MemberConfig, getenv func(string) string) (Member, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	mc = mc.withDefaults()
	switch mc.Kind {
	case KindSoftware:
		return OpenSoftware(mc)
	case KindPKCS11:
		pin, err := readPIN(mc, getenv)
		if err != nil {
			return nil, err
		}
		return openPKCS11(ctx, mc, pin)
	case KindPCSC:
		pin, err := readPIN(mc, getenv)
		if err != nil {
			return nil, err
		}
		return openPCSC(ctx, mc, pin)
	}
	return nil, newErr(CodeConfig, mc.ID, "open", errors.New("unknown kind"))
}

// Software is a member whose key is in memory. For development and the
// demo only: a production pool refuses software members.
type Software struct {
	id   string
	key  crypto.Signer
	cert *x509.Certificate
}

// OpenSoftware loads key_file and cert_file (PEM).
func OpenSoftware(mc MemberConfig) (*Software, error) {
	keyPEM, err := os.ReadFile(mc.KeyFile)
	if err != nil {
		return nil, newErr(CodeKeyNotFound, mc.ID, "read key_file", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, newErr(CodeKeyNotFound, mc.ID, "parse key_file", err)
	}
	cert, err := readCertFile(mc.CertFile)
	if err != nil {
		return nil, newErr(CodeKeyNotFound, mc.ID, "read cert_file", err)
	}
	return NewSoftware(mc.ID, key, cert)
}

// NewSoftware makes a software member from a key in memory.
func NewSoftware(id string, key crypto.Signer, cert *x509.Certificate) (*Software, error) {
	if k, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || cert == nil || !k.Equal(cert.PublicKey) {
		return nil, newErr(CodeKeyNotFound, id, "open", errors.New("certificate does not match the key"))
	}
	return &Software{id: id, key: key, cert: cert}, nil
}

func parseKeyPEM(b []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no private key PEM block")
		}
		var k any
		var err error
		switch blk.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		switch k := k.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer), nil
		}
		return nil, errors.New("unsupported private key type")
	}
}

func readCertFile(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no CERTIFICATE PEM block")
		}
		if blk.Type == "CERTIFICATE" {
			return x509.ParseCertificate(blk.Bytes)
		}
	}
}

func (s *Software) ID() string                       { return s.id }
func (s *Software) Public() crypto.PublicKey         { return s.key.Public() }
func (s *Software) Certificate() *x509.Certificate   { return s.cert }
func (s *Software) Health(ctx context.Context) error { return nil }
func (s *Software) Close() error                     { return nil }
func (s *Software) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return s.SignContext(context.Background(), d, o)
}

// SignContext signs with the in-memory key.
func (s *Software) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if opts.HashFunc() != 0 && len(digest) != opts.HashFunc().Size() {
		return nil, newErr(CodeUnsupported, s.id, "sign", errors.New("digest length does not match the hash"))
	}
	sig, err := s.key.Sign(rand.Reader, digest, opts)
	if err != nil {
		return nil, newErr(CodeUnsupported, s.id, "sign", err)
	}
	return sig, nil
}
