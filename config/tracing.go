package config

// tracing reads whether tracing is on, from the variables of the
// OpenTelemetry specification:
//
//   - OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the URL spans are posted to) or
//     OTEL_EXPORTER_OTLP_ENDPOINT (the collector's base URL, /v1/traces
//     added) turns it on; OTEL_TRACES_EXPORTER=otlp turns it on towards the
//     exporter's default, http://localhost:4318.
//   - OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true keeps it off
//     whatever else is set.
//
// Only OTLP over HTTP is built in: OTEL_EXPORTER_OTLP_PROTOCOL (or its
// _TRACES_ form) may only be http/protobuf. The exporter and the SDK read
// the rest of their variables themselves (headers, timeout, compression,
// certificates, OTEL_TRACES_SAMPLER, OTEL_RESOURCE_ATTRIBUTES), as the
// specification says; they are checked here only as far as productd's
// start depends on them.
func (r *reader) tracing() bool {
	if r.bool("OTEL_SDK_DISABLED", false) {
		return false
	}
	exporter := r.oneOf("OTEL_TRACES_EXPORTER", "", "", "otlp", "none")
	for _, name := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		r.oneOf(name, "http/protobuf", "http/protobuf")
	}
	endpoint := false
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if v := r.str(name, ""); v != "" {
			r.checkURL(name, v, "http", "https")
			endpoint = true
		}
	}
	switch exporter {
	case "none":
		return false
	case "otlp":
		return true
	}
	return endpoint
}
