package certificate

import (
	"sort"
	"strconv"

	"github.com/octgw/oct/formats/fixed"
)

// node is one value of a generic JSON document (decoded with UseNumber)
// together with its path, so that every finding names the element it is
// about: "Bundle.entry[2].resource.code.coding[0].code".
type node struct {
	v    any // nil when the member is absent or null
	path string
}

func (n node) present() bool { return n.v != nil }

// member returns the member k of an object node (absent when n is not an
// object or has no such member).
func (n node) member(k string) node {
	m, _ := n.v.(map[string]any)
	if n.path == "" {
		return node{v: m[k], path: k}
	}
	return node{v: m[k], path: n.path + "." + k}
}

// index returns the element i of an array node.
func (n node) index(i int) node {
	a, _ := n.v.([]any)
	p := n.path + "[" + strconv.Itoa(i) + "]"
	if i < 0 || i >= len(a) {
		return node{path: p}
	}
	return node{v: a[i], path: p}
}

// walker reads nodes and reports type errors into its collector. bad
// holds the paths already reported (type or format errors), so that the
// semantic checks do not report the zero value left there again.
type walker struct {
	c   *fixed.Collector
	bad map[string]bool
}

func (w *walker) typeErr(n node, want string) {
	w.c.Addf(ErrJSONType, 0, n.path, "want %s", want)
	w.mark(n.path)
}

func (w *walker) mark(path string) {
	if w.bad == nil {
		w.bad = map[string]bool{}
	}
	w.bad[path] = true
}

// object reports whether n is an object; a present non-object is a type error.
func (w *walker) object(n node) bool {
	if !n.present() {
		return false
	}
	if _, ok := n.v.(map[string]any); !ok {
		w.typeErr(n, "an object")
		return false
	}
	return true
}

// array returns the length of an array node (0 when absent or mistyped).
func (w *walker) array(n node) int {
	if !n.present() {
		return 0
	}
	a, ok := n.v.([]any)
	if !ok {
		w.typeErr(n, "an array")
		return 0
	}
	return len(a)
}

// str returns a string node's value; "" when absent or mistyped (a type
// error is reported for a present non-string).
func (w *walker) str(n node) string {
	if !n.present() {
		return ""
	}
	s, ok := n.v.(string)
	if !ok {
		w.typeErr(n, "a string")
		return ""
	}
	return s
}

// need is str with ErrRequired for an absent or empty member.
func (w *walker) need(n node) string {
	if !n.present() {
		w.c.Addf(ErrRequired, 0, n.path, "missing")
		return ""
	}
	s := w.str(n)
	if s == "" {
		if _, ok := n.v.(string); ok {
			w.c.Addf(ErrRequired, 0, n.path, "empty")
		}
	}
	return s
}

// closed reports every member of the object n that is not in keys
// (ErrUnknownField): oct-cert/1 objects are closed.
func (w *walker) closed(n node, keys ...string) {
	m, _ := n.v.(map[string]any)
	for _, k := range sortedKeys(m) {
		known := false
		for _, kk := range keys {
			if k == kk {
				known = true
				break
			}
		}
		if !known {
			w.c.Addf(ErrUnknownField, 0, n.member(k).path, "member not defined by %s", Version)
		}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// modifiers reports a modifierExtension on n: FHIR forbids ignoring one,
// and oct-cert/1 defines none.
func (w *walker) modifiers(n node) {
	if n.member("modifierExtension").present() {
		w.c.Addf(ErrModifierExt, 0, n.path+".modifierExtension", "no modifier extension is defined by %s", Version)
	}
}
