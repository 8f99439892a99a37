package scor

import (
	"bytes"
	"errors"
	"io"
	"math"

	"github.com/octgw/oct/formats/fixed"
)

// Check verifies one SCOR attachment of size bytes read from r. Findings
// are in the Report; the error is for I/O failures of r only.
func Check(r io.ReaderAt, size int64, opt Options) (*Report, error) {
	return check(r, size, opt, openPDF)
}

// check is Check with the PDF library as a parameter.
func check(r io.ReaderAt, size int64, opt Options, open func(io.ReadSeeker) (pdfDoc, error)) (*Report, error) {
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.MinDPI == 0 {
		opt.MinDPI = DefaultMinDPI
	}
	if opt.MaxPages <= 0 {
		opt.MaxPages = DefaultMaxPages
	}
	c := &fixed.Collector{Max: opt.MaxErrors}
	rep := &Report{Size: size}
	done := func() (*Report, error) {
		rep.Errors, rep.Dropped = c.Errors(), c.Dropped()
		rep.Valid = c.Len() == 0 && rep.Dropped == 0
		return rep, nil
	}
	if size > opt.MaxBytes {
		c.Addf(ErrTooLarge, 0, "", "%d bytes, at most %d", size, opt.MaxBytes)
		return done()
	}
	// The header: ISO 32000-1 §7.5.2 lets it start anywhere in the first
	// 1024 bytes (readers are lenient there).
	head := make([]byte, min(size, 1024))
	if n, err := r.ReadAt(head, 0); n < len(head) {
		if err != nil && err != io.EOF {
			return nil, err
		}
		head = head[:n]
	}
	i := bytes.Index(head, []byte("%PDF-"))
	if i < 0 {
		rep.Sniffed = sniff(head)
		c.Addf(ErrNotPDF, 0, "", "no %%PDF- header; the bytes look like %s", rep.Sniffed)
		return done()
	}
	if v := head[i+5:]; len(v) >= 3 && v[1] == '.' {
		rep.Version = string(v[:3])
	}

	// A complete PDF ends with %%EOF (ISO 32000-1 §7.5.5). pdfcpu repairs
	// a file cut after its last object, but a cut upload must be re-sent,
	// not silently accepted.
	tail := make([]byte, min(size, 1024))
	if n, err := r.ReadAt(tail, size-int64(len(tail))); n < len(tail) {
		if err != nil && err != io.EOF {
			return nil, err
		}
		tail = tail[:n]
	}
	if !bytes.Contains(tail, []byte("%%EOF")) {
		c.Addf(ErrPDFInvalid, 0, "", "no %%%%EOF marker in the last 1024 bytes: the file is truncated")
	}

	er := &errReaderAt{r: r}
	doc, err := open(io.NewSectionReader(er, 0, size))
	if er.err != nil {
		return nil, er.err
	}
	if errors.Is(err, errEncrypted) {
		rep.Encrypted = true
		c.Addf(ErrEncrypted, 0, "", "the PDF is protected by a password")
		return done()
	}
	if err != nil {
		c.Addf(ErrPDFInvalid, 0, "", "unreadable PDF: %s", clip(err.Error()))
		return done()
	}
	if v := doc.version(); v != "" {
		rep.Version = v
	}
	if doc.encrypted() {
		rep.Encrypted = true
		c.Addf(ErrEncrypted, 0, "", "the PDF is encrypted; send it unprotected")
		return done()
	}
	rep.Pages = doc.pageCount()
	n := rep.Pages
	switch {
	case n <= 0:
		c.Addf(ErrPDFInvalid, 0, "", "no page")
	case n > opt.MaxPages:
		c.Addf(ErrTooManyPages, 0, "", "%d pages, at most %d (the first %d are checked)", n, opt.MaxPages, opt.MaxPages)
		n = opt.MaxPages
	}
	for p := 1; p <= n; p++ {
		pg := checkPage(doc, p, opt, c)
		if er.err != nil {
			return nil, er.err
		}
		rep.PageInfo = append(rep.PageInfo, pg)
	}
	x, err := doc.xmp()
	if er.err != nil {
		return nil, er.err
	}
	if err == nil {
		rep.PDFA = pdfaID(x)
	}
	if opt.RequirePDFA && rep.PDFA == "" {
		c.Addf(ErrNotPDFA, 0, "", "no pdfaid:part in the XMP metadata: PDF/A is not declared")
	}
	return done()
}

func checkPage(doc pdfDoc, n int, opt Options, c *fixed.Collector) Page {
	pg := Page{Number: n, Scan: -1}
	pd, err := doc.page(n)
	if pd == nil {
		c.Addf(ErrPDFInvalid, int64(n), "", "page unreadable: %s", clip(errString(err)))
		return pg
	}
	uu := pd.userUnit
	pageW := math.Abs(pd.mediaBox[2]-pd.mediaBox[0]) * uu
	pageH := math.Abs(pd.mediaBox[3]-pd.mediaBox[1]) * uu
	pg.WidthPt, pg.HeightPt = round2(pageW), round2(pageH)

	var found []drawn
	if err == nil {
		wk := &walker{}
		wk.run(pd.content, pd.res, identity, 0)
		found = wk.out
		pg.Method = "ctm"
		if wk.err != nil {
			c.Addf(ErrPDFInvalid, int64(n), "", "%v", wk.err)
		}
	} else if pd.res != nil {
		// Content unreadable: fall back on the media box when the page's
		// resources hold exactly one image (a plain scan).
		pg.Method = "media-box"
		if img, ok := onlyImage(pd.res); ok {
			img.ctm = matrix{pageW / uu, 0, 0, pageH / uu, 0, 0}
			found = []drawn{img}
		}
	}
	best, bestArea := -1, 0.0
	for _, d := range found {
		w := math.Hypot(d.ctm[0], d.ctm[1]) * uu
		h := math.Hypot(d.ctm[2], d.ctm[3]) * uu
		im := Image{Name: d.name, PixelsW: d.w, PixelsH: d.h, DrawnWPt: round2(w), DrawnHPt: round2(h)}
		if w > 1e-6 && h > 1e-6 {
			im.DPIX = round2(float64(d.w) / (w / 72))
			im.DPIY = round2(float64(d.h) / (h / 72))
			if a := w * h; a > bestArea {
				best, bestArea = len(pg.Images), a
			}
		}
		pg.Images = append(pg.Images, im)
	}
	if best < 0 {
		c.Addf(ErrNoImage, int64(n), "", "page %d draws no image: not a scan", n)
		return pg
	}
	pg.Scan = best
	im := pg.Images[best]
	pg.DPI = math.Min(im.DPIX, im.DPIY)
	if opt.MinDPI > 0 && math.Round(pg.DPI) < float64(opt.MinDPI) {
		c.Addf(ErrLowRes, int64(n), im.Name, "page %d: %d×%d px drawn at %.0f×%.0f pt = %.0f×%.0f dpi, at least %d required",
			n, im.PixelsW, im.PixelsH, im.DrawnWPt, im.DrawnHPt, im.DPIX, im.DPIY, opt.MinDPI)
	}
	return pg
}

// onlyImage returns the page's image when its XObject resources hold
// exactly one image.
func onlyImage(res resources) (drawn, bool) {
	var got []drawn
	for _, name := range res.xobjectNames() {
		if x, ok, err := res.xobject(name); err == nil && ok && x.image {
			got = append(got, drawn{name: name, w: x.width, h: x.height})
		}
		if len(got) > 1 {
			return drawn{}, false
		}
	}
	if len(got) != 1 {
		return drawn{}, false
	}
	return got[0], true
}

// pdfaID extracts the declared PDF/A part and conformance from XMP:
// pdfaid:part="2" pdfaid:conformance="B" as attributes, or as elements
// <pdfaid:part>2</pdfaid:part>. It returns "" when no part is declared.
func pdfaID(x []byte) string {
	part := xmpValue(x, "pdfaid:part")
	if part == "" || len(part) > 2 {
		return ""
	}
	for i := 0; i < len(part); i++ {
		if part[i] < '0' || part[i] > '9' {
			return ""
		}
	}
	conf := xmpValue(x, "pdfaid:conformance")
	if len(conf) > 1 {
		conf = ""
	}
	return part + string(bytes.ToUpper([]byte(conf)))
}

func xmpValue(x []byte, name string) string {
	for off := 0; off < len(x); {
		i := bytes.Index(x[off:], []byte(name))
		if i < 0 {
			return ""
		}
		j := off + i + len(name)
		off = j
		rest := x[j:]
		// attribute: name="v" or name='v'
		k := 0
		for k < len(rest) && (rest[k] == ' ' || rest[k] == '\t' || rest[k] == '\n' || rest[k] == '\r') {
			k++
		}
		if k < len(rest) && rest[k] == '=' {
			k++
			for k < len(rest) && (rest[k] == ' ' || rest[k] == '\t' || rest[k] == '\n' || rest[k] == '\r') {
				k++
			}
			if k < len(rest) && (rest[k] == '"' || rest[k] == '\'') {
				q := rest[k]
				if e := bytes.IndexByte(rest[k+1:], q); e >= 0 {
					return string(bytes.TrimSpace(rest[k+1 : k+1+e]))
				}
			}
			continue
		}
		// element: <name>v</name>
		if k < len(rest) && rest[k] == '>' && j-len(name)-1 >= 0 && x[j-len(name)-1] == '<' {
			if e := bytes.IndexByte(rest[k+1:], '<'); e >= 0 {
				return string(bytes.TrimSpace(rest[k+1 : k+1+e]))
			}
		}
	}
	return ""
}

// sniff names the format of bytes that are not a PDF, for the message.
func sniff(b []byte) string {
	switch {
	case len(b) == 0:
		return "an empty file"
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}):
		return "jpeg"
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return "tiff"
	case bytes.HasPrefix(b, []byte("GIF8")):
		return "gif"
	case bytes.HasPrefix(b, []byte("PK\x03\x04")):
		return "zip (or an office document)"
	case bytes.HasPrefix(b, []byte("%!PS")):
		return "postscript"
	}
	return "unknown data"
}

// errReaderAt remembers the first I/O error of r so that Check can tell a
// failing disk from a broken PDF (the library reports both alike).
type errReaderAt struct {
	r   io.ReaderAt
	err error
}

func (e *errReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := e.r.ReadAt(p, off)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

func errString(err error) string {
	if err == nil {
		return "no page dictionary"
	}
	return err.Error()
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
