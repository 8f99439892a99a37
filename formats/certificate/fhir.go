package certificate

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// OUR FHIR R4 profile of a certificate (docs/formats/certificate.md
// "FHIR R4 profile"). These URLs are ours, not published ones.
const (
	FHIRBase   = "https://oct.example/fhir/"
	ProfileURL = FHIRBase + "StructureDefinition/oct-cert-bundle|1" // Bundle.meta.profile, versioned

	ExtInsurer      = FHIRBase + "StructureDefinition/oct-cert-insurer"       // Composition, valueString
	ExtBenefit      = FHIRBase + "StructureDefinition/oct-cert-benefit"       // Composition, valueCoding
	ExtIncapacity   = FHIRBase + "StructureDefinition/oct-cert-incapacity"    // Composition, complex: period, kind, extends
	ExtAccidentDate = FHIRBase + "StructureDefinition/oct-cert-accident-date" // Composition, valueDate

	BenefitSystem      = FHIRBase + "CodeSystem/oct-cert-benefit"       // codes = Benefit values
	DocTypeSystem      = FHIRBase + "CodeSystem/oct-document-type"      // Composition.type
	DocTypeCode        = "medical-certificate"                          //
	SectionSystem      = FHIRBase + "CodeSystem/oct-cert-section"       // Composition.section.code
	SpecialtySystem    = FHIRBase + "CodeSystem/practitioner-specialty" // Practitioner.qualification.code
	PractitionerSystem = FHIRBase + "NamingSystem/practitioner-id"      // Practitioner.identifier
	VisitSystem        = FHIRBase + "NamingSystem/visit-number"         // Encounter.identifier
	// NIRSystem is the French INS-NIR OID (the NIR as an identifier).
	NIRSystem = "urn:oid:1.2.250.1.213.1.4.8"
)

// profileBase is ProfileURL without its version: another version of the
// profile is a version finding, not a missing profile.
var profileBase, _, _ = strings.Cut(ProfileURL, "|")

// fhir entry kinds of the profile.
const (
	rtComposition  = "Composition"
	rtPatient      = "Patient"
	rtPractitioner = "Practitioner"
	rtEncounter    = "Encounter"
	rtCondition    = "Condition"
)

// decodeFHIR reads a Bundle of our profile into a Certificate. pm says
// where each member was (or would be) read; skip holds logical names of
// parts whose resource is missing (already reported). ok is false when the
// Bundle is too broken (no Composition) for the semantic checks to mean
// anything.
func decodeFHIR(w *walker, root node) (c *Certificate, pm paths, skip map[string]bool, ok bool) {
	c = &Certificate{}
	pm = paths{}
	skip = map[string]bool{}
	w.modifiers(root)

	// Version: meta.profile lists ProfileURL.
	prof := root.member("meta").member("profile")
	found, other := false, false
	if w.object(root.member("meta")) {
		for i, n := 0, w.array(prof); i < n; i++ {
			s := w.str(prof.index(i))
			switch {
			case s == ProfileURL:
				found = true
			case strings.HasPrefix(s, profileBase):
				other = true
			}
		}
	}
	if !found {
		if other {
			w.c.Addf(ErrVersion, 0, prof.path, "another version of the profile; want %s", ProfileURL)
		} else {
			w.c.Addf(ErrVersion, 0, prof.path, "missing: want %s", ProfileURL)
		}
	}
	if t := root.member("type"); !t.present() {
		w.c.Addf(ErrRequired, 0, t.path, "missing")
	} else if s := w.str(t); s != "document" && !w.bad[t.path] {
		w.c.Addf(ErrFHIR, 0, t.path, "want document")
	}
	id := root.member("identifier")
	pm["id"] = id.path + ".value"
	if w.object(id) {
		if s := w.str(id.member("system")); s != CertificateIDSystem && !w.bad[id.path+".system"] {
			w.c.Addf(ErrCodeSystem, 0, id.path+".system", "want %s", CertificateIDSystem)
		}
		c.ID = w.str(id.member("value"))
	}
	if ts := root.member("timestamp"); !ts.present() {
		w.c.Addf(ErrRequired, 0, ts.path, "missing (a FHIR document has a timestamp)")
	} else {
		if s := w.str(ts); !w.bad[ts.path] {
			if _, err := parseInstant(s); err != nil {
				w.c.Addf(ErrDate, 0, ts.path, "want a FHIR instant")
			}
		}
	}

	// Entries: index by fullUrl and by resource type.
	entries := root.member("entry")
	n := w.array(entries)
	if n > MaxFHIREntries {
		w.c.Addf(ErrFHIR, 0, entries.path, "%d entries, at most %d", n, MaxFHIREntries)
		n = MaxFHIREntries
	}
	byURL := map[string]int{}
	kind := map[string]int{}
	res := func(i int) node { return entries.index(i).member("resource") }
	for i := 0; i < n; i++ {
		e := entries.index(i)
		if !w.object(e) {
			continue
		}
		w.modifiers(e)
		r := res(i)
		if !w.object(r) {
			if !r.present() {
				w.c.Addf(ErrRequired, 0, r.path, "an entry without a resource")
			}
			continue
		}
		w.modifiers(r)
		fu := e.member("fullUrl")
		switch s := w.str(fu); {
		case s == "" && !w.bad[fu.path]:
			w.c.Addf(ErrRequired, 0, fu.path, "a document entry has a fullUrl")
		case s != "":
			if _, dup := byURL[s]; dup {
				w.c.Addf(ErrFHIR, 0, fu.path, "two entries with the same fullUrl")
			} else {
				byURL[s] = i
			}
		}
		rt := w.str(r.member("resourceType"))
		switch rt {
		case rtComposition, rtPatient, rtPractitioner, rtEncounter, rtCondition:
			if _, dup := kind[rt]; dup {
				w.c.Addf(ErrFHIR, 0, r.path, "a second %s; the profile has one", rt)
			} else {
				kind[rt] = i
			}
		default:
			w.c.Addf(ErrFHIR, 0, r.path+".resourceType", "resource type not in the profile (Composition, Patient, Practitioner, Encounter, Condition)")
		}
	}
	ci, hasComp := kind[rtComposition]
	if !hasComp {
		w.c.Addf(ErrFHIR, 0, entries.path, "no Composition entry")
		return c, pm, skip, false
	}
	if ci != 0 {
		w.c.Addf(ErrFHIR, 0, res(ci).path, "the Composition is the first entry of a document")
	}
	for _, need := range []struct{ rt, logical string }{
		{rtPatient, "patient"}, {rtPractitioner, "practitioner"}, {rtEncounter, "visit_date"}} {
		if _, ok := kind[need.rt]; !ok {
			w.c.Addf(ErrFHIR, 0, entries.path, "no %s entry", need.rt)
			skip[need.logical] = true
		}
	}

	// ref checks that the Reference at n resolves to the entry of type want.
	ref := func(n node, want string, required bool) {
		if !w.object(n) {
			if !n.present() && required {
				w.c.Addf(ErrRequired, 0, n.path, "missing reference to the %s", want)
			}
			return
		}
		rn := n.member("reference")
		s := w.str(rn)
		if s == "" {
			if !w.bad[rn.path] {
				w.c.Addf(ErrRequired, 0, rn.path, "missing")
			}
			return
		}
		i, ok := byURL[s]
		if !ok {
			w.c.Addf(ErrReference, 0, rn.path, "matches no entry's fullUrl")
			return
		}
		if got, _ := res(i).member("resourceType").v.(string); got != want {
			w.c.Addf(ErrReference, 0, rn.path, "refers to a %s, want the %s", got, want)
		}
	}

	// Composition.
	cp := res(ci)
	if st := cp.member("status"); !st.present() {
		w.c.Addf(ErrRequired, 0, st.path, "missing")
	} else if s := w.str(st); s != "final" && s != "amended" && !w.bad[st.path] {
		w.c.Addf(ErrFHIR, 0, st.path, "want final or amended")
	}
	if cd, ok := findCoding(w, cp.member("type"), DocTypeSystem); !ok || w.str(cd.member("code")) != DocTypeCode {
		w.c.Addf(ErrFHIR, 0, cp.path+".type", "want coding %s#%s", DocTypeSystem, DocTypeCode)
	}
	ref(cp.member("subject"), rtPatient, true)
	ref(cp.member("encounter"), rtEncounter, true)
	if au := cp.member("author"); w.array(au) == 0 {
		if !w.bad[au.path] {
			w.c.Addf(ErrRequired, 0, au.path, "missing reference to the Practitioner")
		}
	} else {
		ref(au.index(0), rtPractitioner, true)
	}
	date := cp.member("date")
	pm["issued"] = date.path
	if s := w.str(date); s != "" {
		t, err := parseInstant(s)
		if err != nil {
			w.c.Addf(ErrDate, 0, date.path, "want a FHIR instant (RFC 3339 with zone)")
			w.mark(date.path)
		}
		c.Issued = t
	}
	exts := cp.member("extension")
	pm["insurer"] = cp.path + ".extension('" + ExtInsurer + "').valueString"
	pm["benefit"] = cp.path + ".extension('" + ExtBenefit + "').valueCoding.code"
	pm["incapacity"] = cp.path + ".extension('" + ExtIncapacity + "')"
	pm["accident_date"] = cp.path + ".extension('" + ExtAccidentDate + "').valueDate"
	seen := map[string]bool{}
	for i, k := 0, w.array(exts); i < k; i++ {
		ext := exts.index(i)
		if !w.object(ext) {
			continue
		}
		url := w.str(ext.member("url"))
		switch url {
		case ExtInsurer, ExtBenefit, ExtIncapacity, ExtAccidentDate:
			if seen[url] {
				w.c.Addf(ErrFHIR, 0, ext.path, "extension given twice")
				continue
			}
			seen[url] = true
		}
		switch url {
		case ExtInsurer:
			v := ext.member("valueString")
			pm["insurer"] = v.path
			c.Insurer = w.str(v)
		case ExtBenefit:
			v := ext.member("valueCoding")
			pm["benefit"] = v.path + ".code"
			if w.object(v) {
				if s := w.str(v.member("system")); s != BenefitSystem && !w.bad[v.path+".system"] {
					w.c.Addf(ErrCodeSystem, 0, v.path+".system", "want %s", BenefitSystem)
					w.mark(v.path + ".code")
				}
				c.Benefit = Benefit(w.str(v.member("code")))
			}
		case ExtIncapacity:
			pm["incapacity"] = ext.path
			c.Incapacity = decodeIncapacity(w, ext, pm)
		case ExtAccidentDate:
			v := ext.member("valueDate")
			pm["accident_date"] = v.path
			c.AccidentDate = w.str(v)
		default:
			if strings.HasPrefix(url, FHIRBase) {
				w.c.Addf(ErrUnknownField, 0, ext.path+".url", "an extension of our namespace that %s does not define", ProfileURL)
			}
		}
	}

	// Patient.
	if i, ok := kind[rtPatient]; ok {
		pt := res(i)
		pm["patient.nir"] = identifierValue(w, pt, NIRSystem, &c.Patient.NIR)
		c.Patient.Family, c.Patient.Given = humanName(w, pt, pm, "patient")
		pm["patient.birth_date"] = pt.path + ".birthDate"
		c.Patient.BirthDate = w.str(pt.member("birthDate"))
	}
	// Practitioner.
	if i, ok := kind[rtPractitioner]; ok {
		pr := res(i)
		pm["practitioner.id"] = identifierValue(w, pr, PractitionerSystem, &c.Practitioner.ID)
		c.Practitioner.Family, c.Practitioner.Given = humanName(w, pr, pm, "practitioner")
		pm["practitioner.specialty"] = pr.path + ".qualification"
		qs := pr.member("qualification")
		for q, k := 0, w.array(qs); q < k; q++ {
			if cd, ok := findCoding(w, qs.index(q).member("code"), SpecialtySystem); ok {
				pm["practitioner.specialty"] = cd.path + ".code"
				c.Practitioner.Specialty = w.str(cd.member("code"))
				break
			}
		}
	}
	// Encounter.
	if i, ok := kind[rtEncounter]; ok {
		en := res(i)
		st := en.member("period").member("start")
		pm["visit_date"] = st.path
		if w.object(en.member("period")) {
			c.VisitDate = w.str(st)
		}
		ids := en.member("identifier")
		for j, k := 0, w.array(ids); j < k; j++ {
			id := ids.index(j)
			if w.object(id) && w.str(id.member("system")) == VisitSystem {
				pm["visit_number"] = id.path + ".value"
				c.VisitNumber = w.str(id.member("value"))
				break
			}
		}
		ref(en.member("subject"), rtPatient, true)
	}
	// Condition.
	pm["diagnosis"] = entries.path
	if i, ok := kind[rtCondition]; ok {
		cd := res(i)
		code := cd.member("code")
		pm["diagnosis"] = code.path
		pm["diagnosis.system"] = code.path + ".coding[0].system"
		pm["diagnosis.code"] = code.path + ".coding[0].code"
		pm["diagnosis.text"] = code.path + ".text"
		if w.object(code) {
			cs := code.member("coding")
			if w.array(cs) > 0 && w.object(cs.index(0)) {
				c.Diagnosis.System = w.str(cs.index(0).member("system"))
				c.Diagnosis.Code = w.str(cs.index(0).member("code"))
			}
			c.Diagnosis.Text = w.str(code.member("text"))
		}
		if c.Diagnosis.IsZero() {
			w.c.Addf(ErrRequired, 0, code.path, "a Condition without a code")
			w.mark(code.path)
		}
		ref(cd.member("subject"), rtPatient, true)
		ref(cd.member("encounter"), rtEncounter, false)
	}
	return c, pm, skip, true
}

// decodeIncapacity reads our complex extension: sub-extensions "period"
// (valuePeriod start/end), "kind" (valueCode), "extends" (valueString).
func decodeIncapacity(w *walker, ext node, pm paths) *Period {
	p := &Period{}
	pm["incapacity.from"] = ext.path + ".extension('period').valuePeriod.start"
	pm["incapacity.to"] = ext.path + ".extension('period').valuePeriod.end"
	pm["incapacity.kind"] = ext.path + ".extension('kind').valueCode"
	pm["incapacity.extends"] = ext.path + ".extension('extends').valueString"
	subs := ext.member("extension")
	seen := map[string]bool{}
	for i, k := 0, w.array(subs); i < k; i++ {
		s := subs.index(i)
		if !w.object(s) {
			continue
		}
		url := w.str(s.member("url"))
		if seen[url] {
			w.c.Addf(ErrFHIR, 0, s.path, "sub-extension given twice")
			continue
		}
		seen[url] = true
		switch url {
		case "period":
			v := s.member("valuePeriod")
			pm["incapacity.from"] = v.path + ".start"
			pm["incapacity.to"] = v.path + ".end"
			if w.object(v) {
				p.From = w.str(v.member("start"))
				p.To = w.str(v.member("end"))
			}
		case "kind":
			v := s.member("valueCode")
			pm["incapacity.kind"] = v.path
			p.Kind = w.str(v)
		case "extends":
			v := s.member("valueString")
			pm["incapacity.extends"] = v.path
			p.Extends = w.str(v)
		default:
			w.c.Addf(ErrUnknownField, 0, s.path+".url", "not a sub-extension of %s", ExtIncapacity)
		}
	}
	return p
}

// identifierValue stores the value of r's identifier with system sys and
// returns its path (or the identifier array's when there is none).
func identifierValue(w *walker, r node, sys string, dst *string) string {
	ids := r.member("identifier")
	for i, k := 0, w.array(ids); i < k; i++ {
		id := ids.index(i)
		if w.object(id) && w.str(id.member("system")) == sys {
			*dst = w.str(id.member("value"))
			return id.path + ".value"
		}
	}
	return ids.path + ".where(system='" + sys + "').value"
}

// humanName reads name[0]: family, and the given names joined by spaces.
func humanName(w *walker, r node, pm paths, who string) (family, given string) {
	nm := r.member("name").index(0)
	pm[who+".family"] = nm.path + ".family"
	pm[who+".given"] = nm.path + ".given"
	if w.array(r.member("name")) == 0 || !w.object(nm) {
		return "", ""
	}
	family = w.str(nm.member("family"))
	gs := nm.member("given")
	var parts []string
	for i, k := 0, w.array(gs); i < k; i++ {
		if s := w.str(gs.index(i)); s != "" {
			parts = append(parts, s)
		}
	}
	return family, strings.Join(parts, " ")
}

// FHIR JSON written by MarshalFHIR (member order = R4 order).
type (
	fRef struct {
		Reference string `json:"reference"`
	}
	fName struct {
		Family string   `json:"family,omitempty"`
		Given  []string `json:"given,omitempty"`
	}
	fPeriod struct {
		Start string `json:"start,omitempty"`
		End   string `json:"end,omitempty"`
	}
	fExt struct {
		URL         string      `json:"url"`
		Extension   []fExt      `json:"extension,omitempty"`
		ValueString string      `json:"valueString,omitempty"`
		ValueCode   string      `json:"valueCode,omitempty"`
		ValueDate   string      `json:"valueDate,omitempty"`
		ValueCoding *fhirCoding `json:"valueCoding,omitempty"`
		ValuePeriod *fPeriod    `json:"valuePeriod,omitempty"`
	}
	fSection struct {
		Title string      `json:"title"`
		Code  fhirConcept `json:"code"`
		Text  *fNarrative `json:"text,omitempty"`
		Entry []fRef      `json:"entry,omitempty"`
	}
	fNarrative struct {
		Status string `json:"status"`
		Div    string `json:"div"`
	}
	fComposition struct {
		ResourceType string      `json:"resourceType"`
		Extension    []fExt      `json:"extension,omitempty"`
		Status       string      `json:"status"`
		Type         fhirConcept `json:"type"`
		Subject      fRef        `json:"subject"`
		Encounter    fRef        `json:"encounter"`
		Date         string      `json:"date"`
		Author       []fRef      `json:"author"`
		Title        string      `json:"title"`
		Section      []fSection  `json:"section,omitempty"`
	}
	fPatient struct {
		ResourceType string           `json:"resourceType"`
		Identifier   []fhirIdentifier `json:"identifier"`
		Name         []fName          `json:"name"`
		BirthDate    string           `json:"birthDate,omitempty"`
	}
	fQualification struct {
		Code fhirConcept `json:"code"`
	}
	fPractitioner struct {
		ResourceType  string           `json:"resourceType"`
		Identifier    []fhirIdentifier `json:"identifier"`
		Name          []fName          `json:"name"`
		Qualification []fQualification `json:"qualification,omitempty"`
	}
	fEncounter struct {
		ResourceType string           `json:"resourceType"`
		Identifier   []fhirIdentifier `json:"identifier,omitempty"`
		Status       string           `json:"status"`
		Class        fhirCoding       `json:"class"`
		Subject      fRef             `json:"subject"`
		Period       fPeriod          `json:"period"`
	}
	fCondition struct {
		ResourceType string      `json:"resourceType"`
		Code         fhirConcept `json:"code"`
		Subject      fRef        `json:"subject"`
		Encounter    fRef        `json:"encounter"`
	}
	fEntry struct {
		FullURL  string `json:"fullUrl"`
		Resource any    `json:"resource"`
	}
	fMeta struct {
		Profile []string `json:"profile"`
	}
	fBundle struct {
		ResourceType string         `json:"resourceType"`
		Meta         fMeta          `json:"meta"`
		Identifier   fhirIdentifier `json:"identifier"`
		Type         string         `json:"type"`
		Timestamp    string         `json:"timestamp,omitempty"`
		Entry        []fEntry       `json:"entry"`
	}
)

// entryURL is the fullUrl of one resource of a certificate: a urn:uuid
// derived from the certificate id and the resource type, so that
// MarshalFHIR is deterministic (the certificate id is not personal data).
func entryURL(certID, rt string) string {
	h := sha256.Sum256([]byte("oct-cert/1\x00" + certID + "\x00" + rt))
	h[6] = h[6]&0x0f | 0x50 // version 5-like (name-based, SHA)
	h[8] = h[8]&0x3f | 0x80 // RFC 4122 variant
	x := hex.EncodeToString(h[:16])
	return "urn:uuid:" + x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

var errNil = errors.New("certificate: nil certificate")

// MarshalFHIR writes c as a FHIR R4 Bundle of type "document" in our
// profile: what OCT sends to the SSA. It does not validate c (Check does);
// a valid c gives a Bundle that Validate accepts and reads back equal.
func MarshalFHIR(c *Certificate) ([]byte, error) {
	if c == nil {
		return nil, errNil
	}
	u := func(rt string) string { return entryURL(c.ID, rt) }
	comp := fComposition{
		ResourceType: rtComposition,
		Status:       "final",
		Type:         fhirConcept{Coding: []fhirCoding{{System: DocTypeSystem, Code: DocTypeCode}}},
		Subject:      fRef{u(rtPatient)},
		Encounter:    fRef{u(rtEncounter)},
		Date:         formatInstant(c.Issued),
		Author:       []fRef{{u(rtPractitioner)}},
		Title:        "Medical certificate",
	}
	comp.Extension = append(comp.Extension, fExt{URL: ExtInsurer, ValueString: c.Insurer})
	comp.Extension = append(comp.Extension, fExt{URL: ExtBenefit, ValueCoding: &fhirCoding{System: BenefitSystem, Code: string(c.Benefit)}})
	if p := c.Incapacity; p != nil {
		ext := fExt{URL: ExtIncapacity}
		ext.Extension = append(ext.Extension, fExt{URL: "period", ValuePeriod: &fPeriod{Start: p.From, End: p.To}})
		if p.Kind != "" {
			ext.Extension = append(ext.Extension, fExt{URL: "kind", ValueCode: p.Kind})
		}
		if p.Extends != "" {
			ext.Extension = append(ext.Extension, fExt{URL: "extends", ValueString: p.Extends})
		}
		comp.Extension = append(comp.Extension, ext)
	}
	if c.AccidentDate != "" {
		comp.Extension = append(comp.Extension, fExt{URL: ExtAccidentDate, ValueDate: c.AccidentDate})
	}
	pat := fPatient{ResourceType: rtPatient,
		Identifier: []fhirIdentifier{{System: NIRSystem, Value: c.Patient.NIR}},
		Name:       []fName{name(c.Patient.Family, c.Patient.Given)},
		BirthDate:  c.Patient.BirthDate}
	prac := fPractitioner{ResourceType: rtPractitioner,
		Identifier: []fhirIdentifier{{System: PractitionerSystem, Value: c.Practitioner.ID}},
		Name:       []fName{name(c.Practitioner.Family, c.Practitioner.Given)}}
	if c.Practitioner.Specialty != "" {
		prac.Qualification = []fQualification{{Code: fhirConcept{Coding: []fhirCoding{{System: SpecialtySystem, Code: c.Practitioner.Specialty}}}}}
	}
	enc := fEncounter{ResourceType: rtEncounter, Status: "finished",
		Class:   fhirCoding{System: "http://terminology.hl7.org/CodeSystem/v3-ActCode", Code: "AMB"},
		Subject: fRef{u(rtPatient)}, Period: fPeriod{Start: c.VisitDate}}
	if c.VisitNumber != "" {
		enc.Identifier = []fhirIdentifier{{System: VisitSystem, Value: c.VisitNumber}}
	}
	b := fBundle{ResourceType: "Bundle", Meta: fMeta{Profile: []string{ProfileURL}},
		Identifier: fhirIdentifier{System: CertificateIDSystem, Value: c.ID},
		Type:       "document", Timestamp: formatInstant(c.Issued)}
	b.Entry = []fEntry{{u(rtComposition), nil}, {u(rtPatient), pat}, {u(rtPractitioner), prac}, {u(rtEncounter), enc}}
	if !c.Diagnosis.IsZero() {
		cond := fCondition{ResourceType: rtCondition,
			Code:    fhirConcept{Coding: []fhirCoding{{System: c.Diagnosis.System, Code: c.Diagnosis.Code}}, Text: c.Diagnosis.Text},
			Subject: fRef{u(rtPatient)}, Encounter: fRef{u(rtEncounter)}}
		b.Entry = append(b.Entry, fEntry{u(rtCondition), cond})
		comp.Section = []fSection{{Title: "Diagnosis",
			Code:  fhirConcept{Coding: []fhirCoding{{System: SectionSystem, Code: "diagnosis"}}},
			Entry: []fRef{{u(rtCondition)}}}}
	}
	b.Entry[0].Resource = comp
	return marshalIndent(b)
}

func name(family, given string) fName {
	n := fName{Family: family}
	if given != "" {
		n.Given = []string{given}
	}
	return n
}

func formatInstant(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}
