package smtp

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"

	"github.com/emersion/go-message"
	"github.com/smallstep/pkcs7"
)

// Reasons a message is refused (errors.Is). Each maps to a 5xx reply.
var (
	ErrNoEDIPart  = errors.New("no application/EDI-consent part")
	ErrBadBase64  = errors.New("bad base64 in the EDI part")
	ErrBadGzip    = errors.New("bad gzip in the EDI part")
	ErrDecrypt    = errors.New("cannot decrypt the S/MIME part")
	ErrTooLarge   = errors.New("too large")
	ErrBadMessage = errors.New("malformed MIME message")
	ErrTooMany    = errors.New("too many EDI parts")
)

// EDIContentType is the media type of a B2 part (IRIS/B2).
const EDIContentType = "application/edi-consent"

// Part is one B2 file found in a message.
type Part struct {
	Name        string // attachment file name, or "B2" (informative)
	Description string // Content-Description, e.g. "IRIS/B2/Z"
	Encrypted   bool   // found inside an S/MIME enveloped-data part
	Data        []byte // the B2 bytes, decoded and decompressed
}

// Decrypter opens S/MIME enveloped-data addressed to the OCT.
type Decrypter struct {
	Cert *x509.Certificate
	Key  crypto.PrivateKey // a crypto.Decrypter (RSA), e.g. *rsa.PrivateKey or an HSM key
}

// ExtractOptions bound the work done on one message.
type ExtractOptions struct {
	MaxFileSize int64      // bytes of one decoded B2 file
	MaxParts    int        // EDI parts per message
	Decrypter   *Decrypter // nil: encrypted messages are refused
}

const maxDepth = 6

// Extract reads a message and returns its B2 files: every
// application/EDI-consent part, at any depth of multipart nesting and
// inside S/MIME enveloped-data (AES-128-CBC, AES-256-CBC, 3DES-CBC), base64
// or not, gunzipped when Content-Description ends in "/Z" or the bytes are
// gzip.
func Extract(r io.Reader, opt ExtractOptions) ([]Part, error) {
	if opt.MaxFileSize <= 0 {
		opt.MaxFileSize = 64 << 20
	}
	if opt.MaxParts <= 0 {
		opt.MaxParts = 20
	}
	ent, err := message.Read(bufio.NewReader(r))
	if err != nil && !message.IsUnknownCharset(err) {
		return nil, readErr(err, ErrBadMessage)
	}
	x := &extractor{opt: opt}
	if err := x.walk(ent, 0, false); err != nil {
		return nil, err
	}
	if len(x.parts) == 0 {
		return nil, ErrNoEDIPart
	}
	return x.parts, nil
}

type extractor struct {
	opt   ExtractOptions
	parts []Part
}

func (x *extractor) walk(e *message.Entity, depth int, encrypted bool) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nested too deep", ErrBadMessage)
	}
	mt, params, err := e.Header.ContentType()
	if err != nil {
		mt = "text/plain"
	}
	mt = strings.ToLower(mt)
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			// An unknown charset only matters for text parts, which are skipped.
			if err != nil && !(message.IsUnknownCharset(err) && p != nil) {
				return readErr(err, ErrBadMessage)
			}
			if err := x.walk(p, depth+1, encrypted); err != nil {
				return err
			}
		}
	}
	switch mt {
	case EDIContentType:
		return x.edi(e, params, encrypted)
	case "application/pkcs7-mime", "application/x-pkcs7-mime":
		if st := strings.ToLower(params["smime-type"]); st != "" && st != "enveloped-data" {
			return nil // signed-data etc. carry no B2 for us
		}
		return x.smime(e, depth)
	}
	// Skip any other part, reading it so that size limits still apply.
	_, err = io.Copy(io.Discard, e.Body)
	return readErr(err, ErrBadMessage)
}

func (x *extractor) edi(e *message.Entity, params map[string]string, encrypted bool) error {
	if len(x.parts) >= x.opt.MaxParts {
		return fmt.Errorf("%w: more than %d", ErrTooMany, x.opt.MaxParts)
	}
	desc := strings.TrimSpace(e.Header.Get("Content-Description"))
	cte := strings.ToLower(strings.TrimSpace(e.Header.Get("Content-Transfer-Encoding")))
	raw, err := readLimited(e.Body, x.opt.MaxFileSize)
	if err != nil {
		if cte == "base64" {
			return readErr(err, ErrBadBase64)
		}
		return readErr(err, ErrBadMessage)
	}
	compressed := strings.HasSuffix(strings.ToUpper(desc), "/Z")
	if compressed || bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadGzip, err)
		}
		raw, err = readLimited(zr, x.opt.MaxFileSize)
		if err != nil {
			return readErr(err, ErrBadGzip)
		}
	}
	x.parts = append(x.parts, Part{Name: partName(e, params), Description: desc, Encrypted: encrypted, Data: raw})
	return nil
}

func (x *extractor) smime(e *message.Entity, depth int) error {
	der, err := readLimited(e.Body, x.opt.MaxFileSize*2+1<<20)
	if err != nil {
		return readErr(err, ErrBadBase64)
	}
	if x.opt.Decrypter == nil || x.opt.Decrypter.Cert == nil {
		return fmt.Errorf("%w: no decryption certificate configured", ErrDecrypt)
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return fmt.Errorf("%w: not PKCS#7: %v", ErrDecrypt, err)
	}
	plain, err := p7.Decrypt(x.opt.Decrypter.Cert, x.opt.Decrypter.Key)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	inner, err := message.Read(bufio.NewReader(bytes.NewReader(plain)))
	if err != nil && !message.IsUnknownCharset(err) {
		return fmt.Errorf("%w: decrypted content: %v", ErrBadMessage, err)
	}
	return x.walk(inner, depth+1, true)
}

// readLimited reads all of r, failing with ErrTooLarge above max bytes.
func readLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: above %d bytes", ErrTooLarge, max)
	}
	return b, nil
}

// readErr classifies an error met while reading a part: size errors (ours
// or the SMTP data limit) stay as they are, base64 corruption is reported
// as such, anything else becomes def.
func readErr(err error, def error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrTooLarge) || isDataTooLarge(err) {
		return err
	}
	var ce base64.CorruptInputError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: %v", ErrBadBase64, err)
	}
	if errors.Is(def, ErrBadMessage) || errors.Is(def, ErrBadBase64) || errors.Is(def, ErrBadGzip) {
		return fmt.Errorf("%w: %v", def, err)
	}
	return err
}

func partName(e *message.Entity, params map[string]string) string {
	name := ""
	if _, dp, err := e.Header.ContentDisposition(); err == nil {
		name = dp["filename"]
	}
	if name == "" {
		name = params["name"]
	}
	if name != "" {
		if dec, err := new(mime.WordDecoder).DecodeHeader(name); err == nil {
			name = dec
		}
		name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	}
	var b strings.Builder
	for _, r := range name {
		if r >= 0x20 && r != 0x7f && b.Len() < 200 {
			b.WriteRune(r)
		}
	}
	if n := b.String(); n != "" && n != "." && n != "/" {
		return n
	}
	return "B2"
}
