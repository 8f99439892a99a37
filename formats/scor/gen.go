package scor

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"regexp"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// GenOptions drive Generate. The same options always give the same bytes.
type GenOptions struct {
	Seed  uint64  // varies the strokes drawn on each page
	Pages int     // number of pages [1]
	DPI   int     // effective resolution of every page's scan [300]; 100 gives a low-resolution file
	Size  float64 // page width and height in points [144, 2 in: small files]
}

// Generate writes a scanned-looking PDF: each page draws one gray image
// that fills it at opt.DPI. With the defaults Check finds it valid; with
// DPI below DefaultMinDPI it reports low-resolution on every page. For
// tests, the simulator and the demo.
func Generate(opt GenOptions) ([]byte, error) {
	if opt.Pages <= 0 {
		opt.Pages = 1
	}
	if opt.DPI <= 0 {
		opt.DPI = 300
	}
	if opt.Size <= 0 {
		opt.Size = 144
	}
	px := int(opt.Size / 72 * float64(opt.DPI))
	sizes := make([][2]int, opt.Pages)
	for i := range sizes {
		sizes[i] = [2]int{px, px}
	}
	return ScanPDF(opt.Size, opt.Size, opt.DPI, opt.Seed, sizes...)
}

// GenerateLowRes is Generate at 100 dpi: a PDF Check refuses with
// low-resolution (record 1, field Im0).
func GenerateLowRes(seed uint64) ([]byte, error) {
	return Generate(GenOptions{Seed: seed, DPI: 100})
}

// ScanPDF builds, with pdfcpu's image import, a PDF whose pages each draw
// one image of pixels px[i], centred on a page of pageW×pageH points, at
// the size that gives it dpi (pdfcpu's own types.Full mode sizes the page
// at 72 dpi, which is not what a scanner does).
func ScanPDF(pageW, pageH float64, dpi int, seed uint64, px ...[2]int) ([]byte, error) {
	var imgs []io.Reader
	for i, p := range px {
		b, err := GrayPNG(p[0], p[1], seed+uint64(i))
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, bytes.NewReader(b))
	}
	imp := &pdfcpu.Import{PageDim: &types.Dim{Width: pageW, Height: pageH}, UserDim: true, Pos: types.Center,
		DPI: dpi, Scale: 1, ScaleAbs: true, InpUnit: types.POINTS}
	var out bytes.Buffer
	if err := importImages(&out, imgs, imp); err != nil {
		return nil, err
	}
	return fixVolatile(out.Bytes(), seed), nil
}

var (
	reDate = regexp.MustCompile(`\(D:\d{14}[^)]{0,8}\)`)
	reID   = regexp.MustCompile(`/ID\s*\[\s*<[0-9A-Fa-f]{32}>\s*<[0-9A-Fa-f]{32}>\s*\]`)
)

// fixVolatile replaces what pdfcpu takes from the clock (CreationDate,
// ModDate, the trailer /ID) with values of the same length derived from
// seed, so that the output is deterministic and the xref offsets stay
// right.
func fixVolatile(b []byte, seed uint64) []byte {
	b = reDate.ReplaceAllFunc(b, func(m []byte) []byte {
		out := bytes.Clone(m)
		copy(out[3:], "20260101000000")
		return out
	})
	id := fmt.Sprintf("%016X%016X", seed, ^seed)
	return reID.ReplaceAllFunc(b, func(m []byte) []byte {
		out := bytes.Clone(m)
		for i := 0; i < len(out); i++ {
			if out[i] == '<' {
				copy(out[i+1:], id)
			}
		}
		return out
	})
}

func importImages(w io.Writer, imgs []io.Reader, imp *pdfcpu.Import) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pdf library: %v", r)
		}
	}()
	return api.ImportImages(nil, w, imgs, imp, pdfConfig())
}

// GrayPNG is a w×h gray image with a few dark strokes, like a scan; seed
// moves the strokes.
func GrayPNG(w, h int, seed uint64) ([]byte, error) {
	img := image.NewGray(image.Rect(0, 0, w, h))
	off := int(seed % 7)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := uint8(240)
			if ((y+off)/7)%5 == 0 && x%11 < 8 {
				v = 30
			}
			img.SetGray(x, y, color.Gray{Y: v})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// GenerateJPEG is a small gray JPEG: renamed .pdf, Check reports not-pdf
// (sniffed "jpeg").
func GenerateJPEG() []byte {
	img := image.NewGray(image.Rect(0, 0, 64, 64))
	var b bytes.Buffer
	_ = jpeg.Encode(&b, img, nil)
	return b.Bytes()
}
