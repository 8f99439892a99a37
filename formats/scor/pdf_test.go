package scor

import (
	"bytes"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

// scanPDF is ScanPDF (gen.go) failing the test on error.
func scanPDF(t testing.TB, pageW, pageH float64, dpi int, px ...[2]int) []byte {
	t.Helper()
	b, err := ScanPDF(pageW, pageH, dpi, 0, px...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// grayPNG is GrayPNG (gen.go) failing the test on error.
func grayPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	b, err := GrayPNG(w, h, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
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

func jpegBytes(t testing.TB) []byte { return GenerateJPEG() }

const xmpPDFA2B = `<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/" pdfaid:part="2" pdfaid:conformance="B"/>
</rdf:RDF></x:xmpmeta><?xpacket end="w"?>`

const xmpElements = `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
<pdfaid:part>1</pdfaid:part><pdfaid:conformance>a</pdfaid:conformance></rdf:Description></rdf:RDF></x:xmpmeta>`
