package api_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/productd/productd"
	"github.com/productd/productd/api"
	"github.com/productd/productd/logging"
)

// Every route the server mounts must be described in /openapi.yaml, with the
// same method.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	srv := api.NewServer(api.Config{Products: struct{ productd.ProductService }{}, Log: logging.Discard()})
	h := &harness{t: t, srv: srv}
	rec := h.do(http.MethodGet, "/openapi.yaml", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.yaml = %d", rec.Code)
	}
	var spec struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(rec.Body.Bytes(), &spec); err != nil {
		t.Fatalf("parse openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(spec.OpenAPI, "3.") {
		t.Errorf("openapi version %q", spec.OpenAPI)
	}
	param := regexp.MustCompile(`[:*]([A-Za-z_]+)`)
	routes := srv.Router().Routes()
	if len(routes) < 8 {
		t.Fatalf("only %d routes mounted", len(routes))
	}
	for _, r := range routes {
		path := param.ReplaceAllString(r.Path, "{$1}")
		ops, ok := spec.Paths[path]
		if !ok {
			t.Errorf("route %s %s has no path %s in openapi.yaml", r.Method, r.Path, path)
			continue
		}
		if _, ok := ops[strings.ToLower(r.Method)]; !ok {
			t.Errorf("route %s %s has no %s operation in openapi.yaml", r.Method, r.Path, strings.ToLower(r.Method))
		}
	}
}
