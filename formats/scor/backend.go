package scor

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// pdfDoc is all Check needs from a PDF library. openPDF is the only place
// that knows pdfcpu; another library can replace it by implementing these
// few methods.
type pdfDoc interface {
	pageCount() int
	encrypted() bool
	version() string
	xmp() ([]byte, error) // the catalog's /Metadata stream, decoded; nil when absent
	page(n int) (*pageData, error)
}

type pageData struct {
	mediaBox [4]float64 // llx lly urx ury
	userUnit float64    // 1 unless the page sets /UserUnit
	content  []byte     // decoded, all streams concatenated; nil when none
	res      resources  // nil when the page has none
}

type resources interface {
	xobject(name string) (xobject, bool, error)
	xobjectNames() []string // at most 64, sorted
}

type xobject struct {
	image, form   bool
	width, height int       // images
	matrix        matrix    // forms
	content       []byte    // forms
	res           resources // forms; nil when the form has none
}

// errEncrypted is returned by openPDF when the file needs a password.
var errEncrypted = errors.New("encrypted with a user password")

// pdfConfig is our own pdfcpu configuration: model.NewDefaultConfiguration
// would create and read a configuration directory in the user's home, which
// a server must not do (and api.DisableConfigDir sets a global).
func pdfConfig() *model.Configuration {
	return &model.Configuration{
		Reader15:                  true,
		ValidationMode:            model.ValidationRelaxed,
		UnsupportedResourcePolicy: model.UnsupportedResourceSkip,
		Eol:                       types.EolLF,
		Offline:                   true,
		Limits:                    scanLimits(),
		Cmd:                       model.LISTINFO,
	}
}

// scanLimits tightens pdfcpu's resource limits to what a scanned
// attachment of at most a few dozen pages needs, so that a hostile file
// cannot make the reader allocate or loop for long.
func scanLimits() model.ResourceLimits {
	l := model.DefaultResourceLimits()
	l.MaxStreamBytes = 64 << 20
	l.MaxDecodeBytes = 64 << 20
	l.MaxObjectCount = 100_000
	l.MaxObjectStreamCount = 10_000
	l.MaxObjectStreamFirst = 1 << 20
	l.MaxXRefEntries = 100_000
	l.MaxRecursionDepth = 50
	return l
}

// openPDF reads a PDF with pdfcpu. A panic inside the library becomes an
// error: hostile input must never take the gateway down.
func openPDF(rs io.ReadSeeker) (doc pdfDoc, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("pdf library: %v", r)
		}
	}()
	ctx, err := api.ReadContext(rs, pdfConfig())
	if err != nil {
		if errors.Is(err, pdfcpu.ErrWrongPassword) {
			return nil, errEncrypted
		}
		return nil, err
	}
	if err := ctx.EnsurePageCount(); err != nil {
		return nil, err
	}
	return &cpuDoc{ctx: ctx}, nil
}

type cpuDoc struct{ ctx *model.Context }

func (d *cpuDoc) pageCount() int  { return d.ctx.PageCount }
func (d *cpuDoc) encrypted() bool { return d.ctx.Encrypt != nil }
func (d *cpuDoc) version() string {
	if d.ctx.HeaderVersion == nil {
		return ""
	}
	return d.ctx.HeaderVersion.String()
}

func (d *cpuDoc) xmp() (b []byte, err error) {
	defer catch(&err)
	cat, err := d.ctx.Catalog()
	if err != nil {
		return nil, err
	}
	o, ok := cat.Find("Metadata")
	if !ok || o == nil {
		return nil, nil
	}
	sd, _, err := d.ctx.DereferenceStreamDict(o)
	if err != nil || sd == nil {
		return nil, err
	}
	if err := sd.DecodeWithLimit(1 << 20); err != nil {
		return nil, err
	}
	return sd.Content, nil
}

func (d *cpuDoc) page(n int) (p *pageData, err error) {
	defer catch(&err)
	pd, _, inh, err := d.ctx.PageDict(n, false)
	if err != nil {
		return nil, err
	}
	p = &pageData{userUnit: 1}
	if inh != nil && inh.MediaBox != nil {
		r := inh.MediaBox
		p.mediaBox = [4]float64{r.LL.X, r.LL.Y, r.UR.X, r.UR.Y}
	} else {
		p.mediaBox = [4]float64{0, 0, 612, 792} // ISO 32000 has no default; Letter is the usual guess
	}
	if o, ok := pd.Find("UserUnit"); ok {
		if u, err := d.ctx.DereferenceNumber(o); err == nil && u > 0 {
			p.userUnit = u
		}
	}
	if c, err := d.ctx.PageContent(pd, n); err == nil {
		p.content = c
	} else if !errors.Is(err, model.ErrNoContent) {
		return p, err // the caller falls back on the media box
	}
	if inh != nil && inh.Resources != nil {
		p.res = &cpuRes{ctx: d.ctx, d: inh.Resources}
	} else if o, ok := pd.Find("Resources"); ok {
		if rd, err := d.ctx.DereferenceDict(o); err == nil && rd != nil {
			p.res = &cpuRes{ctx: d.ctx, d: rd}
		}
	}
	return p, nil
}

type cpuRes struct {
	ctx *model.Context
	d   types.Dict
}

func (r *cpuRes) xobject(name string) (x xobject, ok bool, err error) {
	defer catch(&err)
	o, found := r.d.Find("XObject")
	if !found {
		return x, false, nil
	}
	xd, err := r.ctx.DereferenceDict(o)
	if err != nil || xd == nil {
		return x, false, err
	}
	o, found = xd.Find(name)
	if !found {
		return x, false, nil
	}
	sd, _, err := r.ctx.DereferenceStreamDict(o)
	if err != nil || sd == nil {
		return x, false, err
	}
	st := sd.Dict.Subtype()
	if st == nil {
		return x, false, nil
	}
	switch *st {
	case "Image":
		x.image = true
		x.width = r.intEntry(sd.Dict, "Width")
		x.height = r.intEntry(sd.Dict, "Height")
		return x, x.width > 0 && x.height > 0, nil
	case "Form":
		x.form = true
		x.matrix = identity
		if a, err := r.ctx.DereferenceArray(sd.Dict["Matrix"]); err == nil && len(a) == 6 {
			for i := range a {
				f, err := r.ctx.DereferenceNumber(a[i])
				if err != nil {
					break
				}
				x.matrix[i] = f
			}
		}
		if o, ok := sd.Dict.Find("Resources"); ok {
			if rd, err := r.ctx.DereferenceDict(o); err == nil && rd != nil {
				x.res = &cpuRes{ctx: r.ctx, d: rd}
			}
		}
		if err := sd.DecodeWithLimit(r.ctx.Conf.Limits.MaxDecodeBytes); err != nil {
			return x, false, err
		}
		x.content = sd.Content
		return x, true, nil
	}
	return x, false, nil
}

func (r *cpuRes) xobjectNames() (names []string) {
	defer func() {
		if recover() != nil {
			names = nil
		}
	}()
	o, found := r.d.Find("XObject")
	if !found {
		return nil
	}
	xd, err := r.ctx.DereferenceDict(o)
	if err != nil {
		return nil
	}
	for k := range xd {
		names = append(names, k)
	}
	sort.Strings(names)
	return names[:min(len(names), 64)]
}

func (r *cpuRes) intEntry(d types.Dict, key string) int {
	o, ok := d.Find(key)
	if !ok {
		return 0
	}
	f, err := r.ctx.DereferenceNumber(o)
	if err != nil || f < 0 || f > 1<<30 {
		return 0
	}
	return int(f)
}

// catch turns a library panic into an error.
func catch(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("pdf library: %v", r)
	}
}
