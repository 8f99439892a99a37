// Package scor checks SCOR attachments: the scanned supporting documents
// (prescriptions, degraded-mode forms) a practitioner sends as PDF in lots
// parallel to the FSE lots (formats.md §5.1).
//
// Check verifies that the bytes are a readable, unencrypted PDF within the
// size and page limits, that every page carries a scan whose effective
// resolution reaches Options.MinDPI (200 dpi by default, the figure CPAM
// sheets quote for midwives), and, when asked, that the file declares PDF/A
// conformance in its XMP metadata. The method and its limits are in
// docs/formats/scor.md.
//
// The PDF library (pdfcpu) is used behind a small interface (pdfDoc, see
// backend.go); the content-stream walk that finds where each image is drawn
// is ours. The package keeps no state and logs nothing.
package scor

import "github.com/octgw/oct/formats/fixed"

// Stable error codes.
const (
	ErrNotPDF       fixed.Code = "not-pdf"        // no %PDF- header in the first 1024 bytes (JPEG, PNG, … renamed)
	ErrEncrypted    fixed.Code = "encrypted"      // the PDF is encrypted (even with an empty user password)
	ErrTooLarge     fixed.Code = "too-large"      // more than Options.MaxBytes
	ErrTooManyPages fixed.Code = "too-many-pages" // more than Options.MaxPages pages
	ErrLowRes       fixed.Code = "low-resolution" // a page's scan is below Options.MinDPI
	ErrNoImage      fixed.Code = "no-image"       // a page draws no image: not a scan
	ErrNotPDFA      fixed.Code = "not-pdfa"       // PDF/A required and no pdfaid:part in the XMP metadata
	ErrPDFInvalid   fixed.Code = "pdf-invalid"    // a PDF the library cannot read (truncated, broken xref, …)
)

// Defaults applied for zero Options fields.
const (
	DefaultMaxBytes = 20 << 20
	DefaultMinDPI   = 200
	DefaultMaxPages = 50
)

// Options drive Check. The zero value uses the defaults.
type Options struct {
	MaxBytes    int64 // 0 means DefaultMaxBytes
	MinDPI      int   // 0 means DefaultMinDPI; negative disables the resolution check
	RequirePDFA bool
	MaxPages    int // 0 means DefaultMaxPages
	MaxErrors   int // 0 means fixed.DefaultMaxErrors
}

// Report is the outcome of Check. Errors carry Record = page number (0 for
// the whole file) and Field = the image's resource name when one is at
// fault.
type Report struct {
	Valid     bool          `json:"valid"`
	Errors    []fixed.Error `json:"errors,omitempty"`
	Dropped   int64         `json:"dropped,omitempty"`
	Size      int64         `json:"size"`
	Version   string        `json:"version,omitempty"` // PDF header version, "1.7"
	Pages     int           `json:"pages"`
	Encrypted bool          `json:"encrypted,omitempty"`
	PDFA      string        `json:"pdfa,omitempty"` // declared part and conformance, "2B"; "" when none
	PageInfo  []Page        `json:"page_info,omitempty"`
	Sniffed   string        `json:"sniffed,omitempty"` // for not-pdf: what the bytes look like ("jpeg", "png", …)
}

// Has reports whether the report holds an error with the code.
func (r *Report) Has(code fixed.Code) bool { return fixed.HasCode(r.Errors, code) }

// Page describes one checked page.
type Page struct {
	Number   int     `json:"number"`
	WidthPt  float64 `json:"width_pt"` // media box, in points (1/72 in) × UserUnit
	HeightPt float64 `json:"height_pt"`
	Images   []Image `json:"images,omitempty"`
	// Scan is the index in Images of the image taken as the page's scan
	// (the one drawn over the largest area); -1 when none.
	Scan int `json:"scan"`
	// DPI is the scan's effective resolution, min(DPIX, DPIY); 0 when none.
	DPI float64 `json:"dpi"`
	// Method is "ctm" when the drawn size came from the content stream,
	// "media-box" when the content could not be read and the page's only
	// image was assumed to fill the media box.
	Method string `json:"method,omitempty"`
}

// Image is one image drawn on a page.
type Image struct {
	Name     string  `json:"name"` // resource name ("Im0"); "inline" for BI … EI
	PixelsW  int     `json:"pixels_w"`
	PixelsH  int     `json:"pixels_h"`
	DrawnWPt float64 `json:"drawn_w_pt"` // drawn size in points (UserUnit applied)
	DrawnHPt float64 `json:"drawn_h_pt"`
	DPIX     float64 `json:"dpi_x"`
	DPIY     float64 `json:"dpi_y"`
}
