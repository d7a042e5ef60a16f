package telemetry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/productd/productd/internal/settings"
	"github.com/productd/productd/logging"
)

// Config says whether and where traces go. Metrics are always collected.
type Config struct {
	// Tracing turns on tracing. Off, the tracer provider is a no-op one and
	// the HTTP middleware starts no span.
	Tracing bool
	// Endpoint is the OTLP/HTTP endpoint's URL (e.g.
	// http://collector:4318). Empty leaves it to the exporter, which reads
	// the standard OTEL_EXPORTER_OTLP_ENDPOINT variables and defaults to
	// http://localhost:4318.
	Endpoint string
	// ServiceName names the process's resource. Zero means
	// DefaultServiceName ("productd").
	ServiceName string
	// Exporter, when set, receives the spans instead of the OTLP exporter,
	// each as it ends (tests give a tracetest.InMemoryExporter). Tracing
	// must be on.
	Exporter sdktrace.SpanExporter
	// CacheFor is how long the figures that cost a round trip (the outbox
	// backlog, queue depths, the maintenance switch) are reused between
	// scrapes. Zero means DefaultCacheFor (5 s).
	CacheFor time.Duration
	// Log receives the failures of those readings. Nil means none.
	Log *logrus.Logger
}

// Defaults of Config.
const (
	DefaultServiceName = "productd"
	DefaultCacheFor    = 5 * time.Second
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.ServiceName = cmp.Or(c.ServiceName, DefaultServiceName)
	c.CacheFor = cmp.Or(c.CacheFor, DefaultCacheFor)
	c.Log = cmp.Or(c.Log, logging.Discard())
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults.
func (c Config) validate() error {
	return settings.NonNegative("telemetry", settings.F("CacheFor", c.CacheFor))
}

// Telemetry is one process's metrics registry and tracer provider. Create it
// with New and Shutdown it last, so that the spans still buffered are
// exported.
type Telemetry struct {
	cfg      Config
	reg      *prometheus.Registry
	provider trace.TracerProvider
	// sdk is the provider when tracing is on, for Shutdown.
	sdk    *sdktrace.TracerProvider
	tracer trace.Tracer
	// propagator is the W3C trace context: traceparent and tracestate.
	propagator propagation.TextMapPropagator
	http       *httpMetrics
	// cached is what the figures read through a cache share.
	cached cacheOpts
	// collectors are every collector registered, in order.
	collectors []prometheus.Collector
}

// register adds cs to the registry; a collector registered twice (a
// component set up twice in one process) is a programming error.
func (t *Telemetry) register(cs ...prometheus.Collector) {
	t.reg.MustRegister(cs...)
	t.collectors = append(t.collectors, cs...)
}

// tracerName names the instrumentation scope of every productd span.
const tracerName = "github.com/productd/productd"

// New returns the process's Telemetry: a registry holding the Go runtime,
// process and HTTP collectors, and the tracer provider cfg asks for. With
// tracing on and no Exporter it sets up the OTLP/HTTP exporter, which takes
// its remaining settings (headers, timeout, compression, certificates) from
// the standard OTEL_EXPORTER_OTLP_* variables, as does the sampler
// (OTEL_TRACES_SAMPLER, parent-based always-on by default); no connection is
// made until the first spans are exported.
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t := &Telemetry{cfg: cfg, reg: prometheus.NewRegistry(), propagator: propagation.TraceContext{}}
	t.register(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	t.http = newHTTPMetrics(t.register)
	t.cached = cacheOpts{ttl: cfg.CacheFor, log: cfg.Log, errors: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "productd_telemetry_read_errors_total",
		Help: "Failed readings of the figures /metrics reads from the database or the broker, by source; their families are left out until a reading succeeds.",
	}, []string{"source"})}
	t.register(t.cached.errors)

	t.provider = noop.NewTracerProvider()
	if cfg.Tracing {
		sdk, err := newSDK(ctx, cfg)
		if err != nil {
			return nil, err
		}
		t.sdk, t.provider = sdk, sdk
	}
	t.tracer = t.provider.Tracer(tracerName)
	return t, nil
}

// newSDK builds the SDK's tracer provider for cfg.
func newSDK(ctx context.Context, cfg Config) (*sdktrace.TracerProvider, error) {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(cfg.ServiceName)))
	if err != nil {
		return nil, fmt.Errorf("telemetry: tracing resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if cfg.Exporter != nil {
		opts = append(opts, sdktrace.WithSyncer(cfg.Exporter))
	} else {
		var eopts []otlptracehttp.Option
		if cfg.Endpoint != "" {
			eopts = append(eopts, otlptracehttp.WithEndpointURL(cfg.Endpoint))
		}
		exp, err := otlptracehttp.New(ctx, eopts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

// Registry returns the registry every collector of the process is in.
func (t *Telemetry) Registry() *prometheus.Registry { return t.reg }

// TracerProvider returns the process's tracer provider: a no-op one when
// tracing is off.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.provider }

// Tracing reports whether spans are recorded and exported.
func (t *Telemetry) Tracing() bool { return t.sdk != nil }

// Handler serves the registry in Prometheus' text and OpenMetrics formats.
// A collector that fails leaves its families out of that scrape rather
// than failing the others.
func (t *Telemetry) Handler() http.Handler {
	return promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          t.reg, // counts promhttp's own errors
		EnableOpenMetrics: true,
	})
}

// Shutdown exports the spans still buffered and stops the exporter, within
// ctx.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("telemetry: shut down tracing: %w", err)
	}
	return nil
}
