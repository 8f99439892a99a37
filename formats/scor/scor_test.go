package scor

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"

	"github.com/octgw/oct/formats/fixed"
)

func checkBytes(t *testing.T, b []byte, opt Options) *Report {
	t.Helper()
	r, err := Check(bytes.NewReader(b), int64(len(b)), opt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func codes(r *Report) []fixed.Code {
	var out []fixed.Code
	for _, e := range r.Errors {
		out = append(out, e.Code)
	}
	return out
}

func only(t *testing.T, r *Report, want ...fixed.Code) {
	t.Helper()
	got := codes(r)
	if len(got) != len(want) {
		t.Fatalf("want %v, got %v", want, r.Errors)
	}
	for i := range want {
		if got[i] != want[i] || !errors.Is(&r.Errors[i], want[i]) {
			t.Fatalf("want %v, got %v", want, r.Errors)
		}
	}
}

// 2 in × 2 in pages (144 pt).
func TestResolutionFullPage(t *testing.T) {
	r := checkBytes(t, scanPDF(t, 144, 144, 300, [2]int{600, 600}), Options{})
	only(t, r)
	if r.Pages != 1 || r.PageInfo[0].DPI != 300 || r.PageInfo[0].Method != "ctm" {
		t.Fatalf("%+v", r.PageInfo)
	}
	r = checkBytes(t, scanPDF(t, 144, 144, 100, [2]int{200, 200}), Options{})
	only(t, r, ErrLowRes)
	if r.Errors[0].Record != 1 || r.Errors[0].Field != "Im0" || r.PageInfo[0].DPI != 100 {
		t.Fatalf("%+v %+v", r.Errors, r.PageInfo)
	}
	// 100 dpi passes when the caller lowers the bar; the A4 300-dpi
	// case as a real scanner would give it.
	only(t, checkBytes(t, scanPDF(t, 144, 144, 100, [2]int{200, 200}), Options{MinDPI: 100}))
}

func TestResolutionUsesDrawnSizeNotMediaBox(t *testing.T) {
	// A 300×300 px image drawn at half the width of a 288 pt (4 in) page:
	// 2 in wide → 150 dpi, although against the media box it would be 75.
	r := checkBytes(t, scanPDF(t, 288, 288, 150, [2]int{300, 300}), Options{MinDPI: 150})
	only(t, r)
	pg := r.PageInfo[0]
	if pg.DPI != 150 || pg.Images[0].DrawnWPt != 144 {
		t.Fatalf("%+v", pg)
	}
}

// multiPDF: three 2 in pages at 300, 100 and 200 dpi.
func multiPDF(t *testing.T) []byte {
	t.Helper()
	// pdfcpu imports all images at one DPI; 144 pt pages with images of
	// 600, 200 and 400 px drawn over the whole page give 300, 100, 200 dpi.
	a := scanPDF(t, 144, 144, 300, [2]int{600, 600})
	b := scanPDF(t, 144, 144, 100, [2]int{200, 200})
	c := scanPDF(t, 144, 144, 200, [2]int{400, 400})
	var out bytes.Buffer
	if err := api.MergeRaw([]io.ReadSeeker{bytes.NewReader(a), bytes.NewReader(b), bytes.NewReader(c)}, &out, false, pdfConfig()); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestMultiPageAndLimits(t *testing.T) {
	b := multiPDF(t)
	r := checkBytes(t, b, Options{})
	only(t, r, ErrLowRes)
	if r.Pages != 3 || r.Errors[0].Record != 2 {
		t.Fatalf("%+v", r.Errors)
	}
	r = checkBytes(t, b, Options{MaxPages: 1})
	only(t, r, ErrTooManyPages)
	if len(r.PageInfo) != 1 {
		t.Fatal("checked pages beyond MaxPages")
	}
	r = checkBytes(t, b, Options{MaxBytes: int64(len(b)) - 1})
	only(t, r, ErrTooLarge)
}

func TestPDFA(t *testing.T) {
	plain := scanPDF(t, 144, 144, 300, [2]int{600, 600})
	only(t, checkBytes(t, plain, Options{RequirePDFA: true}), ErrNotPDFA)
	a := withXMP(t, plain, xmpPDFA2B)
	r := checkBytes(t, a, Options{RequirePDFA: true})
	only(t, r)
	if r.PDFA != "2B" {
		t.Fatalf("pdfa %q", r.PDFA)
	}
	r = checkBytes(t, withXMP(t, plain, xmpElements), Options{RequirePDFA: true})
	only(t, r)
	if r.PDFA != "1A" {
		t.Fatalf("pdfa %q", r.PDFA)
	}
	// XMP without pdfaid
	only(t, checkBytes(t, withXMP(t, plain, `<x:xmpmeta xmlns:x="adobe:ns:meta/"/>`), Options{RequirePDFA: true}), ErrNotPDFA)
}

func TestNotPDF(t *testing.T) {
	r := checkBytes(t, jpegBytes(t), Options{})
	only(t, r, ErrNotPDF)
	if r.Sniffed != "jpeg" {
		t.Fatal(r.Sniffed)
	}
	only(t, checkBytes(t, nil, Options{}), ErrNotPDF)
	only(t, checkBytes(t, grayPNG(t, 4, 4), Options{}), ErrNotPDF)
}

func TestTruncatedAndGarbage(t *testing.T) {
	full := scanPDF(t, 144, 144, 300, [2]int{600, 600})
	for _, n := range []int{9, 100, len(full) / 3, len(full) / 2, len(full) - 40} {
		r := checkBytes(t, full[:n], Options{})
		if r.Valid {
			t.Fatalf("truncated at %d of %d: valid", n, len(full))
		}
		if !r.Has(ErrPDFInvalid) && !r.Has(ErrNoImage) {
			t.Fatalf("truncated at %d: %v", n, r.Errors)
		}
	}
	only(t, checkBytes(t, []byte("%PDF-1.7\nnot really a pdf\n%%EOF\n"), Options{}), ErrPDFInvalid)
}

func TestEncrypted(t *testing.T) {
	plain := scanPDF(t, 144, 144, 300, [2]int{600, 600})
	for _, pw := range []string{"", "user-secret"} {
		r := checkBytes(t, encrypted(t, plain, pw), Options{})
		only(t, r, ErrEncrypted)
		if !r.Encrypted {
			t.Fatal("Encrypted not set")
		}
	}
}

func TestNoImage(t *testing.T) {
	pdf := []byte(minimalPDF("BT /F1 12 Tf 10 10 Td (hello) Tj ET"))
	r := checkBytes(t, pdf, Options{})
	only(t, r, ErrNoImage)
}

type failingReaderAt struct{ b []byte }

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= 1024 {
		return 0, errors.New("disk on fire")
	}
	return bytes.NewReader(f.b).ReadAt(p, off)
}

func TestIOErrorIsAnError(t *testing.T) {
	b := scanPDF(t, 144, 144, 300, [2]int{600, 600})
	_, err := Check(failingReaderAt{b}, int64(len(b)), Options{})
	if err == nil || err.Error() != "disk on fire" {
		t.Fatalf("err %v", err)
	}
}

// Content-stream walk on its own, against a fake backend: forms, nested
// cm, q/Q, inline images, UserUnit.
type fakeRes map[string]xobject

func (f fakeRes) xobject(n string) (xobject, bool, error) { x, ok := f[n]; return x, ok, nil }
func (f fakeRes) xobjectNames() []string {
	var out []string
	for k := range f {
		out = append(out, k)
	}
	return out
}

type fakeDoc struct {
	pages []*pageData
	perr  error
}

func (d *fakeDoc) pageCount() int       { return len(d.pages) }
func (d *fakeDoc) encrypted() bool      { return false }
func (d *fakeDoc) version() string      { return "1.7" }
func (d *fakeDoc) xmp() ([]byte, error) { return nil, nil }
func (d *fakeDoc) page(n int) (*pageData, error) {
	return d.pages[n-1], d.perr
}

func runFake(t *testing.T, d *fakeDoc, opt Options) *Report {
	t.Helper()
	b := []byte("%PDF-1.7\n%%EOF\n")
	r, err := check(bytes.NewReader(b), int64(len(b)), opt, func(io.ReadSeeker) (pdfDoc, error) { return d, nil })
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestWalker(t *testing.T) {
	form := xobject{form: true, matrix: matrix{0.5, 0, 0, 0.5, 0, 0},
		content: []byte("q 144 0 0 144 0 0 cm /Scan Do Q"),
		res:     fakeRes{"Scan": {image: true, width: 300, height: 300}}}
	res := fakeRes{"Fm1": form, "Logo": {image: true, width: 10, height: 10}}
	content := []byte(`% comment (
q 2 0 0 2 0 0 cm /Fm1 Do Q
q 20 0 0 20 0 0 cm /Logo Do Q (string with ) escaped \) paren) Tj <414243> Tj
BI /W 50 /H 40 /CS /G /BPC 8 ID ` + "\x00\x01EI\x02" + ` EI
/Unknown Do`)
	d := &fakeDoc{pages: []*pageData{{mediaBox: [4]float64{0, 0, 288, 288}, userUnit: 1, content: content, res: res}}}
	r := runFake(t, d, Options{})
	pg := r.PageInfo[0]
	if len(pg.Images) != 3 {
		t.Fatalf("%+v", pg.Images)
	}
	// the form scales by 0.5 inside a 2× cm: 144 pt → 2 in → 150 dpi
	if s := pg.Images[pg.Scan]; s.Name != "Scan" || s.DPIX != 150 {
		t.Fatalf("%+v", pg)
	}
	only(t, r, ErrLowRes)
	if pg.Images[2].Name != "inline" || pg.Images[2].PixelsW != 50 {
		t.Fatalf("%+v", pg.Images[2])
	}
	// UserUnit 2: every unit is 2/72 in, resolution halves.
	d.pages[0].userUnit = 2
	r = runFake(t, d, Options{MinDPI: 50})
	if r.PageInfo[0].DPI != 75 {
		t.Fatalf("%+v", r.PageInfo[0])
	}
}

func TestMediaBoxFallback(t *testing.T) {
	d := &fakeDoc{perr: errors.New("bad flate"), pages: []*pageData{{mediaBox: [4]float64{0, 0, 144, 144}, userUnit: 1,
		res: fakeRes{"Im0": {image: true, width: 400, height: 400}}}}}
	r := runFake(t, d, Options{})
	if r.PageInfo[0].Method != "media-box" || r.PageInfo[0].DPI != 200 {
		t.Fatalf("%+v", r.PageInfo[0])
	}
	only(t, r)
}

func minimalPDF(content string) string {
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 144 144] /Contents 4 0 R /Resources << >> >>",
		"<< /Length " + itoa(len(content)) + " >>\nstream\n" + content + "\nendstream",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	var offs []int
	for i, o := range objs {
		offs = append(offs, b.Len())
		b.WriteString(itoa(i+1) + " 0 obj\n" + o + "\nendobj\n")
	}
	x := b.Len()
	b.WriteString("xref\n0 " + itoa(len(objs)+1) + "\n0000000000 65535 f \n")
	for _, o := range offs {
		s := itoa(o)
		b.WriteString("0000000000"[len(s):] + s + " 00000 n \n")
	}
	b.WriteString("trailer\n<< /Size " + itoa(len(objs)+1) + " /Root 1 0 R >>\nstartxref\n" + itoa(x) + "\n%%EOF\n")
	return b.String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for n > 0 {
		d = append([]byte{byte('0' + n%10)}, d...)
		n /= 10
	}
	return string(d)
}
