package anomalies

import (
	"regexp"
	"sort"
	"time"
)

// Anomaly kinds (store.Anomaly.Kind), kebab-case, stable: they are stored,
// filtered on and shown to vendors. Kinds written by other packages are
// repeated here with the same spelling so that the queue knows their SLA.
const (
	KindRefused          = "refused-at-intake"        // file:ID, syntax refused at intake (vendor must fix)
	KindUnroutable       = "unroutable"               // lot:ID, no destination (gateway route job)
	KindJobFailed        = "job-failed"               // job subject, a pipeline job failed for good
	KindDeliveryFailed   = "delivery-failed"          // lot:ID, permanent delivery failure
	KindSignatureFailure = "signature-failure"        // lot:ID, the signing pool could not sign
	KindARLNegative      = "arl-negative"             // lot:ID, the insurer refused the lot
	KindARLMissing       = "arl-missing-after-resend" // lot:ID, resent but no acknowledgement after the deadline
	KindRSPMissing       = "rsp-missing"              // lot:ID, acknowledged but no payment return after the deadline
	KindInvoiceRejected  = "invoice-rejected"         // invoice:ID, rejected in an RSP
	KindOrphanReturn     = "orphan-return"            // return:ID, matches no lot
	KindCertExpiring     = "certificate-expiring"     // cert:ID, a signing or destination certificate expires soon
	KindReferentialGap   = "referential-gap"          // referential entry missing for a destination
	KindUnparsableReturn = "unparsable-return"        // return:ID (gateway/returns)
	KindReturnMismatch   = "return-mismatch"          // lot:ID or invoice:ID (gateway/returns)
	KindReturnTenants    = "return-multi-tenant"      // return:ID (gateway/returns)
)

// DefaultSLA is the time support has for a kind without its own SLA.
const DefaultSLA = 24 * time.Hour

var defaultSLAs = map[string]time.Duration{
	KindRefused:          24 * time.Hour,
	KindUnroutable:       4 * time.Hour,
	KindJobFailed:        24 * time.Hour,
	KindDeliveryFailed:   4 * time.Hour,
	KindSignatureFailure: 4 * time.Hour,
	KindARLNegative:      24 * time.Hour,
	KindARLMissing:       8 * time.Hour,
	KindRSPMissing:       5 * 24 * time.Hour,
	KindInvoiceRejected:  72 * time.Hour,
	KindOrphanReturn:     24 * time.Hour,
	KindCertExpiring:     7 * 24 * time.Hour,
	KindReferentialGap:   48 * time.Hour,
	KindUnparsableReturn: 24 * time.Hour,
	KindReturnMismatch:   24 * time.Hour,
	KindReturnTenants:    24 * time.Hour,
}

// Kinds lists the known kinds, sorted.
func Kinds() []string {
	out := make([]string, 0, len(defaultSLAs))
	for k := range defaultSLAs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// SLAs maps a kind to the time support has to handle it; kinds absent
// from the map take DefaultSLAs' value, then DefaultSLA.
type SLAs map[string]time.Duration

// For returns the SLA of kind.
func (s SLAs) For(kind string) time.Duration {
	if d, ok := s[kind]; ok && d > 0 {
		return d
	}
	if d, ok := defaultSLAs[kind]; ok {
		return d
	}
	return DefaultSLA
}

// Reason codes an operator gives when closing an anomaly.
var ReasonCodes = []string{
	"fixed",          // the cause was fixed, nothing left to do
	"resent",         // the lot was sent again
	"rebuilt",        // the lot was rebuilt without its rejected invoices
	"vendor-data",    // the vendor's data is wrong: handed back
	"insurer-side",   // the insurer fixed it on their side
	"duplicate",      // another anomaly covers it
	"not-an-anomaly", // false alarm
}

func knownReason(code string) bool {
	for _, c := range ReasonCodes {
		if c == code {
			return true
		}
	}
	return false
}

// nirLike matches a NIR as it may be typed in a comment: 13 digits (1 to
// 4, 7 or 8 first; Corsica 2A/2B) with an optional 2-digit key, spaces
// allowed between the groups.
var nirLike = regexp.MustCompile(`\b[1-478]\s?\d{2}\s?\d{2}\s?(?:\d{2}|2[AaBb])\s?\d{3}\s?\d{3}(?:\s?\d{2})?\b`)

// MaskNIR replaces anything that looks like a NIR in free text (comments,
// reasons) with a fixed mask, so that the journal and the console never
// hold one.
func MaskNIR(s string) string { return nirLike.ReplaceAllString(s, "[NIR masqué]") }
