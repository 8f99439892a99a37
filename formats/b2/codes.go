package b2

import "github.com/octgw/oct/formats/fixed"

// Stable error codes of the B2 validator (docs/formats/validation.md). A
// code never changes meaning once published; match with errors.Is.
const (
	ErrRecordLength     fixed.Code = "record-length"      // a record is not 128 characters
	ErrCharset          fixed.Code = "charset"            // lower case, accent, byte > 0x7F, punctuation, control
	ErrRecordType       fixed.Code = "record-type"        // column 1 is not a B2 record type
	ErrRecordOrder      fixed.Code = "record-order"       // hierarchy or complement order (§1.3)
	ErrNumericField     fixed.Code = "numeric-field"      // digits expected
	ErrDate             fixed.Code = "date"               // impossible YYMMDD (or a missing mandatory date)
	ErrNIRKey           fixed.Code = "nir-key"            // NIR syntax or key
	ErrInvoiceKeys      fixed.Code = "invoice-keys"       // type 5 keys differ from type 2
	ErrInvoiceLineCount fixed.Code = "invoice-line-count" // type 5 count wrong, or outside 1..999
	ErrInvoiceTotal     fixed.Code = "invoice-total"      // type 5 totals differ from the sums of its lines
	ErrDuplicateInvoice fixed.Code = "duplicate-invoice"  // same invoice number twice in a lot
	ErrLotNumber        fixed.Code = "lot-number"         // type 6 lot number differs from type 1
	ErrLotCounts        fixed.Code = "lot-counts"         // type 6 counts differ from the lot's content
	ErrLotCount         fixed.Code = "lot-count"          // 999 lot count differs from the number of lots
	ErrRecordCount      fixed.Code = "record-count"       // 999 record count differs from the physical records
	ErrHeaderMismatch   fixed.Code = "header-mismatch"    // 999 identification differs from 000
	ErrMissingTrailer   fixed.Code = "missing-trailer"    // the file ends before its 999
	ErrBillingDelay     fixed.Code = "billing-delay"      // date of care more than a year before the lot date
	ErrFileTooLarge     fixed.Code = "file-too-large"     // Limits.MaxBytes exceeded (reading stopped)
	ErrTooManyRecords   fixed.Code = "too-many-records"   // Limits.MaxRecords exceeded (reading stopped)
	ErrNotB2            fixed.Code = "not-b2"             // empty input, no 000 header, or junk (reading stopped)
	ErrUnknownAMC       fixed.Code = "unknown-amc"        // Options.KnownAMC refused the AMC number
	ErrLotNotFound      fixed.Code = "lot-not-found"      // ExtractLot/RebuildLot: no such lot
	ErrInvoiceNotFound  fixed.Code = "invoice-not-found"  // RebuildLot: an invoice to drop is not in the lot
	ErrEmptyLot         fixed.Code = "empty-lot"          // RebuildLot: nothing would remain
)

// Codes lists every code the validator can report, in documentation order.
func Codes() []fixed.Code {
	return []fixed.Code{
		ErrRecordLength, ErrCharset, ErrRecordType, ErrRecordOrder, ErrNumericField, ErrDate,
		ErrNIRKey, ErrInvoiceKeys, ErrInvoiceLineCount, ErrInvoiceTotal, ErrDuplicateInvoice,
		ErrLotNumber, ErrLotCounts, ErrLotCount, ErrRecordCount, ErrHeaderMismatch,
		ErrMissingTrailer, ErrBillingDelay, ErrFileTooLarge, ErrTooManyRecords, ErrNotB2, ErrUnknownAMC,
	}
}
