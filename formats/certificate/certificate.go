// Package certificate reads, checks and writes medical certificates
// ("certificats médicaux": sick leave, maternity, invalidity, work
// accident) that practice software sends to an SSA through the gateway, and
// the status Tasks the SSA answers with.
//
// oct-cert/1 is OUR schema, and the FHIR R4 profile is OUR profile
// (docs/formats/certificate.md): no public schema exists for this flow. A
// certificate arrives as oct-cert/1 JSON or as a FHIR R4 Bundle; both map
// to Certificate, and the gateway sends the SSA the FHIR Bundle
// (MarshalFHIR).
//
// A certificate holds personal and medical data. The package keeps no
// state and logs nothing; no finding quotes a NIR, a name, a date of birth
// or a diagnosis.
package certificate

// Version is the value of the "version" member of oct-cert/1 JSON.
const Version = "oct-cert/1"

// Limits of oct-cert/1.
const (
	MaxIDLen = 35 // certificate id
)

// idValid: 1..max characters [A-Za-z0-9._-].
func idValid(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
