package pec

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"

	"github.com/octgw/oct/formats/fixed"
)

// checkShape walks a generic JSON value against the Go type it will be
// decoded into and reports every member the type does not define
// (ErrUnknownField) and every member of the wrong JSON type (ErrJSONType),
// with its path. encoding/json only reports the first of each.
func checkShape(v any, t reflect.Type, path string, c *fixed.Collector, depth int) {
	if depth > 32 {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return // null leaves the zero value; required checks catch it
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			c.Addf(ErrJSONType, 0, path, "want an object")
			return
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(m) {
			f, ok := fields[k]
			if !ok {
				c.Addf(ErrUnknownField, 0, join(path, k), "member not defined by %s", Version)
				continue
			}
			checkShape(m[k], f, join(path, k), c, depth+1)
		}
	case reflect.Slice:
		a, ok := v.([]any)
		if !ok {
			c.Addf(ErrJSONType, 0, path, "want an array")
			return
		}
		for i, e := range a {
			checkShape(e, t.Elem(), path+"["+strconv.Itoa(i)+"]", c, depth+1)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			c.Addf(ErrJSONType, 0, path, "want a string")
		}
	case reflect.Int, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			c.Addf(ErrJSONType, 0, path, "want an integer")
			return
		}
		if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
			c.Addf(ErrJSONType, 0, path, "want an integer (no fraction, no exponent)")
		}
	}
}

func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = f.Type
	}
	return m
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// insertion sort: objects are small
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}
