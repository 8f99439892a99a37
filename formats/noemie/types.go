// Package noemie reads and writes NOEMIE return files, référence 580
// (rejects, warnings and payments sent back by AMO and AMC organisms), on the
// shared 000/999 envelope.
//
// The structure follows docs/formats.md §3 and the project conventions of §8;
// docs/formats/noemie.md lists every choice with its confidence tag. The
// reader streams: memory is bounded by the typed output, and by Options.
package noemie

import (
	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
)

// Error codes. They are stable: vendors and the gateway match on them with
// errors.Is, never on messages.
const (
	ErrEntityUnknown  fixed.Code = "entity-unknown"  // a code not in the dictionary
	ErrEntityLength   fixed.Code = "entity-length"   // '@' not where the entity's length puts it, or truncated
	ErrHierarchy      fixed.Code = "hierarchy"       // break-level order of §3.3 broken
	ErrControlCount   fixed.Code = "control-count"   // 990 count differs from the entities of the level it closes
	ErrControlAmount  fixed.Code = "control-amount"  // non-zero 990/999 sum differs from the paid amounts (§8.5)
	ErrControlIdent   fixed.Code = "control-ident"   // 990 identification differs from the level it closes (§8.6)
	ErrRecordCount    fixed.Code = "record-count"    // 999 record count differs (§8.4)
	ErrLotCount       fixed.Code = "lot-count"       // 999 lot count differs from the number of 020
	ErrMissingTrailer fixed.Code = "missing-trailer" // end of data before the 999
	ErrHeader         fixed.Code = "header"          // no 000 first, or not norm 580
	ErrHeaderMismatch fixed.Code = "header-mismatch" // 999 identification differs from the 000 (cols 4-55)
	ErrFieldFormat    fixed.Code = "field-format"    // non-digit in a numeric field, impossible date, bad sign
	ErrCharset        fixed.Code = "charset"         // byte outside printable ASCII, or '@' inside an entity
	ErrLineLength     fixed.Code = "line-length"     // 4-digit line prefix that does not match its line
	ErrTrailingData   fixed.Code = "trailing-data"   // bytes after the 999
	ErrLimitBytes     fixed.Code = "limit-bytes"     // Options.MaxBytes reached: reading stopped
	ErrLimitEntities  fixed.Code = "limit-entities"  // Options.MaxEntities reached: reading stopped
	ErrLimitErrors    fixed.Code = "limit-errors"    // Options.MaxErrors reached: further findings counted in Dropped
)

// Codes lists every code the package reports.
var Codes = []fixed.Code{ErrEntityUnknown, ErrEntityLength, ErrHierarchy, ErrControlCount,
	ErrControlAmount, ErrControlIdent, ErrRecordCount, ErrLotCount, ErrMissingTrailer, ErrHeader,
	ErrHeaderMismatch, ErrFieldFormat, ErrCharset, ErrLineLength, ErrTrailingData,
	ErrLimitBytes, ErrLimitEntities, ErrLimitErrors}

// Framing selects how records and entities are laid out physically.
type Framing uint8

const (
	// FramingAuto detects a 4-digit line-length prefix from the first bytes
	// ("0128000…" is prefixed, "000…" is not).
	FramingAuto Framing = iota
	// FramingStream: entities back to back, CR/LF ignored.
	FramingStream
	// FramingPrefixed: each line starts with its length on 4 digits.
	FramingPrefixed
)

// Default limits, used when an Options field is 0.
const (
	DefaultMaxBytes    = 256 << 20
	DefaultMaxEntities = 10_000_000
	DefaultMaxErrors   = fixed.DefaultMaxErrors
)

// Options bounds a Read.
type Options struct {
	MaxBytes    int64 // bytes read from r, framing included
	MaxEntities int64 // records (000, entities, 999)
	MaxErrors   int   // findings kept; the rest are counted in File.Dropped
	Framing     Framing
}

// File is the result of a Read.
type File struct {
	Header   envelope.Info
	Valid    bool
	Errors   []fixed.Error
	Dropped  int64 // findings past Options.MaxErrors
	Stats    Stats
	Payments []Payment // one per 071 (or 070)
	Invoices []Invoice
	// Form is the physical form the file was read in, so that Write can
	// reproduce it (see (*File).WriteOptions).
	Form WriteOptions
}

// Stats counts what was read. Lots is the number of 020 entities, the
// "number of lots" of the 999 trailer (formats.md §3.3).
type Stats struct {
	Records  int64 `json:"records"`
	Lots     int64 `json:"lots"`
	Invoices int64 `json:"invoices"`
}

// Payment is one 071 (date comptable + référence du virement) with the
// mandataire and destinataire it sits under.
type Payment struct {
	Mandataire     string // 020 number (15)
	Destinataire   string // 040 number (15)
	AccountingDate fixed.Day
	Ref            string // transfer label, line 1
	Label2         string // transfer label, line 2
	Payer          string // paying organism
	Record         int64  // record number of the 071
}

// Invoice is one 102 and its detail entities.
type Invoice struct {
	Mandataire     string
	Destinataire   string
	AccountingDate fixed.Day
	PaymentRef     string // 071 transfer label, line 1
	Payment        int    // index in File.Payments; -1 when the 071 was unreadable
	ReturnType     string // 081 code: 01 electronic, 02 paper, 03 one-off, 04 reminders, 05 deductions
	ExecPlace      string // 081 place of execution
	Number         string // invoice number as written (9)
	LotNumber      int    // 0 when blank
	LotDate        fixed.Day
	Type           string // F FSE, D DRE, B B2, P/C paper, A AMC flow, E reminder, L/R inter-centre
	InvoiceDate    fixed.Day
	AMCProcessing  string // A/F split by an OCT, E on the workstation, C coordinated, V separate transfers, N
	Nature         string // nature d'assurance
	NIR            string // raw, 13 characters; callers hash it and never log it
	NIRKey         string
	BirthDate      string // 6 digits, as written (AAMMJJ vs JJMMAA is uncertain, formats.md §3.2)
	BirthRank      string
	AMO, AMC       Part
	Rejects        []Reject
	Record         int64 // record number of the 102
}

// Part is a 198 (AMO) or 199 (AMC) entity. The zero Part means "absent".
type Part struct {
	Requested int64  // cents, unsigned in the file
	Paid      int64  // cents, signed (sign P/N follows the paid amount)
	State     byte   // 'P' paid, 'R' rejected, 'D' deferred, ' ' not processed (0 when absent)
	AMCNumber string // 199 only: AMC number (10)
}

// Reject is a 290 (rejet ou signalement) or a 294 (ligne rejet).
type Reject struct {
	Entity string // "290" or "294"
	Code   string
	Label  string // as carried by the file
	Line   int    // invoice line concerned, 0 for the invoice
	Level  byte   // 'F' invoice, 'L' line, 'A' refined code; for a 290: 'F' when Line is 0, else 'L'
	Part   byte   // 294: 'O' mandatory (+AMC), 'C' AMC; 290: ' '
	Info   string // 294 complementary information
	// Warning is a signalement rather than a rejet, as far as the data
	// tells: no part the code concerns is in state 'R'.
	Warning bool
}

// Rejected reports whether a part of the invoice was rejected.
func (inv *Invoice) Rejected() bool { return inv.AMO.State == 'R' || inv.AMC.State == 'R' }

// Paid returns the signed paid amount of both parts.
func (inv *Invoice) Paid() int64 { return inv.AMO.Paid + inv.AMC.Paid }

// warningFor derives Reject.Warning from the parts (see Reject).
func (inv *Invoice) warningFor(r *Reject) bool {
	switch r.Part {
	case 'O':
		return inv.AMO.State != 'R'
	case 'C':
		return inv.AMC.State != 'R'
	}
	return !inv.Rejected()
}

// PaymentBatch is one 071 and its invoices, the unit Write takes. The
// invoices' Mandataire, Destinataire, AccountingDate, PaymentRef and Payment
// fields are ignored on writing (they come from Payment).
type PaymentBatch struct {
	Payment  Payment
	Invoices []Invoice
}

// Batches regroups the invoices of f under their payments, the input Write
// takes: Write(w, f.Header, f.Batches(), f.Form) reproduces a file that Write
// produced.
func (f *File) Batches() []PaymentBatch {
	out := make([]PaymentBatch, len(f.Payments))
	for i := range f.Payments {
		out[i].Payment = f.Payments[i]
	}
	for _, inv := range f.Invoices {
		if inv.Payment >= 0 && inv.Payment < len(out) {
			out[inv.Payment].Invoices = append(out[inv.Payment].Invoices, inv)
		}
	}
	return out
}
