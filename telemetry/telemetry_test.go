package telemetry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/testutil"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/productd/productd"
	"github.com/productd/productd/broker"
	"github.com/productd/productd/imageworker"
	"github.com/productd/productd/outbox"
	"github.com/productd/productd/relay"
	"github.com/productd/productd/telemetry"
)

// The observers satisfy the interfaces of the packages they watch.
var (
	_ relay.Observer       = (*telemetry.RelayObserver)(nil)
	_ imageworker.Observer = (*telemetry.WorkerObserver)(nil)
)

func newTelemetry(t *testing.T, cfg telemetry.Config) *telemetry.Telemetry {
	t.Helper()
	tel, err := telemetry.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return tel
}

// traced returns a Telemetry recording its spans into the exporter
// returned.
func traced(t *testing.T) (*telemetry.Telemetry, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	return newTelemetry(t, telemetry.Config{Tracing: true, Exporter: exp}), exp
}

func router(tel *telemetry.Telemetry) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(tel.HTTP())
	r.GET("/products/:id", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	r.POST("/fail", func(c *gin.Context) { c.Status(http.StatusServiceUnavailable) })
	return r
}

func serve(r http.Handler, method, path string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

const httpFamily = "productd_http_request_duration_seconds"

func TestHTTPCountsByRouteTemplate(t *testing.T) {
	tel := newTelemetry(t, telemetry.Config{})
	r := router(tel)
	for _, path := range []string{"/products/1", "/products/2", "/nowhere/42"} {
		serve(r, http.MethodGet, path, nil)
	}
	serve(r, "BREW", "/products/3", nil)
	serve(r, http.MethodPost, "/fail", nil)

	count := map[string]int{}
	mfs, err := tel.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != httpFamily {
			continue
		}
		for _, m := range mf.GetMetric() {
			var key []string
			for _, l := range m.GetLabel() {
				key = append(key, l.GetName()+"="+l.GetValue())
			}
			count[strings.Join(key, ",")] = int(m.GetHistogram().GetSampleCount())
		}
	}
	for key, n := range map[string]int{
		"method=GET,route=/products/:id,status=200": 2,
		"method=GET,route=unmatched,status=404":     1,
		"method=other,route=unmatched,status=404":   1,
		"method=POST,route=/fail,status=503":        1,
	} {
		if count[key] != n {
			t.Errorf("%s{%s} = %d, want %d (all: %v)", httpFamily, key, count[key], n, count)
		}
	}
	if tel.Tracing() {
		t.Error("tracing is on without being asked for")
	}
}

func TestHTTPSpanContinuesTheCallersTrace(t *testing.T) {
	tel, exp := traced(t)
	r := router(tel)
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	serve(r, http.MethodGet, "/products/7", http.Header{"Traceparent": {parent}})
	serve(r, http.MethodPost, "/fail", nil)

	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	get, fail := spans[0], spans[1]
	if get.Name != "GET /products/:id" || get.SpanKind != trace.SpanKindServer {
		t.Errorf("span %q of kind %v", get.Name, get.SpanKind)
	}
	if got := get.SpanContext.TraceID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace %s does not continue the caller's", got)
	}
	if !get.Parent.IsRemote() || get.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("parent %v, want the caller's span", get.Parent)
	}
	if fail.Status.Code.String() != "Error" {
		t.Errorf("a 503's span has status %v, want Error", fail.Status)
	}
	if fail.Parent.IsValid() {
		t.Errorf("a request without traceparent got parent %v", fail.Parent)
	}
}

func TestAMQPHeadersCarryTheTrace(t *testing.T) {
	tel, _ := traced(t)
	if h := tel.InjectAMQP(context.Background(), nil); h != nil {
		t.Errorf("no span, yet headers %v", h)
	}
	ctx, span := tel.TracerProvider().Tracer("test").Start(context.Background(), "root")
	defer span.End()
	h := tel.InjectAMQP(ctx, amqp.Table{"x-productd-attempt": int64(1)})
	if h["traceparent"] == nil || h["x-productd-attempt"] != int64(1) {
		t.Fatalf("headers %v", h)
	}
	got := trace.SpanContextFromContext(tel.ExtractAMQP(context.Background(), h))
	if got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() || !got.IsRemote() {
		t.Errorf("extracted %v, want the remote %v", got, span.SpanContext())
	}
	if ctx := tel.ExtractAMQP(context.Background(), amqp.Table{}); trace.SpanContextFromContext(ctx).IsValid() {
		t.Error("a message without a trace context started one")
	}
	// The outbox writes the same context as text.
	parent, state := outbox.TraceContext(ctx)
	remote := trace.SpanContextFromContext(tel.ContextWithRemote(context.Background(), parent.(string), ""))
	if remote.TraceID() != span.SpanContext().TraceID() || state != nil {
		t.Errorf("traceparent %v tracestate %v read back as %v", parent, state, remote)
	}
	if ctx := tel.ContextWithRemote(context.Background(), "", ""); trace.SpanContextFromContext(ctx).IsValid() {
		t.Error("an untraced row made a trace")
	}
}

func TestRelayObserver(t *testing.T) {
	tel, exp := traced(t)
	o := tel.Relay()
	ctx, root := tel.TracerProvider().Tracer("test").Start(context.Background(), "POST /products")
	root.End()
	parent, _ := outbox.TraceContext(ctx)
	traced := outbox.Row{ID: 1, EventID: "e1", ProductID: 9, CreatedAt: time.Now(), TraceParent: parent.(string), TraceState: "k=v"}
	msg := amqp.Publishing{Type: "product.created"}
	o.Publishing(traced, &msg)(broker.Result{Outcome: broker.Confirmed})
	if msg.Headers["traceparent"] == nil {
		t.Errorf("the message of a traced row has no traceparent: %v", msg.Headers)
	}
	var plain amqp.Publishing
	o.Publishing(outbox.Row{ID: 2}, &plain)(broker.Result{Outcome: broker.Nacked, Err: broker.ErrNacked})
	o.Publishing(outbox.Row{ID: 3}, &plain)(broker.Result{Outcome: broker.TimedOut, Err: broker.ErrUnconfirmed})
	if plain.Headers != nil {
		t.Errorf("an untraced row's message got headers %v", plain.Headers)
	}
	o.Batch(3, 20*time.Millisecond)

	for outcome, want := range map[string]float64{"confirmed": 1, "nacked": 1, "timed_out": 1, "returned": 0, "unknown": 0} {
		if got := counterValue(t, tel, "productd_relay_publishes_total", "outcome", outcome); got != want {
			t.Errorf("publishes{outcome=%s} = %v, want %v", outcome, got, want)
		}
	}
	if n := testutil.CollectAndCount(tel.Registry(), "productd_relay_commit_to_confirm_seconds", "productd_relay_batch_rows", "productd_relay_batch_duration_seconds"); n != 3 {
		t.Errorf("%d relay histograms, want 3", n)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 || spans[1].Name != "outbox publish" || spans[1].Parent.SpanID() != root.SpanContext().SpanID() {
		t.Fatalf("spans %v, want the root and one publish span under it", spans)
	}
	if spans[1].SpanKind != trace.SpanKindProducer || spans[1].Parent.TraceState().Get("k") != "v" {
		t.Errorf("publish span kind %v, parent state %q", spans[1].SpanKind, spans[1].Parent.TraceState())
	}
}

func TestWorkerObserver(t *testing.T) {
	tel, exp := traced(t)
	o := tel.Worker()
	pctx, publish := tel.TracerProvider().Tracer("test").Start(context.Background(), "outbox publish")
	publish.End()
	d := amqp.Delivery{Type: "product.created", MessageId: "m1", Headers: tel.InjectAMQP(pctx, nil)}

	ctx, done := o.Received(context.Background(), d)
	start := time.Now()
	o.Step(ctx, imageworker.StepFetch, start, time.Millisecond, nil)
	o.Step(ctx, imageworker.StepDecode, start, time.Millisecond, productd.Errorf(productd.EUNSUPPORTED, "not an image"))
	o.Settled(imageworker.OutcomeParked)
	o.Result(productd.ImageStatusFailed, productd.EUNSUPPORTED)
	if got := counterValue(t, tel, "productd_worker_messages_in_flight"); got != 1 {
		t.Errorf("%v messages in flight while one is handled", got)
	}
	done()

	// An untraced message, and a step outside any trace, make no span.
	ctx, done = o.Received(context.Background(), amqp.Delivery{})
	o.Step(ctx, imageworker.StepFetch, start, time.Millisecond, nil)
	done()

	spans := exp.GetSpans()
	if len(spans) != 4 {
		t.Fatalf("%d spans, want publish, process and two steps", len(spans))
	}
	fetch, decode, process := spans[1], spans[2], spans[3]
	if process.Name != "imageworker process product.created" || process.Parent.SpanID() != publish.SpanContext().SpanID() {
		t.Errorf("process span %q under %v", process.Name, process.Parent)
	}
	for _, s := range []tracetest.SpanStub{fetch, decode} {
		if s.Parent.SpanID() != process.SpanContext.SpanID() || !s.StartTime.Equal(start) || s.EndTime.Sub(s.StartTime) != time.Millisecond {
			t.Errorf("step %q: parent %v, %v to %v", s.Name, s.Parent.SpanID(), s.StartTime, s.EndTime)
		}
	}
	if decode.Status.Description != "not an image" {
		t.Errorf("a failed step's status %v", decode.Status)
	}
	expectSamples(t, tel, []sample{
		{"productd_worker_messages_total", []string{"outcome", "parked"}, 1},
		{"productd_worker_image_results_total", []string{"status", "failed", "reason", productd.EUNSUPPORTED}, 1},
		{"productd_worker_messages_in_flight", nil, 0},
	})
}

func TestHandlerServesTheRegistry(t *testing.T) {
	tel := newTelemetry(t, telemetry.Config{})
	w := serve(tel.Handler(), http.MethodGet, "/metrics", nil)
	body := w.Body.String()
	for _, want := range []string{"go_goroutines", "process_cpu_seconds_total", "productd_http_requests_in_flight"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestOTLPExporterIsSetUpLazily(t *testing.T) {
	// Nothing listens there: setting up must not connect, and shutting down
	// with nothing to export must not fail.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	tel := newTelemetry(t, telemetry.Config{Tracing: true})
	if !tel.Tracing() {
		t.Fatal("tracing is off")
	}
}

// counterValue returns the value of the sample of family with labels (name,
// value pairs): a counter's or a gauge's.
func counterValue(t *testing.T, tel *telemetry.Telemetry, family string, labels ...string) float64 {
	t.Helper()
	mfs, err := tel.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue metrics
				}
			}
			if m.Gauge != nil {
				return m.Gauge.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// sample is a value expected of the sample of family with labels.
type sample struct {
	family string
	labels []string
	want   float64
}

func expectSamples(t *testing.T, tel *telemetry.Telemetry, samples []sample) {
	t.Helper()
	for _, c := range samples {
		if got := counterValue(t, tel, c.family, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.family, c.labels, got, c.want)
		}
	}
}

func TestNewRefusesANegativeCacheFor(t *testing.T) {
	t.Parallel()
	_, err := telemetry.New(context.Background(), telemetry.Config{CacheFor: -time.Second})
	if err == nil || !strings.Contains(err.Error(), "Config.CacheFor") {
		t.Fatalf("New with a negative CacheFor: %v, want an error naming Config.CacheFor", err)
	}
}
