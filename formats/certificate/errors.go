package certificate

import "github.com/octgw/oct/formats/fixed"

// Stable error codes of oct-cert/1 (certificates, docs/formats/certificate.md)
// and of the SSA status Tasks (status.go). A code never changes meaning
// once published: practice software and the gateway match on them. The NIR
// findings use the codes of formats/nir (nir.ErrSyntax "nir-syntax",
// nir.ErrKey "nir-key").
const (
	ErrTooLarge     fixed.Code = "too-large"       // input over Options.MaxBytes (or a Task over MaxTaskBytes)
	ErrJSONSyntax   fixed.Code = "json-syntax"     // not one JSON object (binary, truncated, trailing data)
	ErrJSONType     fixed.Code = "json-type"       // a member has the wrong JSON type
	ErrUnknownField fixed.Code = "unknown-field"   // a member oct-cert/1 does not define (v1 is closed)
	ErrEncoding     fixed.Code = "encoding"        // a JSON object that is neither oct-cert/1 nor a FHIR Bundle
	ErrVersion      fixed.Code = "version"         // version is not oct-cert/1
	ErrRequired     fixed.Code = "required"        // mandatory member missing or empty
	ErrID           fixed.Code = "id"              // certificate id (or extended id, task id) of the wrong shape
	ErrInsurer      fixed.Code = "insurer"         // SSA organisation code of the wrong shape
	ErrPractitioner fixed.Code = "practitioner-id" // practitioner id not 9 digits with a Luhn key
	ErrSpecialty    fixed.Code = "specialty"       // practitioner specialty not 2 digits
	ErrDate         fixed.Code = "date"            // date or time malformed or impossible
	ErrDateOrder    fixed.Code = "date-order"      // dates out of order (birth, visit, issue, accident, incapacity)
	ErrIncapacity   fixed.Code = "incapacity"      // incapacity period missing, reversed, unknown kind, or too long
	ErrExtension    fixed.Code = "extension"       // an extension without the certificate it extends, or an initial one with it
	ErrDiagnosis    fixed.Code = "diagnosis-code"  // ICD-10 code of the wrong shape
	ErrCodeSystem   fixed.Code = "code-system"     // a code system other than the one v1 accepts
	ErrBenefit      fixed.Code = "benefit"         // unknown recommended benefit
	ErrForbidden    fixed.Code = "forbidden"       // a member not allowed for this benefit or status
	ErrFieldTooLong fixed.Code = "too-long"        // free text over its limit
	ErrFHIR         fixed.Code = "fhir-structure"  // FHIR Bundle not shaped as our profile (type, entries, resources)
	ErrReference    fixed.Code = "fhir-reference"  // a FHIR reference that resolves to no entry of the Bundle, or to the wrong resource
	ErrModifierExt  fixed.Code = "fhir-modifier"   // a modifierExtension (FHIR: must not be ignored; v1 knows none)

	ErrResourceType fixed.Code = "resource-type" // a Task codec input whose resourceType is not Task (or Bundle)
	ErrTaskStatus   fixed.Code = "task-status"   // unknown business status, or Task.status not the one it maps to
	ErrReason       fixed.Code = "reason"        // refused/arbiter_returned without a reason code, or a reason code of the wrong shape
)
