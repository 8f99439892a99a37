package iris

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/octgw/oct/referentials"
)

// Media types and names of the parts.
const (
	EDIContentType       = "application/EDI-consent"
	SignatureContentType = "application/pkcs7-signature"
	SMIMEContentType     = "application/pkcs7-mime"
	// SignatureDescription marks the detached signature part.
	SignatureDescription = "IRIS/B2/SIGNATURE"
)

// ErrMail is returned by Build for a Mail it cannot write.
var ErrMail = errors.New("iris: bad mail")

// Mail is one IRIS message: one file, optionally its detached signature,
// optionally encrypted.
type Mail struct {
	From, To  string    // bare addresses
	MessageID string    // with or without the angle brackets
	Date      time.Time // Date header
	Subject   string
	// Description is the Content-Description of the file part, e.g.
	// Description(test, true). It is repeated on the outer header.
	Description string
	FileName    string // file part's attachment name ("" for none)
	Data        []byte // the file (B2, ARL or NOEMIE), uncompressed
	Compress    bool   // gzip Data (the description should end in /Z)
	Signature   []byte // DER CMS SignedData of Data, carried as-is (nil: none)
	// Cert and Cipher: when Cipher is aes128 or 3des the file part (and
	// the signature part) are enveloped to Cert; none or "" with a nil
	// Cert sends them in clear.
	Cert   *x509.Certificate
	Cipher referentials.Cipher
	Rand   io.Reader // randomness for boundaries and encryption [crypto/rand]
	// Header holds extra outer header fields (e.g. X-SV_CHIFFREMENT), in
	// the order given; values must be printable ASCII.
	Header [][2]string
}

// Gzip compresses b with a fixed header (no name, zero time) so that the
// same input always gives the same bytes. It favours speed (level 1):
// fixed-width B2 records compress about as well at any level, and the
// compressor was the sender's largest cost (docs/benchmarks.md). Writers
// are reused: each holds several hundred KiB of tables.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b)/8 + 64)
	zw, _ := gzipWriters.Get().(*gzip.Writer)
	if zw == nil {
		zw, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	} else {
		zw.Reset(&buf)
	}
	_, _ = zw.Write(b)
	_ = zw.Close()
	gzipWriters.Put(zw)
	return buf.Bytes()
}

var gzipWriters sync.Pool

// Build writes m as an RFC 5322 message with CRLF line ends:
//
//	outer headers (From, To, Date, Message-ID, Subject, MIME-Version,
//	Content-Description, extras)
//	multipart/mixed
//	  └ encrypted: application/pkcs7-mime; smime-type=enveloped-data (base64)
//	      └ content = the inner entity below
//	  └ clear: the inner entity below
//	inner entity: the EDI part alone, or, with a signature,
//	  multipart/mixed { EDI part, application/pkcs7-signature part }
//	EDI part: application/EDI-consent, base64, Content-Description.
func Build(w io.Writer, m Mail) error {
	rnd := m.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	if m.To == "" || m.From == "" || m.MessageID == "" || m.Subject == "" || m.Description == "" {
		return fmt.Errorf("%w: From, To, Message-ID, Subject and Description are required", ErrMail)
	}
	for _, v := range []string{m.From, m.To, m.MessageID, m.Subject, m.Description, m.FileName} {
		if !printable(v) {
			return fmt.Errorf("%w: header value %q is not printable ASCII", ErrMail, v)
		}
	}
	for _, kv := range m.Header {
		if !printable(kv[0]) || !printable(kv[1]) || strings.ContainsAny(kv[0], ": ") {
			return fmt.Errorf("%w: extra header %q", ErrMail, kv[0])
		}
	}
	encrypt := m.Cipher != "" && m.Cipher != referentials.CipherNone
	if encrypt && m.Cert == nil {
		return fmt.Errorf("%w: cipher %s without a recipient certificate", ErrMail, m.Cipher)
	}
	if !encrypt && m.Cert != nil {
		return fmt.Errorf("%w: a recipient certificate with cipher none", ErrMail)
	}

	inner, err := innerEntity(m, rnd)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	id := strings.Trim(m.MessageID, "<>")
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	hdr := [][2]string{
		{"From", "<" + m.From + ">"},
		{"To", "<" + m.To + ">"},
		{"Date", date.Format(time.RFC1123Z)},
		{"Message-ID", "<" + id + ">"},
		{"Subject", m.Subject},
		{"MIME-Version", "1.0"},
		{"Content-Description", m.Description},
	}
	hdr = append(hdr, m.Header...)
	for _, kv := range hdr {
		fmt.Fprintf(bw, "%s: %s\r\n", kv[0], kv[1])
	}
	mw := multipart.NewWriter(bw)
	if err := mw.SetBoundary(boundary(rnd)); err != nil {
		return err
	}
	fmt.Fprintf(bw, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n", mw.Boundary())
	if encrypt {
		der, err := Encrypt(inner, m.Cert, m.Cipher, rnd)
		if err != nil {
			return err
		}
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", SMIMEContentType+`; smime-type=enveloped-data; name="smime.p7m"`)
		h.Set("Content-Transfer-Encoding", "base64")
		h.Set("Content-Disposition", `attachment; filename="smime.p7m"`)
		pw, err := mw.CreatePart(h)
		if err != nil {
			return err
		}
		if err := writeBase64(pw, der); err != nil {
			return err
		}
	} else {
		// The inner entity is a complete MIME entity (headers + body):
		// copy it as one part.
		if err := copyEntity(mw, inner); err != nil {
			return err
		}
	}
	if err := mw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// innerEntity builds the entity that is encrypted (or sent in clear).
func innerEntity(m Mail, rnd io.Reader) ([]byte, error) {
	data := m.Data
	if m.Compress {
		data = Gzip(data)
	}
	edi := textproto.MIMEHeader{}
	ct := EDIContentType
	if m.FileName != "" {
		ct += "; " + param("name", m.FileName)
	}
	edi.Set("Content-Type", ct)
	edi.Set("Content-Transfer-Encoding", "base64")
	edi.Set("Content-Description", m.Description)
	if m.FileName != "" {
		edi.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": m.FileName}))
	}
	var buf bytes.Buffer
	if len(m.Signature) == 0 {
		writeHeader(&buf, edi)
		if err := writeBase64(&buf, data); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	mw := multipart.NewWriter(&buf)
	if err := mw.SetBoundary(boundary(rnd)); err != nil {
		return nil, err
	}
	fmt.Fprintf(&buf, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n", mw.Boundary())
	pw, err := mw.CreatePart(edi)
	if err != nil {
		return nil, err
	}
	if err := writeBase64(pw, data); err != nil {
		return nil, err
	}
	sig := textproto.MIMEHeader{}
	sigName := "B2.p7s"
	if m.FileName != "" {
		sigName = m.FileName + ".p7s"
	}
	sig.Set("Content-Type", SignatureContentType+"; "+param("name", sigName))
	sig.Set("Content-Transfer-Encoding", "base64")
	sig.Set("Content-Description", SignatureDescription)
	sig.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": sigName}))
	pw, err = mw.CreatePart(sig)
	if err != nil {
		return nil, err
	}
	if err := writeBase64(pw, m.Signature); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// copyEntity writes a complete entity (headers, blank line, body) as the
// next part of mw.
func copyEntity(mw *multipart.Writer, entity []byte) error {
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(entity)))
	h, err := tr.ReadMIMEHeader()
	if err != nil {
		return err
	}
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	_, err = io.Copy(pw, tr.R)
	return err
}

func writeHeader(w io.Writer, h textproto.MIMEHeader) {
	for _, k := range []string{"Content-Type", "Content-Transfer-Encoding", "Content-Description", "Content-Disposition"} {
		if v := h.Get(k); v != "" {
			fmt.Fprintf(w, "%s: %s\r\n", k, v)
		}
	}
	io.WriteString(w, "\r\n")
}

// writeBase64 writes b in base64, 76 characters per line, CRLF line ends.
func writeBase64(w io.Writer, b []byte) error {
	enc := base64.StdEncoding.EncodeToString(b)
	for len(enc) > 0 {
		n := min(76, len(enc))
		if _, err := io.WriteString(w, enc[:n]+"\r\n"); err != nil {
			return err
		}
		enc = enc[n:]
	}
	return nil
}

func boundary(rnd io.Reader) string {
	var b [15]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		_, _ = io.ReadFull(rand.Reader, b[:])
	}
	return "=_oct_" + hex.EncodeToString(b[:])
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// param formats one media-type parameter, quoted as needed.
func param(k, v string) string {
	return strings.TrimPrefix(mime.FormatMediaType("x", map[string]string{k: v}), "x; ")
}
