package certificate

// oct-cert/1 JSON written by MarshalJSON (schema order).
type (
	jPatient struct {
		NIR       string `json:"nir"`
		Family    string `json:"family"`
		Given     string `json:"given"`
		BirthDate string `json:"birth_date"`
	}
	jPractitioner struct {
		ID        string `json:"id"`
		Family    string `json:"family"`
		Given     string `json:"given,omitempty"`
		Specialty string `json:"specialty"`
	}
	jDiagnosis struct {
		System string `json:"system"`
		Code   string `json:"code"`
		Text   string `json:"text,omitempty"`
	}
	jPeriod struct {
		From    string `json:"from"`
		To      string `json:"to"`
		Kind    string `json:"kind"`
		Extends string `json:"extends,omitempty"`
	}
	jCertificate struct {
		Version      string        `json:"version"`
		ID           string        `json:"id"`
		Issued       string        `json:"issued"`
		Insurer      string        `json:"insurer"`
		Benefit      Benefit       `json:"benefit"`
		Patient      jPatient      `json:"patient"`
		Practitioner jPractitioner `json:"practitioner"`
		VisitDate    string        `json:"visit_date"`
		VisitNumber  string        `json:"visit_number,omitempty"`
		Diagnosis    *jDiagnosis   `json:"diagnosis,omitempty"`
		Incapacity   *jPeriod      `json:"incapacity,omitempty"`
		AccidentDate string        `json:"accident_date,omitempty"`
	}
)

// MarshalJSON writes c as oct-cert/1 JSON (two-space indented, schema
// order). It does not validate c (Check does).
func MarshalJSON(c *Certificate) ([]byte, error) {
	if c == nil {
		return nil, errNil
	}
	j := jCertificate{Version: Version, ID: c.ID, Issued: formatInstant(c.Issued), Insurer: c.Insurer,
		Benefit:      c.Benefit,
		Patient:      jPatient(c.Patient),
		Practitioner: jPractitioner(c.Practitioner),
		VisitDate:    c.VisitDate, VisitNumber: c.VisitNumber, AccidentDate: c.AccidentDate}
	if !c.Diagnosis.IsZero() {
		d := jDiagnosis(c.Diagnosis)
		j.Diagnosis = &d
	}
	if c.Incapacity != nil {
		p := jPeriod(*c.Incapacity)
		j.Incapacity = &p
	}
	return marshalIndent(j)
}
