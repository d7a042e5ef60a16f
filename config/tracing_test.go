package config_test

import (
	"strings"
	"testing"

	"github.com/productd/productd/config"
)

func TestTracingFollowsTheOTELVariables(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env     map[string]string
		tracing bool
		service string
	}{
		{env: nil, tracing: false, service: "productd"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, tracing: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector/v1/traces", "OTEL_SERVICE_NAME": "catalogue"}, tracing: true, service: "catalogue"},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, tracing: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, tracing: false},
		{env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, tracing: false},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, tracing: true},
	} {
		c, err := config.FromLookup(lookup(tc.env))
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if c.Tracing != tc.tracing {
			t.Errorf("%v: tracing %t, want %t", tc.env, c.Tracing, tc.tracing)
		}
		if tc.service != "" && c.ServiceName != tc.service {
			t.Errorf("%v: service %q, want %q", tc.env, c.ServiceName, tc.service)
		}
	}
	for name, value := range map[string]string{
		"OTEL_TRACES_EXPORTER":               "jaeger",
		"OTEL_EXPORTER_OTLP_PROTOCOL":        "grpc",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
		"OTEL_EXPORTER_OTLP_ENDPOINT":        "collector:4318",
		"OTEL_SDK_DISABLED":                  "maybe",
	} {
		_, err := config.FromLookup(lookup(map[string]string{name: value}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v, want one naming the variable", name, value, err)
		}
	}
}
