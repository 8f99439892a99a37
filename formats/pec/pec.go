// Package pec reads, checks and writes OCT-PEC v1 messages: the coverage
// ("prise en charge") requests an optician or other practitioner sends to a
// complementary insurer (AMC) through the gateway, the AMC's answer, status
// queries and cancellations.
//
// OCT-PEC v1 is OUR schema (docs/formats/pec.md). The real OptoAMC / OPAMC
// services (formats.md §5.2) are published to members only; OCT-PEC carries
// the same flow (OPAMCREQ request, OPAMCRSP answer, OPAMCGET status,
// OPAMCDEL cancel / OPAMCADV acknowledgement) so that the gateway can route
// it and link the agreement to the invoice: the PEC number the AMC grants
// comes back in the B2/DRE 2P complement (col 83, 16 characters), see
// LinkKey.
//
// The package keeps no state and logs nothing. A beneficiary's NIR never
// travels in OCT-PEC; when the caller wants to match beneficiaries it sends
// the keyed hash (formats/nir Hasher.Sum), and a raw NIR in that field is an
// error (ErrNIRNotHashed).
package pec

import "github.com/octgw/oct/formats/fixed"

// Version is the value of the "version" member of every OCT-PEC v1 message.
const Version = "oct-pec/1"

// Kind says which body a message carries.
type Kind string

// Message kinds.
const (
	KindRequest Kind = "request" // practitioner → AMC (OPAMCREQ)
	KindAnswer  Kind = "answer"  // AMC → practitioner (OPAMCRSP, OPAMCADV)
	KindStatus  Kind = "status"  // practitioner → AMC (OPAMCGET)
	KindCancel  Kind = "cancel"  // practitioner → AMC (OPAMCDEL)
)

// Kinds lists the message kinds in documentation order.
var Kinds = []Kind{KindRequest, KindAnswer, KindStatus, KindCancel}

// Answer statuses.
const (
	StatusAgreement = "agreement" // full coverage of the requested amount
	StatusPartial   = "partial"   // coverage of part of it
	StatusRefusal   = "refusal"   // no coverage; reason_code says why
	StatusCancelled = "cancelled" // acknowledgement of a cancel (OPAMCADV)
	StatusPending   = "pending"   // answer to a status query while the AMC studies it
)

// Statuses lists the answer statuses.
var Statuses = []string{StatusAgreement, StatusPartial, StatusRefusal, StatusCancelled, StatusPending}

// Message is one OCT-PEC v1 document. Exactly one body matches Kind.
type Message struct {
	Version string   `json:"version"`
	Kind    Kind     `json:"kind"`
	Request *Request `json:"request,omitempty"`
	Answer  *Answer  `json:"answer,omitempty"`
	Status  *Status  `json:"status,omitempty"`
	Cancel  *Cancel  `json:"cancel,omitempty"`
}

// Request is a coverage request for a quote.
type Request struct {
	PECID        string       `json:"pec_id"`  // the sender's identifier of this request, 1..35 [A-Za-z0-9._-]
	Created      string       `json:"created"` // RFC 3339 time
	AMC          string       `json:"amc"`     // AMC number, 8..10 digits
	MemberID     string       `json:"member_id"`
	Beneficiary  Beneficiary  `json:"beneficiary"`
	Practitioner Practitioner `json:"practitioner"`
	QuoteDate    string       `json:"quote_date"` // YYYY-MM-DD
	Lines        []Line       `json:"lines"`
	Totals       Totals       `json:"totals"`
}

// Beneficiary identifies the person covered without a NIR.
type Beneficiary struct {
	BirthDate string `json:"birth_date"`         // YYYY-MM-DD
	Rank      int    `json:"rank"`               // birth rank 1..9 (twins)
	NIRHash   string `json:"nir_hash,omitempty"` // 64 lower-case hex characters, the caller's keyed hash
}

// Practitioner identifies who will deliver and invoice.
type Practitioner struct {
	ID        string `json:"id"`        // FINESS or AM (Assurance Maladie) number, 9 characters
	IDType    string `json:"id_type"`   // "finess" | "am"
	Specialty string `json:"specialty"` // 2 digits; opticians are "64" in our examples
}

// Line is one quote line. Amounts are euro cents.
type Line struct {
	Code           string `json:"code"` // product/act code (LPP …), 1..13 [A-Z0-9]
	Label          string `json:"label"`
	Quantity       int    `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	TotalCents     int64  `json:"total_cents"`
}

// Totals of a request: total = amo + amc_requested + patient.
type Totals struct {
	TotalCents        int64 `json:"total_cents"`
	AMOCents          int64 `json:"amo_cents"`
	AMCRequestedCents int64 `json:"amc_requested_cents"`
	PatientCents      int64 `json:"patient_cents"`
}

// Answer is the AMC's decision, or the acknowledgement of a cancel, or a
// pending status.
type Answer struct {
	PECID       string `json:"pec_id"`
	AMC         string `json:"amc"`
	Answered    string `json:"answered"` // RFC 3339 time
	Status      string `json:"status"`
	PECNumber   string `json:"pec_number,omitempty"`   // 16 [0-9A-Z]; required for agreement, partial, cancelled
	AmountCents int64  `json:"amount_cents,omitempty"` // granted; > 0 for agreement/partial
	ValidUntil  string `json:"valid_until,omitempty"`  // YYYY-MM-DD; required for agreement/partial
	ReasonCode  string `json:"reason_code,omitempty"`  // required for refusal: 2..8 [A-Z0-9]
	ReasonLabel string `json:"reason_label,omitempty"`
}

// Status asks where a request stands.
type Status struct {
	PECID     string `json:"pec_id"`
	AMC       string `json:"amc"`
	PECNumber string `json:"pec_number,omitempty"`
}

// Cancel withdraws a request or an agreement.
type Cancel struct {
	PECID     string `json:"pec_id"`
	AMC       string `json:"amc"`
	PECNumber string `json:"pec_number,omitempty"` // required once an agreement was given
	Reason    string `json:"reason"`
}

// Stable error codes.
const (
	ErrTooLarge     fixed.Code = "too-large"       // input over Options.MaxBytes
	ErrJSONSyntax   fixed.Code = "json-syntax"     // not one JSON object
	ErrJSONType     fixed.Code = "json-type"       // a member has the wrong JSON type
	ErrUnknownField fixed.Code = "unknown-field"   // a member v1 does not define
	ErrVersion      fixed.Code = "version"         // version is not oct-pec/1
	ErrKind         fixed.Code = "kind"            // unknown kind, or body missing / not matching kind
	ErrRequired     fixed.Code = "required"        // mandatory member empty or missing
	ErrID           fixed.Code = "id"              // pec_id, member_id or a code of the wrong shape
	ErrAMCNumber    fixed.Code = "amc-number"      // AMC number not 8..10 digits
	ErrPractitioner fixed.Code = "practitioner-id" // FINESS / AM number malformed or wrong Luhn key
	ErrSpecialty    fixed.Code = "specialty"       // specialty not 2 digits
	ErrDate         fixed.Code = "date"            // date or time malformed or impossible
	ErrRank         fixed.Code = "rank"            // birth rank outside 1..9
	ErrNIRNotHashed fixed.Code = "nir-not-hashed"  // nir_hash holds a NIR or is not a 64-hex hash
	ErrLines        fixed.Code = "lines"           // no quote line, or more than MaxLines
	ErrQuantity     fixed.Code = "quantity"        // quantity outside 1..MaxQuantity
	ErrAmount       fixed.Code = "amount"          // negative or out-of-range amount
	ErrLineTotal    fixed.Code = "line-total"      // total_cents != quantity × unit_price_cents
	ErrTotals       fixed.Code = "totals"          // totals do not add up
	ErrStatus       fixed.Code = "status"          // unknown answer status
	ErrPECNumber    fixed.Code = "pec-number"      // PEC number not 16 [0-9A-Z]
	ErrReason       fixed.Code = "reason"          // refusal without a valid reason code, cancel without reason
	ErrFieldTooLong fixed.Code = "too-long"        // free text over its limit
	ErrForbidden    fixed.Code = "forbidden"       // a member not allowed for this status
)

// Limits of OCT-PEC v1.
const (
	MaxLines          = 99
	MaxQuantity       = 999
	MaxUnitPriceCents = 1_000_000_00 // one million euros
	MaxLabel          = 70
	PECNumberLen      = 16
	DefaultMaxBytes   = 256 << 10
)
