package certificate

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/octgw/oct/formats/fixed"
)

func sampleUpdates() []StatusUpdate {
	at := time.Date(2026, 3, 4, 10, 30, 0, 0, time.UTC)
	return []StatusUpdate{
		{TaskID: "T-1", CertificateID: "AT-2026-0001", Status: StatusReceived, Updated: at},
		{TaskID: "T-1", CertificateID: "AT-2026-0001", Status: StatusUnderReview, Updated: at.Add(time.Hour)},
		{TaskID: "T-1", CertificateID: "AT-2026-0001", Status: StatusAccepted, Updated: at.Add(2 * time.Hour)},
		{TaskID: "T-2", CertificateID: "AT-2026-0002", Status: StatusRefused, ReasonCode: "R12", ReasonText: "incapacité non justifiée", Updated: at.Add(3 * time.Hour)},
		{TaskID: "T-3", CertificateID: "AT-2026-0003", Status: StatusArbiterReturned, ReasonCode: "ARB-02", Updated: time.Date(2026, 3, 5, 8, 0, 0, 123000000, time.FixedZone("", 3600))},
	}
}

func sameUpdate(a, b StatusUpdate) bool {
	return a.TaskID == b.TaskID && a.CertificateID == b.CertificateID && a.Status == b.Status &&
		a.ReasonCode == b.ReasonCode && a.ReasonText == b.ReasonText && a.Updated.Equal(b.Updated)
}

func TestTaskRoundTrip(t *testing.T) {
	for _, u := range sampleUpdates() {
		b, err := MarshalTask(u)
		if err != nil {
			t.Fatalf("%s: %v", u.Status, err)
		}
		if !IsTask(b) {
			t.Fatalf("IsTask false on\n%s", b)
		}
		got, err := ParseTask(b)
		if err != nil {
			t.Fatalf("%s: %v\n%s", u.Status, err, b)
		}
		if !sameUpdate(got, u) {
			t.Fatalf("round trip: %+v != %+v", got, u)
		}
		if !strings.Contains(string(b), `"status": "`+u.Status.FHIRTaskStatus()+`"`) {
			t.Fatalf("Task.status not %s:\n%s", u.Status.FHIRTaskStatus(), b)
		}
	}
}

func TestTaskBundleRoundTrip(t *testing.T) {
	us := sampleUpdates()
	b, err := MarshalTaskBundle(us)
	if err != nil {
		t.Fatal(err)
	}
	if IsTask(b) {
		t.Fatal("a Bundle sniffed as a Task")
	}
	got, err := ParseTaskBundle(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if len(got) != len(us) {
		t.Fatalf("%d updates, want %d", len(got), len(us))
	}
	for i := range us {
		if !sameUpdate(got[i], us[i]) {
			t.Fatalf("entry %d: %+v != %+v", i, got[i], us[i])
		}
	}
	empty, err := MarshalTaskBundle(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParseTaskBundle(empty); err != nil || len(got) != 0 {
		t.Fatalf("empty bundle: %v %v", got, err)
	}
}

func TestStatusFinal(t *testing.T) {
	want := map[Status]bool{StatusReceived: false, StatusUnderReview: false, StatusAccepted: true, StatusRefused: true, StatusArbiterReturned: true, "bogus": false}
	for s, f := range want {
		if s.Final() != f {
			t.Errorf("%s.Final() = %v", s, !f)
		}
	}
}

const okTask = `{"resourceType":"Task","id":"x","meta":{"versionId":"3"},
 "identifier":[{"system":"urn:other","value":"zzz"},{"system":"https://oct.example/fhir/NamingSystem/ssa-task-id","value":"T-9"}],
 "status":"rejected","intent":"order",
 "businessStatus":{"coding":[{"system":"https://oct.example/fhir/CodeSystem/ssa-status","code":"refused"}]},
 "statusReason":{"coding":[{"system":"https://oct.example/fhir/CodeSystem/ssa-reason","code":"R1"}],"text":"hors délai"},
 "focus":{"identifier":{"system":"https://oct.example/fhir/NamingSystem/certificate-id","value":"C-1"}},
 "owner":{"display":"SSA"},
 "lastModified":"2026-03-04T10:30:00+01:00"}`

func TestParseTaskTolerant(t *testing.T) {
	u, err := ParseTask([]byte(okTask))
	if err != nil {
		t.Fatal(err)
	}
	want := StatusUpdate{TaskID: "T-9", CertificateID: "C-1", Status: StatusRefused, ReasonCode: "R1", ReasonText: "hors délai",
		Updated: time.Date(2026, 3, 4, 9, 30, 0, 0, time.UTC)}
	if !sameUpdate(u, want) {
		t.Fatalf("%+v", u)
	}
}

func TestParseTaskErrors(t *testing.T) {
	cases := []struct {
		name, in string
		code     fixed.Code
		field    string
	}{
		{"jpeg", "\xff\xd8\xff\xe0\x00\x10JFIF", ErrJSONSyntax, ""},
		{"array", `[]`, ErrJSONSyntax, ""},
		{"trailing", okTask + `{}`, ErrJSONSyntax, ""},
		{"not task", `{"resourceType":"Patient"}`, ErrResourceType, "Task.resourceType"},
		{"business status", strings.Replace(okTask, `"code":"refused"`, `"code":"lost"`, 1), ErrTaskStatus, "Task.businessStatus.coding[0].code"},
		{"status mismatch", strings.Replace(okTask, `"status":"rejected"`, `"status":"completed"`, 1), ErrTaskStatus, "Task.status"},
		{"no reason", strings.Replace(okTask, `"code":"R1"`, `"code":""`, 1), ErrReason, "Task.statusReason.coding[0].code"},
		{"reason system", strings.Replace(okTask, `CodeSystem/ssa-reason`, `CodeSystem/other`, 1), ErrCodeSystem, "Task.statusReason.coding"},
		{"no task id", strings.Replace(okTask, `NamingSystem/ssa-task-id`, `NamingSystem/x`, 1), ErrRequired, "Task.identifier"},
		{"bad task id", strings.Replace(okTask, `"T-9"`, `"T 9"`, 1), ErrID, "Task.identifier[1].value"},
		{"focus system", strings.Replace(okTask, `NamingSystem/certificate-id`, `NamingSystem/x`, 1), ErrCodeSystem, "Task.focus.identifier.system"},
		{"focus type", strings.Replace(okTask, `"value":"C-1"`, `"value":17`, 1), ErrJSONType, "Task.focus.identifier.value"},
		{"date", strings.Replace(okTask, `2026-03-04T10:30:00+01:00`, `2026-03-04`, 1), ErrDate, "Task.lastModified"},
		{"intent", strings.Replace(okTask, `"intent":"order"`, `"intent":"plan"`, 1), ErrFHIR, "Task.intent"},
		{"modifier", strings.Replace(okTask, `"id":"x"`, `"modifierExtension":[{}]`, 1), ErrModifierExt, "Task.modifierExtension"},
		{"too large", `{"resourceType":"Task","text":"` + strings.Repeat("a", MaxTaskBytes) + `"}`, ErrTooLarge, ""},
	}
	for _, tc := range cases {
		_, err := ParseTask([]byte(tc.in))
		var fe *fixed.Error
		if !errors.As(err, &fe) {
			t.Errorf("%s: err %v, want *fixed.Error", tc.name, err)
			continue
		}
		if !errors.Is(err, tc.code) || fe.Field != tc.field {
			t.Errorf("%s: %v (field %q), want %s at %q", tc.name, err, fe.Field, tc.code, tc.field)
		}
		if strings.Contains(err.Error(), "hors") || strings.Contains(err.Error(), "JFIF") {
			t.Errorf("%s: error quotes the input: %v", tc.name, err)
		}
	}
}

func TestParseTaskBundleErrors(t *testing.T) {
	b, _ := MarshalTaskBundle(sampleUpdates())
	bad := strings.Replace(string(b), `"code": "ARB-02"`, `"code": "ARB 02"`, 1)
	_, err := ParseTaskBundle([]byte(bad))
	var fe *fixed.Error
	if !errors.As(err, &fe) || fe.Code != ErrReason || fe.Field != "Bundle.entry[4].resource.statusReason.coding[0].code" {
		t.Fatalf("got %v", err)
	}
	if _, err := ParseTaskBundle([]byte(`{"resourceType":"Bundle","type":"document"}`)); !errors.Is(err, ErrFHIR) {
		t.Fatalf("document bundle: %v", err)
	}
	if _, err := ParseTaskBundle([]byte(okTask)); !errors.Is(err, ErrResourceType) {
		t.Fatalf("task as bundle: %v", err)
	}
	// An OperationOutcome entry in search mode "outcome" is skipped.
	withOutcome := `{"resourceType":"Bundle","type":"searchset","entry":[{"resource":` + okTask +
		`},{"search":{"mode":"outcome"},"resource":{"resourceType":"OperationOutcome"}}]}`
	got, err := ParseTaskBundle([]byte(withOutcome))
	if err != nil || len(got) != 1 || got[0].TaskID != "T-9" {
		t.Fatalf("%v %v", got, err)
	}
}

func TestMarshalTaskRefusesInvalid(t *testing.T) {
	at := time.Date(2026, 3, 4, 10, 30, 0, 0, time.UTC)
	for _, u := range []StatusUpdate{
		{CertificateID: "C", Status: StatusAccepted, Updated: at},
		{TaskID: "T", CertificateID: "C", Status: "nope", Updated: at},
		{TaskID: "T", CertificateID: "C", Status: StatusRefused, Updated: at},
		{TaskID: "T", CertificateID: "C", Status: StatusAccepted},
		{TaskID: "T", CertificateID: strings.Repeat("c", 36), Status: StatusAccepted, Updated: at},
	} {
		if _, err := MarshalTask(u); err == nil {
			t.Errorf("%+v marshalled", u)
		}
	}
	if _, err := MarshalTaskBundle([]StatusUpdate{{TaskID: "T"}}); err == nil {
		t.Error("bundle with an invalid update marshalled")
	}
}

func TestIsTask(t *testing.T) {
	for in, want := range map[string]bool{
		okTask: true,
		`  {"id":"1","meta":{"a":[1,{"resourceType":"Task"}]},"resourceType":"Task"}`: true,
		"\xef\xbb\xbf{\"resourceType\":\"Task\"}":                                     true,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Task"}}]}`:    false,
		`{"meta":{"resourceType":"Task"}}`:                                            false,
		`{"resourceType":17}`:                                                         false,
		`["resourceType","Task"]`:                                                     false,
		`{"resourceType"`:                                                             false,
		"\xff\xd8\xff":                                                                false,
		"":                                                                            false,
	} {
		if got := IsTask([]byte(in)); got != want {
			t.Errorf("IsTask(%.40q) = %v", in, got)
		}
	}
}
