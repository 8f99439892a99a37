package certificate

import (
	"errors"
	"testing"

	"github.com/octgw/oct/formats/fixed"
)

func FuzzParseTask(f *testing.F) {
	for _, u := range sampleUpdates() {
		b, _ := MarshalTask(u)
		f.Add(b)
	}
	f.Add([]byte(okTask))
	f.Add([]byte(`{"resourceType":"Task"}`))
	f.Add([]byte("\xff\xd8\xff\xe0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := ParseTask(b)
		if err != nil {
			var fe *fixed.Error
			if !errors.As(err, &fe) {
				t.Fatalf("untyped error %T %v", err, err)
			}
			return
		}
		if !IsTask(b) {
			t.Fatalf("parsed a Task that IsTask rejects")
		}
		// A parsed update is valid and survives marshal → parse.
		out, err := MarshalTask(u)
		if err != nil {
			t.Fatalf("parsed update does not marshal: %v", err)
		}
		u2, err := ParseTask(out)
		if err != nil || !sameUpdate(u, u2) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, u, u2)
		}
	})
}

func FuzzParseTaskBundle(f *testing.F) {
	b, _ := MarshalTaskBundle(sampleUpdates())
	f.Add(b)
	b, _ = MarshalTaskBundle(nil)
	f.Add(b)
	f.Add([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":` + okTask + `}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		us, err := ParseTaskBundle(b)
		if err != nil {
			var fe *fixed.Error
			if !errors.As(err, &fe) {
				t.Fatalf("untyped error %T %v", err, err)
			}
			return
		}
		out, err := MarshalTaskBundle(us)
		if err != nil {
			t.Fatalf("parsed updates do not marshal: %v", err)
		}
		us2, err := ParseTaskBundle(out)
		if err != nil || len(us2) != len(us) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range us {
			if !sameUpdate(us[i], us2[i]) {
				t.Fatalf("entry %d: %+v != %+v", i, us[i], us2[i])
			}
		}
	})
}
