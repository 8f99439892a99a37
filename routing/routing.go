// Package routing decides where a lot goes: a rule tree from configuration
// over the fields of the 000/1/2 records and the referentials, falling back
// to the referentials themselves. Every decision carries its reason and the
// referential version it read.
package routing

import (
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/octgw/oct/referentials"
)

// Code is a stable error code; a Code is an error so errors.Is(err, Code)
// works. Never rename one.
type Code string

func (c Code) Error() string { return string(c) }

// Error codes.
const (
	// ErrUnroutable: no destination for the lot. *UnroutableError says why.
	ErrUnroutable Code = "ROUTE_UNROUTABLE"
	// ErrConfig: the routing configuration is invalid. *ConfigError lists the issues.
	ErrConfig Code = "ROUTE_CONFIG"
)

// Why a lot is unroutable (UnroutableError.Why), stable.
const (
	WhyNoAMOEntry   = "no-amo-entry"  // no AMO directory entry for (grand régime, caisse)
	WhyNoAMCEntry   = "no-amc-entry"  // no AMC referential entry for the AMC number
	WhyNoConvention = "no-convention" // the AMC's operator has no convention in force
	WhyNormRefused  = "norm-refused"  // the endpoint does not accept the lot's norm
	WhyTestMismatch = "test-mismatch" // a test lot to a production endpoint or the reverse
	WhyRejected     = "rejected"      // a rule rejects the lot
	WhyNoDefault    = "no-default"    // no rule decided and there is no default for the kind
	WhyMissingField = "missing-field" // a field needed to route is empty
)

// Kind of flow.
type Kind string

// Kinds.
const (
	KindB2          Kind = "b2"          // FSE / B2 lot to the AMO
	KindDRE         Kind = "dre"         // DRE lot to the AMC
	KindSCOR        Kind = "scor"        // SCOR supporting documents (AMO)
	KindPEC         Kind = "pec"         // PEC / OptoAMC request (AMC)
	KindCertificate Kind = "certificate" // certificate flows: rules only
)

// Input is what the gateway knows of a lot when routing it (filled from the
// 000 header, the type 1 and type 2 records and the tenant).
type Input struct {
	Tenant      string
	Emitter     string // émetteur number (type 1 pos 2)
	Kind        Kind
	Norm        string // 000 norme field, trimmed ("CP", "580", ...)
	Variant     string // type 1 pos 79-80 (CP, ES, ...)
	GrandRegime string // 2 digits
	Caisse      string // 3 digits: type 1 destination caisse (pos 17)
	AMC         string // AMC number from type 2 pos 119 (any padding)
	Profession  string // pharmacy, optics, nurse, hospital, ... (tenant profile)
	Specialty   string // PS specialty code (2 digits)
	Insurer     string // certificates: the SSA organisation code, an operator of the convention table
	Test        bool   // 000 type de flux T or D
	// AMCPart: a B2 (FSE) lot whose invoices also carry an AMC part — an
	// "FSE enrichie" the OCT may have to split (éclatement).
	AMCPart bool
}

// DestKind is the kind of receiving organism.
type DestKind string

// Destination kinds.
const (
	AMO DestKind = "AMO"
	AMC DestKind = "AMC"
	SSA DestKind = "SSA" // other recipient (service, OCT, platform) from static config
)

// Destination is one place a lot goes to.
type Destination struct {
	ID        string                 `yaml:"-" json:"id"` // amo:<GR><CCC>, amc:<operator>, or the static name
	Kind      DestKind               `yaml:"kind" json:"kind"`
	Transport referentials.Transport `yaml:"transport" json:"transport"`
	Address   string                 `yaml:"address" json:"address"`
	Cipher    referentials.Cipher    `yaml:"cipher" json:"cipher"`
	Test      bool                   `yaml:"test" json:"test"`
	Label     string                 `yaml:"label" json:"label,omitempty"`
	// Split marks the AMC flow of an FSE enrichie: this destination receives
	// what a Splitter extracts from the lot, not the lot itself.
	Split bool `yaml:"-" json:"split,omitempty"`

	line int
}

// Reason says why a decision was taken.
type Reason struct {
	Rule    string   `json:"rule,omitempty"` // path of the deciding rule ("parent/child"); "" = default
	Default bool     `json:"default"`        // decided by the default behaviour
	Entries []string `json:"entries"`        // referential entries used ("amo:01422", "amc:00420000", "convention:SANTEPHARM/*", "static:name")
}

func (r Reason) String() string {
	var b strings.Builder
	if r.Default {
		b.WriteString("default route")
	} else {
		b.WriteString("rule " + r.Rule)
	}
	if len(r.Entries) > 0 {
		b.WriteString(" via " + strings.Join(r.Entries, ", "))
	}
	return b.String()
}

// Decision is where a lot goes, why, and which referential version was read.
type Decision struct {
	Destinations []Destination `json:"destinations"`
	Reason       Reason        `json:"reason"`
	Version      uint64        `json:"referential_version"`
	VersionSHA   string        `json:"referential_sha256"`
}

// UnroutableError: no destination. The gateway turns it into an anomaly.
type UnroutableError struct {
	Why     string // Why* constant
	Detail  string // human-readable, no personal data
	Rule    string // rule path, "" for the default route
	Version uint64 // referential version read
}

func (e *UnroutableError) Error() string {
	s := fmt.Sprintf("%s: %s: %s (referential version %d", ErrUnroutable, e.Why, e.Detail, e.Version)
	if e.Rule != "" {
		s += ", rule " + e.Rule
	}
	return s + ")"
}

// Is makes errors.Is(err, ErrUnroutable) true.
func (e *UnroutableError) Is(target error) bool { return target == ErrUnroutable }

// Referentials gives the referential version in force. *referentials.Repo
// implements it.
type Referentials interface {
	Current() *referentials.Snapshot
}

// Router routes lots. It is immutable and safe for concurrent use; build a
// new one to change rules.
type Router struct {
	cfg  Config
	refs Referentials
}

// New builds a router; cfg may be nil (defaults only). The configuration
// is validated.
func New(cfg *Config, refs Referentials) (*Router, error) {
	r := &Router{refs: refs}
	if cfg != nil {
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		r.cfg = *cfg
		r.cfg.Destinations = maps.Clone(cfg.Destinations)
	}
	if refs == nil {
		return nil, fmt.Errorf("%w: routing.New: no referentials", ErrConfig)
	}
	for name, d := range r.cfg.Destinations {
		d.ID = name
		r.cfg.Destinations[name] = d
	}
	return r, nil
}

// lot is one routing evaluation: the input, the snapshot, derived facts.
type lot struct {
	in      Input
	at      time.Time
	snap    *referentials.Snapshot
	amcDone bool
	amc     referentials.AMCEntry
	amcOK   bool
}

func (l *lot) amcEntry() (referentials.AMCEntry, bool) {
	if !l.amcDone {
		l.amcDone = true
		if l.in.AMC != "" {
			l.amc, l.amcOK = l.snap.AMC(l.in.AMC, l.at)
		}
	}
	return l.amc, l.amcOK
}

// Route decides where the lot goes at instant at (the referential entries
// in force at that instant are used).
func (r *Router) Route(in Input, at time.Time) (Decision, error) {
	l := &lot{in: in, at: at, snap: r.refs.Current()}
	d, err := r.decide(l)
	d.Version, d.VersionSHA = l.snap.Version.ID, l.snap.Version.SHA256
	if err != nil {
		if ue, ok := err.(*UnroutableError); ok {
			ue.Version = l.snap.Version.ID
		}
		return d, err
	}
	for _, dst := range d.Destinations {
		if dst.Test != in.Test {
			what := "a production lot to test endpoint"
			if in.Test {
				what = "a test lot to production endpoint"
			}
			return d, &UnroutableError{Why: WhyTestMismatch, Detail: what + " " + dst.ID, Rule: d.Reason.Rule, Version: l.snap.Version.ID}
		}
	}
	return d, nil
}

func (r *Router) decide(l *lot) (Decision, error) {
	if rule, path, ok := r.walk(l, r.cfg.Rules, ""); ok {
		if rule.Reject != "" {
			return Decision{Reason: Reason{Rule: path}}, &UnroutableError{Why: WhyRejected, Detail: rule.Reject, Rule: path}
		}
		d := Decision{Reason: Reason{Rule: path}}
		for _, t := range rule.To {
			if err := r.target(l, t, &d); err != nil {
				err.Rule = path
				return d, err
			}
		}
		return d, nil
	}
	d := Decision{Reason: Reason{Default: true}}
	if r.cfg.Default == "none" {
		return d, &UnroutableError{Why: WhyNoDefault, Detail: "no rule matched and the default route is disabled"}
	}
	var t string
	switch l.in.Kind {
	case KindB2, KindSCOR:
		t = "amo"
	case KindDRE, KindPEC:
		t = "amc"
	case KindCertificate:
		t = "ssa"
	default:
		return d, &UnroutableError{Why: WhyNoDefault, Detail: fmt.Sprintf("no rule matched and kind %q has no default route", l.in.Kind)}
	}
	if err := r.target(l, t, &d); err != nil {
		return d, err
	}
	r.amcFlow(l, &d)
	return d, nil
}

// amcFlow adds, for an FSE enrichie whose AMC is in separate management
// (its operator's convention takes DRE), the AMC operator as a split
// destination. An AMC the referential does not know, or whose operator takes
// no DRE, adds nothing: the AMO flow goes alone, as the caisse then handles
// the AMC part (gestion unique).
func (r *Router) amcFlow(l *lot, d *Decision) {
	if l.in.Kind != KindB2 || !l.in.AMCPart || l.in.AMC == "" {
		return
	}
	e, ok := l.amcEntry()
	if !ok {
		return
	}
	c, ok := l.snap.Convention(e.Operator, l.in.Profession, l.at)
	if !ok || !c.Accepts(referentials.NormDRE) {
		return
	}
	d.Destinations = append(d.Destinations, Destination{ID: "amc:" + c.Operator, Kind: AMC, Transport: c.Transport, Address: c.Address,
		Cipher: c.Cipher, Test: c.Test, Label: c.Name, Split: true})
	d.Reason.Entries = append(d.Reason.Entries, "amc:"+e.Key(), "convention:"+c.Key(), "split:fse-enrichie")
}

// walk returns the first deciding rule in depth-first order.
func (r *Router) walk(l *lot, rules []Rule, prefix string) (*Rule, string, bool) {
	for i := range rules {
		rule := &rules[i]
		if !r.matches(l, &rule.Match) {
			continue
		}
		path := rule.Name
		if prefix != "" {
			path = prefix + "/" + rule.Name
		}
		if sub, p, ok := r.walk(l, rule.Rules, path); ok {
			return sub, p, true
		}
		if len(rule.To) > 0 || rule.Reject != "" {
			return rule, path, true
		}
	}
	return nil, "", false
}

func anyOf(vals []string, v string) bool {
	if len(vals) == 0 {
		return true
	}
	for _, x := range vals {
		if p, ok := strings.CutSuffix(x, "*"); ok {
			if strings.HasPrefix(v, p) {
				return true
			}
		} else if x == v {
			return true
		}
	}
	return false
}

func (r *Router) matches(l *lot, m *Match) bool {
	in := &l.in
	if m.Test != nil && *m.Test != in.Test {
		return false
	}
	if !anyOf(m.Kind, string(in.Kind)) || !anyOf(m.Tenant, in.Tenant) || !anyOf(m.Emitter, in.Emitter) ||
		!anyOf(m.Norm, in.Norm) || !anyOf(m.Variant, in.Variant) || !anyOf(m.GrandRegime, in.GrandRegime) ||
		!anyOf(m.Caisse, in.Caisse) || !anyOf(m.Profession, in.Profession) || !anyOf(m.Specialty, in.Specialty) {
		return false
	}
	if len(m.AMC) > 0 && !anyOf(m.AMC, referentials.NormalizeAMC(in.AMC)) {
		return false
	}
	if len(m.Regroupement) > 0 || len(m.Operator) > 0 {
		e, ok := l.amcEntry()
		if !ok || !anyOf(m.Regroupement, e.Regroupement) || !anyOf(m.Operator, e.Operator) {
			return false
		}
	}
	return true
}

func normOf(k Kind) referentials.Norm {
	switch k {
	case KindB2:
		return referentials.NormB2
	case KindDRE:
		return referentials.NormDRE
	case KindSCOR:
		return referentials.NormSCOR
	case KindPEC:
		return referentials.NormPEC
	case KindCertificate:
		return referentials.NormCERT
	}
	return ""
}

func (r *Router) target(l *lot, t string, d *Decision) *UnroutableError {
	add := func(dst Destination, entries ...string) {
		for _, x := range d.Destinations {
			if x.ID == dst.ID {
				return
			}
		}
		d.Destinations = append(d.Destinations, dst)
		d.Reason.Entries = append(d.Reason.Entries, entries...)
	}
	in := &l.in
	switch t {
	case "amo":
		if in.GrandRegime == "" || in.Caisse == "" {
			return &UnroutableError{Why: WhyMissingField, Detail: "grand régime and caisse are required to route to the AMO"}
		}
		e, ok := l.snap.AMO(in.GrandRegime, in.Caisse, l.at)
		if !ok {
			return &UnroutableError{Why: WhyNoAMOEntry, Detail: fmt.Sprintf("no AMO directory entry for grand régime %s caisse %s", in.GrandRegime, in.Caisse)}
		}
		add(Destination{ID: "amo:" + e.GrandRegime + e.Organisme, Kind: AMO, Transport: e.Transport, Address: e.Mailbox,
			Cipher: e.Cipher, Test: e.Test, Label: e.Label}, "amo:"+e.Key())
	case "amc":
		if in.AMC == "" {
			return &UnroutableError{Why: WhyMissingField, Detail: "an AMC number is required to route to the AMC"}
		}
		e, ok := l.amcEntry()
		if !ok {
			return &UnroutableError{Why: WhyNoAMCEntry, Detail: fmt.Sprintf("no AMC referential entry for AMC %s", referentials.NormalizeAMC(in.AMC))}
		}
		c, ok := l.snap.Convention(e.Operator, in.Profession, l.at)
		if !ok {
			return &UnroutableError{Why: WhyNoConvention, Detail: fmt.Sprintf("operator %s of AMC %s has no convention in force for profession %q", e.Operator, e.AMC, in.Profession)}
		}
		if n := normOf(in.Kind); n != "" && !c.Accepts(n) {
			return &UnroutableError{Why: WhyNormRefused, Detail: fmt.Sprintf("convention %s does not accept norm %s", c.Key(), n)}
		}
		add(Destination{ID: "amc:" + c.Operator, Kind: AMC, Transport: c.Transport, Address: c.Address,
			Cipher: c.Cipher, Test: c.Test, Label: c.Name}, "amc:"+e.Key(), "convention:"+c.Key())
	case "ssa":
		// A social-security administration is an operator of the convention
		// table whose convention takes the CERT norm (docs/routing.md).
		if in.Insurer == "" {
			return &UnroutableError{Why: WhyMissingField, Detail: "the certificate names no insurer (SSA organisation code)"}
		}
		c, ok := l.snap.Convention(in.Insurer, in.Profession, l.at)
		if !ok {
			return &UnroutableError{Why: WhyNoConvention, Detail: fmt.Sprintf("SSA %s has no convention in force", in.Insurer)}
		}
		if !c.Accepts(referentials.NormCERT) {
			return &UnroutableError{Why: WhyNormRefused, Detail: fmt.Sprintf("convention %s does not accept norm %s", c.Key(), referentials.NormCERT)}
		}
		add(Destination{ID: "ssa:" + c.Operator, Kind: SSA, Transport: c.Transport, Address: c.Address,
			Cipher: c.Cipher, Test: c.Test, Label: c.Name}, "convention:"+c.Key())
	default:
		add(r.cfg.Destinations[t], "static:"+t)
	}
	return nil
}
