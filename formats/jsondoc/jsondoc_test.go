package jsondoc

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/octgw/oct/formats/fixed"
)

func TestDecode(t *testing.T) {
	v, off, err := Decode([]byte(` {"a": 12.50, "b": [1]} `))
	if err != nil || off != -1 {
		t.Fatal(off, err)
	}
	if n := v.(map[string]any)["a"].(json.Number); n.String() != "12.50" {
		t.Fatalf("number kept as %q", n)
	}
	if _, off, err := Decode([]byte(`{"a": 1} {"b": 2}`)); !errors.Is(err, ErrTrailing) || off != 8 {
		t.Fatalf("trailing: %d %v", off, err)
	}
	if _, off, err := Decode([]byte(`{"nir": "180057512345678" x}`)); !errors.Is(err, ErrSyntax) || off <= 0 {
		t.Fatalf("syntax: %d %v", off, err)
	}
}

// TestObjectNeverQuotesTheInput: the finding says where, not what.
func TestObjectNeverQuotesTheInput(t *testing.T) {
	for _, in := range []string{`{"nir": "180057512345678" x}`, `["180057512345678"]`, `"180057512345678"`, `{"a":1}garbage180057512345678`} {
		c := &fixed.Collector{}
		if m := Object([]byte(in), c, "json-syntax"); m != nil {
			t.Fatalf("%s: an object", in)
		}
		errs := c.Errors()
		if len(errs) != 1 || errs[0].Code != "json-syntax" || strings.Contains(errs[0].Message, "1800575") {
			t.Fatalf("%s: %+v", in, errs)
		}
	}
	c := &fixed.Collector{}
	if m := Object([]byte(`{"k": true}`), c, "json-syntax"); m == nil || m["k"] != true || c.Len() != 0 {
		t.Fatalf("object: %v %+v", m, c.Errors())
	}
}

func TestReadBounded(t *testing.T) {
	c := &fixed.Collector{}
	data, whole, err := Read(strings.NewReader(`{"a":1}`), 7, c, "too-large")
	if err != nil || !whole || string(data) != `{"a":1}` || len(c.Errors()) != 0 {
		t.Fatalf("at the limit: %q %v %v %v", data, whole, err, c.Errors())
	}
	data, whole, err = Read(strings.NewReader(`{"a":12}`), 7, c, "too-large")
	if err != nil || whole || data != nil || !c.Has("too-large") {
		t.Fatalf("over the limit: %q %v %v %v", data, whole, err, c.Errors())
	}
}
