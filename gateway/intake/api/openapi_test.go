package api_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/octgw/oct/docs"
	"github.com/octgw/oct/gateway/intake/api"
)

// TestOpenAPIMatchesHandlers checks docs/openapi.yaml and the registered
// routes both ways: every documented operation has a handler and every
// handler is documented.
func TestOpenAPIMatchesHandlers(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(docs.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	a := api.New(api.Options{Gatherer: prometheus.NewRegistry()}, nil)
	var routes []string
	for _, r := range a.Routes() {
		routes = append(routes, r)
	}
	sort.Strings(documented)
	sort.Strings(routes)
	if strings.Join(documented, "\n") != strings.Join(routes, "\n") {
		t.Fatalf("docs/openapi.yaml and the handlers differ:\ndocumented:\n  %s\nhandlers:\n  %s",
			strings.Join(documented, "\n  "), strings.Join(routes, "\n  "))
	}
}
