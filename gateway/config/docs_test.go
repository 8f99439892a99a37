package config

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// keys lists every leaf key of the configuration, dotted.
func keys(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() == t.PkgPath() {
			out = append(out, keys(ft, prefix+name+".")...)
			continue
		}
		out = append(out, prefix+name)
	}
	return out
}

func TestDocsAndExampleListEveryKey(t *testing.T) {
	want := keys(reflect.TypeOf(Config{}), "")
	sort.Strings(want)

	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, m[1])
	}
	sort.Strings(documented)
	if !reflect.DeepEqual(documented, want) {
		t.Errorf("docs/configuration.md keys differ from the Config struct:\n doc:  %v\n code: %v", documented, want)
	}

	ex, err := os.ReadFile("../../deploy/oct.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("oct.example.yaml", ex)
	if err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
	if !reflect.DeepEqual(c, Defaults()) {
		t.Errorf("the example's values are not the defaults:\n got  %+v\n want %+v", c, Defaults())
	}
	var root yaml.Node
	if err := yaml.Unmarshal(ex, &root); err != nil {
		t.Fatal(err)
	}
	leaf := map[string]bool{}
	for _, k := range want {
		leaf[k] = true
	}
	var inExample []string
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			if v.Kind == yaml.MappingNode && !leaf[prefix+k] {
				walk(v, prefix+k+".")
			} else {
				inExample = append(inExample, prefix+k)
			}
		}
	}
	walk(root.Content[0], "")
	sort.Strings(inExample)
	if !reflect.DeepEqual(inExample, want) {
		t.Errorf("deploy/oct.example.yaml keys differ from the Config struct:\n example: %v\n code:    %v", inExample, want)
	}
}
