package certificate

import (
	"io"
	"time"

	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/jsondoc"
	"github.com/octgw/oct/formats/nir"
	"github.com/octgw/oct/formats/pec"
)

// Validate reads one certificate, oct-cert/1 JSON or a FHIR R4 Bundle
// (told apart by a top-level "resourceType"), and checks it completely:
// every finding is collected with its stable code and its path (a JSON
// path such as "incapacity.to", or a FHIR path such as
// "Bundle.entry[4].resource.code.coding[0].code"). The error is for I/O
// failures only: arbitrary bytes give a json-syntax finding.
func Validate(r io.Reader, opt Options) (*Report, error) {
	max := opt.MaxBytes
	if max <= 0 {
		max = DefaultMaxBytes
	}
	c := &fixed.Collector{Max: opt.MaxErrors}
	rep := &Report{}
	data, whole, err := jsondoc.Read(r, max, c, ErrTooLarge)
	if err != nil {
		return nil, err
	} else if !whole {
		return finish(rep, c), nil
	}
	v := jsondoc.Object(data, c, ErrJSONSyntax)
	if v == nil {
		return finish(rep, c), nil
	}
	w := &walker{c: c}
	root := node{v: v}
	var (
		cert *Certificate
		pm   paths
		skip map[string]bool
		ok   bool
	)
	if rt := root.member("resourceType"); rt.present() {
		if s, _ := rt.v.(string); s != "Bundle" {
			c.Addf(ErrEncoding, 0, "resourceType", "a FHIR resource other than Bundle: send a Bundle of type document, or oct-cert/1 JSON without resourceType")
			return finish(rep, c), nil
		}
		rep.Encoding = EncodingFHIR
		cert, pm, skip, ok = decodeFHIR(w, node{v: v, path: "Bundle"})
	} else {
		rep.Encoding = EncodingJSON
		cert, skip = decodeJSON(w, root)
		ok = true
	}
	rep.Certificate = cert
	if ok {
		for p := range w.bad {
			skip[p] = true
		}
		check(cert, pm, skip, c)
	}
	return finish(rep, c), nil
}

func finish(rep *Report, c *fixed.Collector) *Report {
	rep.Errors = c.Errors()
	rep.Dropped = int(c.Dropped())
	rep.Valid = c.Len() == 0 && rep.Dropped == 0
	return rep
}

// Check validates a Certificate built in memory (by the gateway or
// GenCertificate) with the rules of Validate; Field is the oct-cert/1 JSON
// path.
func Check(c *Certificate) []fixed.Error {
	col := &fixed.Collector{}
	if c == nil {
		col.Addf(ErrRequired, 0, "", "no certificate")
		return col.Errors()
	}
	check(c, nil, nil, col)
	return col.Errors()
}

// paths maps the logical member names of check (the oct-cert/1 JSON
// paths) to where the member was read: the identity for JSON, FHIR paths
// for a Bundle.
type paths map[string]string

func (p paths) at(f string) string {
	if q, ok := p[f]; ok {
		return q
	}
	return f
}

// decodeJSON reads oct-cert/1 JSON (closed objects). skip holds the
// logical names of objects that are absent (already reported).
func decodeJSON(w *walker, root node) (*Certificate, map[string]bool) {
	c := &Certificate{}
	skip := map[string]bool{}
	w.closed(root, "version", "id", "issued", "insurer", "benefit", "patient", "practitioner",
		"visit_date", "visit_number", "diagnosis", "incapacity", "accident_date")
	switch v := root.member("version"); {
	case !v.present():
		w.c.Addf(ErrVersion, 0, "version", "missing: want %q", Version)
	default:
		if s := w.str(v); s != Version && !w.bad["version"] {
			w.c.Addf(ErrVersion, 0, "version", "want %q", Version)
		}
	}
	c.ID = w.str(root.member("id"))
	if is := root.member("issued"); is.present() {
		if s := w.str(is); s != "" {
			t, err := parseInstant(s)
			if err != nil {
				w.c.Addf(ErrDate, 0, "issued", "want an RFC 3339 time with its zone")
				w.mark("issued")
			}
			c.Issued = t
		}
	}
	c.Insurer = w.str(root.member("insurer"))
	c.Benefit = Benefit(w.str(root.member("benefit")))
	c.VisitDate = w.str(root.member("visit_date"))
	c.VisitNumber = w.str(root.member("visit_number"))
	c.AccidentDate = w.str(root.member("accident_date"))

	if p := root.member("patient"); w.object(p) {
		w.closed(p, "nir", "family", "given", "birth_date")
		c.Patient = Patient{NIR: w.str(p.member("nir")), Family: w.str(p.member("family")),
			Given: w.str(p.member("given")), BirthDate: w.str(p.member("birth_date"))}
	} else if !p.present() {
		w.c.Addf(ErrRequired, 0, "patient", "missing")
		skip["patient"] = true
	}
	if p := root.member("practitioner"); w.object(p) {
		w.closed(p, "id", "family", "given", "specialty")
		c.Practitioner = Practitioner{ID: w.str(p.member("id")), Family: w.str(p.member("family")),
			Given: w.str(p.member("given")), Specialty: w.str(p.member("specialty"))}
	} else if !p.present() {
		w.c.Addf(ErrRequired, 0, "practitioner", "missing")
		skip["practitioner"] = true
	}
	if d := root.member("diagnosis"); w.object(d) {
		w.closed(d, "system", "code", "text")
		c.Diagnosis = Diagnosis{System: w.str(d.member("system")), Code: w.str(d.member("code")), Text: w.str(d.member("text"))}
	}
	if p := root.member("incapacity"); w.object(p) {
		w.closed(p, "from", "to", "kind", "extends")
		c.Incapacity = &Period{From: w.str(p.member("from")), To: w.str(p.member("to")),
			Kind: w.str(p.member("kind")), Extends: w.str(p.member("extends"))}
	}
	return c, skip
}

func parseInstant(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || len(s) < len("2006-01-02T15:04:05Z") {
		return time.Time{}, ErrDate
	}
	return t, nil
}

// check applies the oct-cert/1 rules to c. pm maps member names to paths;
// skip holds paths (or logical object names) already reported.
func check(c *Certificate, pm paths, skip map[string]bool, col *fixed.Collector) {
	skipped := func(f string) bool {
		if skip[pm.at(f)] || skip[f] {
			return true
		}
		for i := 0; i < len(f); i++ {
			if f[i] == '.' && skip[f[:i]] {
				return true
			}
		}
		return false
	}
	add := func(code fixed.Code, f, format string, args ...any) {
		if !skipped(f) {
			col.Addf(code, 0, pm.at(f), format, args...)
		}
	}
	// required reports an empty member; it returns whether s is set.
	required := func(s, f string) bool {
		if s == "" {
			add(ErrRequired, f, "missing")
			return false
		}
		return true
	}
	text := func(s, f string, max int, need bool) {
		if need {
			required(s, f)
		}
		if len(s) > max {
			add(ErrFieldTooLong, f, "over %d bytes", max)
		}
	}
	date := func(s, f string) (time.Time, bool) {
		if !required(s, f) {
			return time.Time{}, false
		}
		t, err := parseDate(s)
		if err != nil {
			add(ErrDate, f, "want an existing date YYYY-MM-DD")
			return time.Time{}, false
		}
		return t, !skipped(f)
	}

	if required(c.ID, "id") && !idValid(c.ID, MaxIDLen) {
		add(ErrID, "id", "want 1..%d characters [A-Za-z0-9._-]", MaxIDLen)
	}
	if c.Issued.IsZero() {
		add(ErrRequired, "issued", "missing")
	}
	if required(c.Insurer, "insurer") && !InsurerValid(c.Insurer) {
		add(ErrInsurer, "insurer", "want 2..16 characters [A-Z0-9]")
	}

	p := c.Patient
	if required(p.NIR, "patient.nir") {
		if err := nir.Check(p.NIR); err != nil {
			code, ok := err.(fixed.Code) // nir.ErrSyntax or nir.ErrKey
			if !ok {
				code = nir.ErrSyntax
			}
			add(code, "patient.nir", "not a NIR with a valid key (value not echoed)")
		}
	}
	text(p.Family, "patient.family", MaxNameLen, true)
	text(p.Given, "patient.given", MaxNameLen, true)
	birth, birthOK := date(p.BirthDate, "patient.birth_date")

	pr := c.Practitioner
	if required(pr.ID, "practitioner.id") && !pec.PractitionerIDValid(pr.ID) {
		add(ErrPractitioner, "practitioner.id", "want 9 digits (2A/2B allowed at 1-2) with a Luhn key")
	}
	text(pr.Family, "practitioner.family", MaxNameLen, true)
	text(pr.Given, "practitioner.given", MaxNameLen, false)
	if required(pr.Specialty, "practitioner.specialty") && (len(pr.Specialty) != 2 || !digits(pr.Specialty)) {
		add(ErrSpecialty, "practitioner.specialty", "want 2 digits")
	}

	visit, visitOK := date(c.VisitDate, "visit_date")
	if c.VisitNumber != "" && !idValid(c.VisitNumber, MaxIDLen) {
		add(ErrID, "visit_number", "want 1..%d characters [A-Za-z0-9._-]", MaxIDLen)
	}
	if birthOK && visitOK && !birth.Before(visit) {
		add(ErrDateOrder, "patient.birth_date", "the birth date is not before the visit")
	}
	if visitOK && !c.Issued.IsZero() {
		y, m, d := c.Issued.Date() // the signer's calendar day
		issuedDay := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		if visit.After(issuedDay.AddDate(0, 0, IssueLeadDays)) {
			add(ErrDateOrder, "visit_date", "the visit is more than %d day after the issue time", IssueLeadDays)
		}
	}

	benefitOK := true
	switch {
	case c.Benefit == "":
		add(ErrRequired, "benefit", "missing")
		benefitOK = false
	case !c.Benefit.Valid():
		add(ErrBenefit, "benefit", "want sickness, maternity, invalidity or work_accident")
		benefitOK = false
	}

	// Diagnosis: required except for maternity.
	d := c.Diagnosis
	if d.IsZero() {
		if benefitOK && c.Benefit != BenefitMaternity {
			add(ErrRequired, "diagnosis", "benefit %s needs a diagnosis", c.Benefit)
		}
	} else {
		if required(d.System, "diagnosis.system") && d.System != ICD10System {
			add(ErrCodeSystem, "diagnosis.system", "want %s", ICD10System)
		} else if required(d.Code, "diagnosis.code") && !ICD10Valid(d.Code) {
			add(ErrDiagnosis, "diagnosis.code", "want an ICD-10 code: letter, 2 digits, optional . and 1-2 digits")
		}
		text(d.Text, "diagnosis.text", MaxDiagnosisText, false)
	}

	// Incapacity: required for sickness and work_accident, forbidden for
	// invalidity.
	in := c.Incapacity
	switch {
	case in == nil:
		if c.Benefit == BenefitSickness || c.Benefit == BenefitWorkAccident {
			add(ErrRequired, "incapacity", "benefit %s needs an incapacity period", c.Benefit)
		}
	case c.Benefit == BenefitInvalidity:
		add(ErrForbidden, "incapacity", "an invalidity certificate carries no incapacity period")
	default:
		from, fromOK := date(in.From, "incapacity.from")
		to, toOK := date(in.To, "incapacity.to")
		if fromOK && toOK {
			if to.Before(from) {
				add(ErrIncapacity, "incapacity.to", "ends before it starts")
			} else if days := in.Days(); days > MaxIncapacityDays {
				add(ErrIncapacity, "incapacity.to", "%d days, at most %d per certificate", days, MaxIncapacityDays)
			}
		}
		if fromOK && visitOK && from.Before(visit.AddDate(0, 0, -BackdateDays)) {
			add(ErrDateOrder, "incapacity.from", "starts more than %d days before the visit", BackdateDays)
		}
		switch in.Kind {
		case KindInitial:
			if in.Extends != "" {
				add(ErrExtension, "incapacity.extends", "an initial incapacity extends no certificate")
			}
		case KindExtension:
			switch {
			case in.Extends == "":
				add(ErrExtension, "incapacity.extends", "an extension names the certificate it extends")
			case !idValid(in.Extends, MaxIDLen):
				add(ErrID, "incapacity.extends", "want 1..%d characters [A-Za-z0-9._-]", MaxIDLen)
			case in.Extends == c.ID:
				add(ErrExtension, "incapacity.extends", "a certificate does not extend itself")
			}
		case "":
			add(ErrRequired, "incapacity.kind", "missing")
		default:
			add(ErrIncapacity, "incapacity.kind", "want initial or extension")
		}
	}

	// Accident date: work_accident only.
	if c.Benefit == BenefitWorkAccident {
		if acc, ok := date(c.AccidentDate, "accident_date"); ok {
			switch {
			case visitOK && acc.After(visit):
				add(ErrDateOrder, "accident_date", "the accident is after the visit")
			case visitOK && visit.Sub(acc) > MaxAccidentAge*24*time.Hour:
				add(ErrDateOrder, "accident_date", "the accident is more than %d days before the visit", MaxAccidentAge)
			case birthOK && acc.Before(birth):
				add(ErrDateOrder, "accident_date", "the accident is before the birth date")
			}
		}
	} else if c.AccidentDate != "" && benefitOK {
		add(ErrForbidden, "accident_date", "only a work_accident certificate has an accident date")
	}
}
