package signing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"io"

	"github.com/smallstep/pkcs7"
)

// FileOption changes how SignCMS builds the CMS.
type FileOption func(*fileOptions)

type fileOptions struct {
	detached bool
}

// Detached leaves the file out of the CMS (the signature travels next to
// the file, as in S/MIME multipart/signed). Verify then needs the data.
// Pool.SignFileDetached is SignFile with this option.
func Detached() FileOption { return func(o *fileOptions) { o.detached = true } }

// SignFile signs data with a member of profile and returns a DER CMS
// SignedData (RFC 5652) with SHA-256, signed attributes (content type,
// message digest, signing time), the signer's certificate and the file
// inside (attached). ref is the file or lot reference recorded in the audit
// event. On a member failure the request moves to another member of the
// profile and the CMS is rebuilt with that member's certificate: exactly
// one CMS, from exactly one member, is returned.
func (p *Pool) SignFile(ctx context.Context, profile, ref string, data []byte) ([]byte, error) {
	return p.signFile(ctx, profile, ref, data, fileOptions{})
}

// SignFileDetached is SignFile without the file inside the CMS (for
// S/MIME multipart/signed or a signature file next to the data).
func (p *Pool) SignFileDetached(ctx context.Context, profile, ref string, data []byte) ([]byte, error) {
	return p.signFile(ctx, profile, ref, data, fileOptions{detached: true})
}

func (p *Pool) signFile(ctx context.Context, profile, ref string, data []byte, o fileOptions) ([]byte, error) {
	sum := sha256.Sum256(data)
	var out []byte
	_, err := p.run(ctx, request{profile: profile, ref: ref, digest: sum[:], hash: crypto.SHA256},
		func(ctx context.Context, m *member) error {
			der, err := buildCMS(ctx, data, m.dev, m.cert, o.detached)
			if err != nil {
				return err
			}
			out = der
			return nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SignCMS builds the same CMS as Pool.SignFile with one Signer and its
// certificate (tools, tests, single-key setups).
func SignCMS(ctx context.Context, s Signer, cert *x509.Certificate, data []byte, opts ...FileOption) ([]byte, error) {
	var o fileOptions
	for _, opt := range opts {
		opt(&o)
	}
	return buildCMS(ctx, data, s, cert, o.detached)
}

func buildCMS(ctx context.Context, data []byte, s Signer, cert *x509.Certificate, detached bool) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(data)
	if err != nil {
		return nil, newErr(CodeUnsupported, "", "build cms", err)
	}
	// Per instance: never touch pkcs7's process-wide default (SHA-1).
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	var signErr error
	key := cmsKey{ctx: ctx, s: s, err: &signErr}
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		if signErr != nil {
			return nil, signErr // the member's own typed error
		}
		return nil, newErr(CodeUnsupported, s.ID(), "build cms", err)
	}
	if detached {
		sd.Detach()
	}
	der, err := sd.Finish()
	if err != nil {
		return nil, newErr(CodeUnsupported, s.ID(), "build cms", err)
	}
	return der, nil
}

// cmsKey hands a Signer to pkcs7 (which wants a crypto.PrivateKey that is a
// crypto.Signer) and carries the request's context to SignContext.
type cmsKey struct {
	ctx context.Context
	s   Signer
	err *error
}

func (k cmsKey) Public() crypto.PublicKey { return k.s.Public() }

func (k cmsKey) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := k.s.SignContext(k.ctx, digest, opts)
	if err != nil {
		*k.err = err
	}
	return sig, err
}

// Verify checks a CMS SignedData made by SignFile and returns the signer's
// certificate. data is the signed file: required for a detached CMS; for an
// attached one it may be nil, otherwise it must equal the content. Verify
// checks the signature and the message digest, not the certificate chain
// (see VerifyChain).
func Verify(cmsDER, data []byte) (*x509.Certificate, error) {
	return verify(cmsDER, data, nil)
}

// VerifyChain is Verify plus a check of the signer certificate's chain to
// roots, at the signing time.
func VerifyChain(cmsDER, data []byte, roots *x509.CertPool) (*x509.Certificate, error) {
	if roots == nil {
		return nil, newErr(CodeVerify, "", "verify", errors.New("no roots"))
	}
	return verify(cmsDER, data, roots)
}

// Content returns the file inside an attached CMS, after verifying it, and
// the signer's certificate.
func Content(cmsDER []byte) ([]byte, *x509.Certificate, error) {
	p7, err := pkcs7.Parse(cmsDER)
	if err != nil {
		return nil, nil, newErr(CodeVerify, "", "parse cms", err)
	}
	if len(p7.Content) == 0 {
		return nil, nil, newErr(CodeVerify, "", "content", errors.New("detached CMS has no content"))
	}
	cert, err := verify(cmsDER, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	return p7.Content, cert, nil
}

func verify(cmsDER, data []byte, roots *x509.CertPool) (*x509.Certificate, error) {
	p7, err := pkcs7.Parse(cmsDER)
	if err != nil {
		return nil, newErr(CodeVerify, "", "parse cms", err)
	}
	switch {
	case len(p7.Content) == 0 && data == nil:
		return nil, newErr(CodeVerify, "", "verify", errors.New("detached CMS and no data"))
	case len(p7.Content) == 0:
		p7.Content = data
	case data != nil && !bytes.Equal(p7.Content, data):
		return nil, newErr(CodeVerify, "", "verify", errors.New("content differs from data"))
	}
	if len(p7.Signers) != 1 {
		return nil, newErr(CodeVerify, "", "verify", errors.New("want exactly one signer"))
	}
	if roots != nil {
		err = p7.VerifyWithChain(roots)
	} else {
		err = p7.Verify()
	}
	if err != nil {
		return nil, newErr(CodeVerify, "", "verify", err)
	}
	cert := p7.GetOnlySigner()
	if cert == nil {
		return nil, newErr(CodeVerify, "", "verify", errors.New("no signer certificate"))
	}
	return cert, nil
}

// Signer returns the Signer view of profile: SignContext dispatches with
// failover like SignFile. Public returns the key shared by all the
// profile's members (replicated HSM keys); when they hold different keys
// (one key per card) Public returns nil and SignContext fails with
// ErrMixedKeys: use SignFile or SignDigest, which report the signer.
func (p *Pool) Signer(profile string) Signer { return &profileSigner{p: p, profile: profile} }

type profileSigner struct {
	p       *Pool
	profile string
}

func (s *profileSigner) ID() string { return "pool/" + s.profile }

// sharedKey returns the public key of the profile's open members if they
// all have the same one.
func (s *profileSigner) sharedKey() (crypto.PublicKey, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	var key crypto.PublicKey
	for _, m := range s.p.members {
		if m.cfg.Profile != s.profile || m.pub == nil {
			continue
		}
		if key == nil {
			key = m.pub
			continue
		}
		if k, ok := key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(m.pub) {
			return nil, newErr(CodeMixedKeys, "", "profile "+s.profile, nil)
		}
	}
	if key == nil {
		return nil, newErr(CodeNoMember, "", "profile "+s.profile, nil)
	}
	return key, nil
}

func (s *profileSigner) Public() crypto.PublicKey {
	k, _ := s.sharedKey()
	return k
}

func (s *profileSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.p.cfg.SignTimeout)
	defer cancel()
	return s.SignContext(ctx, digest, opts)
}

func (s *profileSigner) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	key, err := s.sharedKey()
	if err != nil {
		return nil, err
	}
	k := key.(interface{ Equal(crypto.PublicKey) bool })
	sig, err := s.p.signDigest(ctx, request{
		profile: s.profile, digest: digest, hash: opts.HashFunc(),
		accept: func(m *member) bool { return k.Equal(m.pub) },
	}, opts)
	if err != nil {
		return nil, err
	}
	return sig.Bytes, nil
}

// Health is nil when at least one member of the profile is up with its
// breaker letting requests through.
func (s *profileSigner) Health(ctx context.Context) error {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	for _, m := range p.members {
		if m.cfg.Profile == s.profile && m.state == StateUp && m.br.ready(now) {
			return nil
		}
	}
	return newErr(CodeNoMember, "", "profile "+s.profile, nil)
}
