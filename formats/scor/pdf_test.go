package scor

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// grayPNG is a w×h gray image with a few dark strokes, like a scan.
func grayPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := uint8(240)
			if (y/7)%5 == 0 && x%11 < 8 {
				v = 30
			}
			img.SetGray(x, y, color.Gray{Y: v})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// scanPDF builds, with pdfcpu's image import, a PDF whose pages each draw
// one image of pixels px, centred on a page of pageW×pageH points, at the
// size that gives it dpi (pdfcpu's own types.Full mode sizes the page at 72
// dpi, which is not what a scanner does).
func scanPDF(t testing.TB, pageW, pageH float64, dpi int, px ...[2]int) []byte {
	t.Helper()
	var imgs []io.Reader
	for _, p := range px {
		imgs = append(imgs, bytes.NewReader(grayPNG(t, p[0], p[1])))
	}
	imp := &pdfcpu.Import{PageDim: &types.Dim{Width: pageW, Height: pageH}, UserDim: true, Pos: types.Center,
		DPI: dpi, Scale: 1, ScaleAbs: true, InpUnit: types.POINTS}
	var out bytes.Buffer
	if err := api.ImportImages(nil, &out, imgs, imp, pdfConfig()); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// withXMP adds a catalog /Metadata stream holding xmp.
func withXMP(t testing.TB, pdf []byte, xmp string) []byte {
	t.Helper()
	ctx, err := api.ReadContext(bytes.NewReader(pdf), pdfConfig())
	if err != nil {
		t.Fatal(err)
	}
	sd, err := ctx.NewStreamDictForBuf([]byte(xmp))
	if err != nil {
		t.Fatal(err)
	}
	sd.InsertName("Type", "Metadata")
	sd.InsertName("Subtype", "XML")
	if err := sd.Encode(); err != nil {
		t.Fatal(err)
	}
	ref, err := ctx.IndRefForNewObject(*sd)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := ctx.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	cat["Metadata"] = *ref
	var out bytes.Buffer
	if err := api.WriteContext(ctx, &out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// encrypted returns pdf encrypted with AES-256 and the given user password.
func encrypted(t testing.TB, pdf []byte, userPW string) []byte {
	t.Helper()
	conf := pdfConfig()
	conf.UserPW, conf.OwnerPW = userPW, "owner-secret"
	conf.EncryptUsingAES, conf.EncryptKeyLength = true, 256
	conf.Permissions = model.PermissionsPrint
	var out bytes.Buffer
	if err := api.Encrypt(bytes.NewReader(pdf), &out, conf); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func jpegBytes(t testing.TB) []byte {
	img := image.NewGray(image.Rect(0, 0, 64, 64))
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const xmpPDFA2B = `<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/" pdfaid:part="2" pdfaid:conformance="B"/>
</rdf:RDF></x:xmpmeta><?xpacket end="w"?>`

const xmpElements = `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
<pdfaid:part>1</pdfaid:part><pdfaid:conformance>a</pdfaid:conformance></rdf:Description></rdf:RDF></x:xmpmeta>`
