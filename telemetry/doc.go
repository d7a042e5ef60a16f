// Package telemetry holds productd's Prometheus collectors and its
// OpenTelemetry set-up and propagation helpers.
//
// A Telemetry owns one prometheus.Registry (never the default one), with the
// Go runtime and process collectors, and one tracer provider: the SDK's,
// exporting over OTLP/HTTP, when tracing is on, or a no-op one. Components
// report to it through the small observer interfaces their own packages
// define (relay.Observer, imageworker.Observer, the api's middleware hook);
// counters those packages keep already (cache.Stats, broker.Stats) are read
// at scrape time, and the figures that cost a database or broker round trip
// (the outbox backlog, queue depths) are cached for a few seconds, so that a
// scrape costs no table scan however often it comes.
//
// # Traces across processes
//
// One trace follows a product from the HTTP request that wrote it to the
// image worker's write-back: the request's span context is stored with the
// outbox row (package outbox writes the W3C traceparent and tracestate in
// the row's insert), the relay's publish span continues it and travels in
// the AMQP message's headers, and the worker's spans continue that. The
// helpers of propagation.go move the context between those carriers.
//
// # Metric names
//
// Every family is named productd_<component>_..., in base units (seconds,
// bytes), counters ending in _total; no label takes a value from a request
// (no product id, no URL): routes are Gin's templates, outcomes and reasons
// are small fixed sets.
package telemetry
