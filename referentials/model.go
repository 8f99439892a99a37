// Package referentials holds the living data that routing reads: the AMO
// caisse directory, the AMC referential (regroupements and conventions) with
// effective dates, their versions and diffs, upstream sync and the push of
// diffs to vendors. The certificate directory is in referentials/certdir.
//
// Every import yields an immutable *Snapshot with a version id; routing
// takes one Snapshot per decision so the version it reports is the version
// it read.
package referentials

import (
	"slices"
	"strings"
	"time"
)

// Table names one table of the referential.
type Table string

// Tables.
const (
	TableAMO         Table = "amo"         // AMO caisse directory
	TableAMC         Table = "amc"         // AMC number → regroupement → operator (table de regroupement)
	TableConventions Table = "conventions" // operator → endpoint (table de convention)
)

// Tables lists every table in a stable order.
var allTables = [...]Table{TableAMO, TableAMC, TableConventions}

// Transport of a destination endpoint.
type Transport string

// Transports.
const (
	SMTP  Transport = "smtp"
	SFTP  Transport = "sftp"
	HTTPS Transport = "https"
)

// Cipher is the CMS content-encryption algorithm used towards a destination.
type Cipher string

// Ciphers.
const (
	AES128     Cipher = "aes128"
	TripleDES  Cipher = "3des"
	CipherNone Cipher = "none" // only for transports that encrypt themselves (SFTP, HTTPS)
)

// Norm is a flow norm an endpoint accepts.
type Norm string

// Norms.
const (
	NormB2     Norm = "B2"
	NormDRE    Norm = "DRE"
	NormNOEMIE Norm = "NOEMIE"
	NormSCOR   Norm = "SCOR"
	NormPEC    Norm = "PEC"
	// NormCERT marks the endpoint of a social-security administration (SSA)
	// that takes medical certificates as FHIR R4 Bundles (OUR flow name: no
	// public norm, see docs/formats/certificate.md).
	NormCERT Norm = "CERT"
)

// DefaultDomain is the AMO mail domain (Réseau Santé Social).
const DefaultDomain = "rss.fr"

// Period is the validity of an entry: From inclusive, Until exclusive. A zero
// bound is open. This is how a change is scheduled: the old entry gets an
// Until, the new one the same instant as From.
type Period struct {
	From  time.Time `json:"from,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

// In reports whether t falls inside the period.
func (p Period) In(t time.Time) bool {
	if !p.From.IsZero() && t.Before(p.From) {
		return false
	}
	if !p.Until.IsZero() && !t.Before(p.Until) {
		return false
	}
	return true
}

func (p Period) overlaps(q Period) bool {
	// [a,b) and [c,d) overlap when a < d and c < b (open bounds are infinite).
	aBeforeD := p.From.IsZero() || q.Until.IsZero() || p.From.Before(q.Until)
	cBeforeB := q.From.IsZero() || p.Until.IsZero() || q.From.Before(p.Until)
	return aBeforeD && cBeforeB
}

func (p Period) keySuffix() string {
	if p.From.IsZero() {
		return ""
	}
	return "@" + p.From.UTC().Format(time.RFC3339)
}

// AMOEntry is one line of the AMO directory: where lots for (grand régime,
// caisse) go. Caisse is the destination caisse code of the type 1 record
// (pos 17); Organisme and Centre the organisme destinataire and centre
// informatique it maps to (formats.md §4.1).
type AMOEntry struct {
	GrandRegime string    `json:"grand_regime"` // 2 digits
	Caisse      string    `json:"caisse"`       // 3 digits
	Organisme   string    `json:"organisme"`    // 3 digits, organisme destinataire
	Centre      string    `json:"centre"`       // 3 digits, centre informatique
	Label       string    `json:"label,omitempty"`
	Mailbox     string    `json:"mailbox"` // derived as AMOMailbox when empty at import
	Transport   Transport `json:"transport"`
	Cipher      Cipher    `json:"cipher"`
	Test        bool      `json:"test"`
	Period

	line int
	file string
}

// Key identifies the entry across versions.
func (e AMOEntry) Key() string { return e.GrandRegime + e.Caisse + e.Period.keySuffix() }

// AMOMailbox is the RSS mailbox of an AMO organism: <GR><CCC>@<CCC>.<GR>.<domain>.
func AMOMailbox(grandRegime, organisme, domain string) string {
	if domain == "" {
		domain = DefaultDomain
	}
	return grandRegime + organisme + "@" + organisme + "." + grandRegime + "." + domain
}

// AMCEntry is one line of the table de regroupement: an AMC number, its
// regroupement and the operator (OCT, platform) that receives its flows.
type AMCEntry struct {
	AMC          string `json:"amc"` // 8 digits, see NormalizeAMC
	Name         string `json:"name,omitempty"`
	Regroupement string `json:"regroupement"`
	Operator     string `json:"operator"`
	Period

	line int
	file string
}

// Key identifies the entry across versions.
func (e AMCEntry) Key() string { return e.AMC + e.Period.keySuffix() }

// Convention is one line of the table de convention: an operator's endpoint,
// for some professions (none = all) and norms, with its third-party-payment
// rule.
type Convention struct {
	Operator     string    `json:"operator"`
	Name         string    `json:"name,omitempty"`
	Regroupement string    `json:"regroupement,omitempty"`
	Professions  []string  `json:"professions,omitempty"` // empty: every profession
	Norms        []Norm    `json:"norms"`
	Transport    Transport `json:"transport"`
	Address      string    `json:"address"` // mailbox (smtp), sftp://host/path, https URL
	Cipher       Cipher    `json:"cipher"`
	// ThirdParty is the third-party-payment rule: "" none, "T" tiers payant
	// accepted (assumption on the SESAM table, see docs/referentials.md).
	ThirdParty string            `json:"third_party,omitempty"`
	Test       bool              `json:"test"`
	Ident      string            `json:"ident,omitempty"` // operator identifier from the table (e.g. ORSP1)
	Extra      map[string]string `json:"extra,omitempty"` // raw columns whose meaning is unknown
	Period

	line int
	file string
}

// Key identifies the convention across versions: operator, professions, start.
func (c Convention) Key() string {
	p := "*"
	if len(c.Professions) > 0 {
		p = strings.Join(c.Professions, "|")
	}
	return c.Operator + "/" + p + c.Period.keySuffix()
}

// Accepts reports whether the convention takes that norm.
func (c Convention) Accepts(n Norm) bool { return slices.Contains(c.Norms, n) }

// Serves reports whether the convention covers the profession.
func (c Convention) Serves(profession string) bool {
	return len(c.Professions) == 0 || slices.Contains(c.Professions, profession)
}

// NormalizeAMC trims the blanks of an AMC number as found in a B2 type 2
// record (10 characters, pos 119) and reduces a zero-padded numeric form to
// the 8 digits of the tables (ASSUMPTION, docs/referentials.md).
func NormalizeAMC(s string) string {
	s = strings.TrimSpace(s)
	for len(s) > 8 && s[0] == '0' && isDigits(s) {
		s = s[1:]
	}
	return s
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func validTransport(t Transport) bool { return t == SMTP || t == SFTP || t == HTTPS }
func validCipher(c Cipher) bool       { return c == AES128 || c == TripleDES || c == CipherNone }
func validNorm(n Norm) bool {
	switch n {
	case NormB2, NormDRE, NormNOEMIE, NormSCOR, NormPEC, NormCERT:
		return true
	}
	return false
}

func (t Table) valid() bool { return slices.Contains(allTables[:], t) }

func (t Table) String() string { return string(t) }
