package certificate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/nir"
)

// GenOptions drive Generate. The same options always give the same bytes.
type GenOptions struct {
	Seed           uint64
	FHIR           bool    // a FHIR R4 Bundle instead of oct-cert/1 JSON
	Benefit        Benefit // "" picks one from the seed
	IncapacityDays int     // 0 picks a length from the seed; over MaxIncapacityDays gives an invalid certificate
	// Fault, when not empty, injects one fault that Validate reports with
	// that code and no other (see Faults). ErrFHIR, ErrReference and
	// ErrModifierExt exist in FHIR only and force FHIR.
	Fault fixed.Code
}

// Faults lists the codes Generate can inject.
var Faults = []fixed.Code{ErrJSONSyntax, ErrJSONType, ErrUnknownField, ErrEncoding, ErrVersion, ErrRequired,
	ErrID, ErrInsurer, nir.ErrSyntax, nir.ErrKey, ErrPractitioner, ErrSpecialty, ErrDate, ErrDateOrder,
	ErrIncapacity, ErrExtension, ErrDiagnosis, ErrCodeSystem, ErrBenefit, ErrForbidden, ErrFieldTooLong,
	ErrFHIR, ErrReference, ErrModifierExt, ErrTooLarge}

// Fictional names and codes used by the generator.
var (
	genFamilies = []string{"MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND", "LEROY", "MOREAU"}
	genGiven    = []string{"Camille", "Dominique", "Claude", "Alix", "Sacha", "Jean Paul", "Marie", "Lou", "Noa", "Eden"}
	genDiag     = map[Benefit][]Diagnosis{
		BenefitSickness:     {{ICD10System, "J11.1", "Grippe"}, {ICD10System, "M54.5", "Lombalgie basse"}, {ICD10System, "F32.1", ""}, {ICD10System, "J06.9", "Infection aiguë des voies respiratoires supérieures"}},
		BenefitWorkAccident: {{ICD10System, "S93.4", "Entorse de la cheville"}, {ICD10System, "S62.6", "Fracture d'un doigt"}, {ICD10System, "T14.0", ""}},
		BenefitInvalidity:   {{ICD10System, "G35", "Sclérose en plaques"}, {ICD10System, "M16.0", "Coxarthrose bilatérale"}},
		BenefitMaternity:    {{ICD10System, "O26.8", "Autres affections précisées liées à la grossesse"}},
	}
)

// GenCertificate returns the certificate Generate writes, without the
// byte-level faults (syntax, type, unknown member, encoding, version, FHIR
// structure, size) but with the model-level ones.
func GenCertificate(opt GenOptions) *Certificate {
	rng := rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x5eed0ce7c0ffee11))
	visit := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(opt.Seed%300))
	b := opt.Benefit
	if b == "" {
		b = Benefits[rng.IntN(len(Benefits))]
	}
	// Some faults need a part the benefit may not have.
	switch opt.Fault {
	case ErrIncapacity, ErrExtension, ErrForbidden:
		if b != BenefitSickness && b != BenefitWorkAccident {
			b = BenefitSickness
		}
	case ErrDiagnosis, ErrCodeSystem, ErrFieldTooLong:
		if b == BenefitMaternity {
			b = BenefitSickness
		}
	}
	sex := 1 + rng.IntN(2)
	if b == BenefitMaternity {
		sex = 2
	}
	birth := visit.AddDate(-18-rng.IntN(47), -rng.IntN(12), -rng.IntN(28))
	dept := 1 + rng.IntN(95)
	if dept == 20 {
		dept = 21
	}
	n13 := fmt.Sprintf("%d%02d%02d%02d%03d%03d", sex, birth.Year()%100, int(birth.Month()), dept, 1+rng.IntN(999), 1+rng.IntN(999))
	key, _ := nir.Key(n13)
	pid := fmt.Sprintf("%08d", 10000000+rng.IntN(90000000))
	c := &Certificate{
		ID:      fmt.Sprintf("AT-%d-%06d", visit.Year(), rng.IntN(1000000)),
		Issued:  visit.Add(time.Duration(8+rng.IntN(10))*time.Hour + time.Duration(rng.IntN(60))*time.Minute).In(time.FixedZone("", 3600)).Add(-time.Hour),
		Insurer: fmt.Sprintf("SSA%02d", 1+rng.IntN(12)),
		Patient: Patient{NIR: fmt.Sprintf("%s%02d", n13, key), Family: genFamilies[rng.IntN(len(genFamilies))],
			Given: genGiven[rng.IntN(len(genGiven))], BirthDate: birth.Format(time.DateOnly)},
		Practitioner: Practitioner{ID: pid + luhnKey(pid), Family: genFamilies[rng.IntN(len(genFamilies))],
			Given: genGiven[rng.IntN(len(genGiven))], Specialty: "01"},
		VisitDate: visit.Format(time.DateOnly),
		Benefit:   b,
	}
	if rng.IntN(2) == 0 {
		c.VisitNumber = fmt.Sprintf("V%07d", rng.IntN(10000000))
	}
	ds := genDiag[b]
	d := ds[rng.IntN(len(ds))]
	if b != BenefitMaternity || rng.IntN(2) == 0 {
		c.Diagnosis = d
	}
	days := opt.IncapacityDays
	if days == 0 {
		switch b {
		case BenefitWorkAccident:
			days = 1 + rng.IntN(30)
		default:
			days = 1 + rng.IntN(14)
		}
	}
	withPeriod := b == BenefitSickness || b == BenefitWorkAccident || (b == BenefitMaternity && rng.IntN(2) == 0)
	if withPeriod {
		from := visit
		p := &Period{From: from.Format(time.DateOnly), To: from.AddDate(0, 0, days-1).Format(time.DateOnly), Kind: KindInitial}
		if rng.IntN(4) == 3 {
			p.Kind = KindExtension
			p.Extends = fmt.Sprintf("AT-%d-%06d", visit.Year(), rng.IntN(1000000))
			if p.Extends == c.ID {
				p.Extends += "A"
			}
		}
		c.Incapacity = p
	}
	if b == BenefitWorkAccident {
		c.AccidentDate = visit.AddDate(0, 0, -rng.IntN(10)).Format(time.DateOnly)
	}
	injectModel(c, opt.Fault)
	return c
}

// injectModel applies a model-level fault.
func injectModel(c *Certificate, f fixed.Code) {
	switch f {
	case ErrRequired:
		c.Practitioner.Family = ""
	case ErrID:
		c.ID = "AT 2026/1"
	case ErrInsurer:
		c.Insurer = "ssa-01"
	case nir.ErrSyntax:
		c.Patient.NIR = c.Patient.NIR[:14]
	case nir.ErrKey:
		k, _ := strconv.Atoi(c.Patient.NIR[13:])
		c.Patient.NIR = fmt.Sprintf("%s%02d", c.Patient.NIR[:13], 1+k%97)
	case ErrPractitioner:
		id := []byte(c.Practitioner.ID)
		id[8] = '0' + (id[8]-'0'+1)%10
		c.Practitioner.ID = string(id)
	case ErrSpecialty:
		c.Practitioner.Specialty = "7"
	case ErrDate:
		c.VisitDate = c.VisitDate[:8] + "32"
	case ErrDateOrder:
		v, _ := parseDate(c.VisitDate)
		c.Patient.BirthDate = v.AddDate(0, 0, 1).Format(time.DateOnly)
		if c.AccidentDate != "" {
			c.AccidentDate = c.VisitDate
		}
	case ErrIncapacity:
		c.Incapacity.Kind = "temporary"
		c.Incapacity.Extends = ""
	case ErrExtension:
		c.Incapacity.Kind = KindExtension
		c.Incapacity.Extends = ""
	case ErrDiagnosis:
		c.Diagnosis.Code = "J1"
	case ErrCodeSystem:
		c.Diagnosis.System = "http://snomed.info/sct"
	case ErrBenefit:
		c.Benefit = "holiday"
		c.AccidentDate = ""
	case ErrForbidden:
		if c.Benefit == BenefitWorkAccident {
			c.Benefit = BenefitSickness
		}
		c.AccidentDate = c.VisitDate
	case ErrFieldTooLong:
		c.Diagnosis.Text = strings.Repeat("x", MaxDiagnosisText+1)
	}
}

// Generate writes one certificate, oct-cert/1 JSON or (opt.FHIR) a FHIR
// Bundle, with at most one injected fault.
func Generate(opt GenOptions) []byte {
	fhir := opt.FHIR
	switch opt.Fault {
	case ErrFHIR, ErrReference, ErrModifierExt:
		fhir = true
	}
	c := GenCertificate(opt)
	var out []byte
	if fhir {
		out, _ = MarshalFHIR(c)
	} else {
		out, _ = MarshalJSON(c)
	}
	switch opt.Fault {
	case ErrJSONSyntax:
		return out[:len(out)/2]
	case ErrTooLarge:
		return append(out, bytes.Repeat([]byte{' '}, DefaultMaxBytes)...)
	case ErrJSONType, ErrUnknownField, ErrEncoding, ErrVersion, ErrFHIR, ErrReference, ErrModifierExt:
		return injectBytes(out, fhir, opt.Fault)
	}
	return out
}

// injectBytes applies a fault that the model cannot carry, on the decoded
// JSON (members are then written in sorted order).
func injectBytes(out []byte, fhir bool, f fixed.Code) []byte {
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		return out
	}
	entry := func(i int) map[string]any {
		return m["entry"].([]any)[i].(map[string]any)["resource"].(map[string]any)
	}
	switch {
	case f == ErrEncoding && fhir:
		m["resourceType"] = "Parameters"
	case f == ErrEncoding:
		m["resourceType"] = "Composition"
	case f == ErrVersion && fhir:
		m["meta"] = map[string]any{"profile": []any{profileBase + "|2"}}
	case f == ErrVersion:
		m["version"] = "oct-cert/2"
	case f == ErrJSONType && fhir:
		entry(1)["birthDate"] = 19800517
	case f == ErrJSONType:
		m["benefit"] = 3
	case f == ErrUnknownField && fhir:
		comp := entry(0)
		comp["extension"] = append(comp["extension"].([]any), map[string]any{"url": FHIRBase + "StructureDefinition/oct-cert-colour", "valueString": "blue"})
	case f == ErrUnknownField:
		m["patient"].(map[string]any)["ssn"] = "x"
	case f == ErrFHIR:
		m["type"] = "collection"
	case f == ErrReference:
		entry(0)["subject"] = map[string]any{"reference": "urn:uuid:00000000-0000-5000-8000-000000000000"}
	case f == ErrModifierExt:
		entry(1)["modifierExtension"] = []any{map[string]any{"url": "https://example.org/x", "valueBoolean": true}}
	}
	b, err := marshalIndent(m)
	if err != nil {
		return out
	}
	return b
}

// luhnKey returns the digit that makes s+key pass the Luhn check.
func luhnKey(s string) string {
	for k := byte('0'); k <= '9'; k++ {
		if luhnOK(s + string(k)) {
			return string(k)
		}
	}
	return "0"
}

func luhnOK(s string) bool {
	sum, double := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}
