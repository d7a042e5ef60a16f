package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/productd/productd"
)

// TestMetricsAfterTraffic drives `productd all` through every role, then
// reads /metrics and expects each family to count exactly what the test
// did.
func TestMetricsAfterTraffic(t *testing.T) {
	t.Parallel()
	const token = "metrics-t0ken"
	d := newDeployment(t)
	d.setenv("OPS_TOKEN", token)
	images := serveImage(t, readFixture(t, "photo.jpg"))
	logs := d.start(t, "all")
	d.awaitReady(t, logs)

	const products, reads = 2, 3
	var ids []int64
	for i := range products {
		p := d.create(t, jsonRequest(t, http.MethodPost, d.url("/products"), map[string]any{
			"user_id": 9, "product_name": fmt.Sprint("metric ", i), "product_price": 1.5,
			"product_images": []string{images + "/photo.jpg"},
		}))
		ids = append(ids, p.ID)
	}
	for _, id := range ids {
		d.awaitImages(t, logs, id)
	}
	for range reads {
		d.get(t, ids[0])
	}
	expectStatus(t, d.do(t, mustRequest(t, http.MethodGet, d.url("/no/such/route"), nil)), http.StatusNotFound)

	// The ops token guards the metrics as it guards the console.
	expectStatus(t, d.do(t, mustRequest(t, http.MethodGet, d.url(MetricsPath), nil)), http.StatusUnauthorized)
	m := d.scrape(t, token)

	// awaitImages read each product through the API until it was done: those
	// reads went through the cache too, so the cache is checked as a sum.
	getsByID := m.value(t, "productd_http_request_duration_seconds", "route", "/products/:id", "method", "GET", "status", "200")
	want := []struct {
		family string
		labels []string
		value  float64
	}{
		{"productd_http_request_duration_seconds", []string{"route", "/products", "method", "POST", "status", "201"}, products},
		{"productd_http_request_duration_seconds", []string{"route", "unmatched", "method", "GET", "status", "404"}, 1},
		{"productd_http_request_duration_seconds", []string{"route", MetricsPath, "method", "GET", "status", "401"}, 1},
		{"productd_relay_publishes_total", []string{"outcome", "confirmed"}, products},
		{"productd_relay_publishes_total", []string{"outcome", "returned"}, 0},
		{"productd_relay_publishes_total", []string{"outcome", "nacked"}, 0},
		{"productd_relay_publishes_total", []string{"outcome", "timed_out"}, 0},
		{"productd_relay_commit_to_confirm_seconds", nil, products},
		{"productd_relay_batch_rows", nil, -1}, // batches: one or two
		{"productd_relay_paused", nil, 0},
		{"productd_outbox_rows", []string{"status", "pending"}, 0},
		{"productd_outbox_rows", []string{"status", "dead"}, 0},
		{"productd_outbox_due_rows", nil, 0},
		{"productd_outbox_retrying_rows", nil, 0},
		{"productd_outbox_oldest_pending_age_seconds", nil, 0},
		{"productd_broker_connected", []string{"connection", "relay"}, 1},
		{"productd_broker_connected", []string{"connection", "worker"}, 1},
		{"productd_broker_connects_total", []string{"connection", "worker"}, 1},
		{"productd_broker_connection_losses_total", []string{"connection", "relay"}, 0},
		{"productd_worker_messages_total", []string{"outcome", "acked"}, products},
		{"productd_worker_image_results_total", []string{"status", "done", "reason", ""}, products},
		{"productd_worker_messages_in_flight", nil, 0},
		{"productd_queue_messages", []string{"role", "work"}, 0},
		{"productd_queue_messages", []string{"role", "parking"}, 0},
		{"productd_queue_consumers", []string{"role", "work"}, 1},
		{"productd_cache_breaker_open", nil, 0},
		{"productd_cache_fallbacks_total", nil, 0},
	}
	for _, step := range []string{"fetch", "decode", "resize", "encode", "upload"} {
		want = append(want, struct {
			family string
			labels []string
			value  float64
		}{"productd_worker_step_duration_seconds", []string{"step", step, "result", "ok"}, products})
	}
	want = append(want, struct {
		family string
		labels []string
		value  float64
	}{"productd_worker_step_duration_seconds", []string{"step", "update", "result", "ok"}, products})
	for _, w := range want {
		got := m.value(t, w.family, w.labels...)
		if w.value >= 0 && got != w.value {
			t.Errorf("%s%v = %v, want %v", w.family, w.labels, got, w.value)
		}
	}
	if rows := m.sum(t, "productd_relay_batch_rows"); rows != products {
		t.Errorf("relay batches hold %v rows in all, want %d", rows, products)
	}
	if n := m.value(t, "productd_relay_batch_rows"); n < 1 || n > products {
		t.Errorf("%v relay batches for %d rows", n, products)
	}
	if published := m.value(t, "productd_outbox_rows", "status", "published"); published < products {
		t.Errorf("outbox published rows %v, want at least %d", published, products)
	}
	// Every read by id went through the cache: the test's reads and the
	// worker's, one per event, before it starts on the images.
	cached := m.value(t, "productd_cache_hits_total", "tier", "local") + m.value(t, "productd_cache_hits_total", "tier", "redis") +
		m.value(t, "productd_cache_misses_total")
	if want := getsByID + products; cached != want || getsByID < reads {
		t.Errorf("cache hits and misses add up to %v reads, want %v (%v GETs by id, at least %d, and %d by the worker)",
			cached, want, getsByID, reads, products)
	}
	if inv := m.value(t, "productd_cache_invalidations_total"); inv < products {
		t.Errorf("%v cache invalidations, want at least one per write-back (%d)", inv, products)
	}
	for _, family := range []string{"go_goroutines", "process_cpu_seconds_total", "productd_http_requests_in_flight"} {
		m.value(t, family)
	}
	if m.value(t, "productd_telemetry_read_errors_total") != 0 {
		t.Errorf("reading figures for /metrics failed:\n%s", logs)
	}
	for _, f := range m.families {
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if strings.Contains(l.GetValue(), "127.0.0.1") || strings.Contains(l.GetValue(), "photo") {
					t.Errorf("%s has a label from a request: %s=%q", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
}

// TestMetricsOfRolesApart runs the api, relay and worker roles as
// processes of their own, each on its own HTTP address, and expects each
// one's /metrics to count what went through that role, and only the
// families of its roles.
func TestMetricsOfRolesApart(t *testing.T) {
	t.Parallel()
	const token = "apart-t0ken"
	d := newDeployment(t)
	d.setenv("OPS_TOKEN", token)
	images := serveImage(t, readFixture(t, "photo-444.jpg"))
	logs, addrs := d.startApart(t)
	d.awaitReady(t, logs["api"])
	const products = 2
	for i := range products {
		p := d.create(t, jsonRequest(t, http.MethodPost, d.url("/products"), map[string]any{
			"user_id": 11, "product_name": fmt.Sprint("apart ", i), "product_price": 3,
			"product_images": []string{images + "/photo.jpg"},
		}))
		d.awaitImages(t, logs["worker"], p.ID)
	}

	api := d.scrapeAt(t, addrs["api"], token)
	relay := d.scrapeAt(t, addrs["relay"], token)
	worker := d.scrapeAt(t, addrs["worker"], token)
	for _, c := range []struct {
		role   string
		m      scrape
		family string
		labels []string
		want   float64
	}{
		{"api", api, "productd_http_request_duration_seconds", []string{"route", "/products", "method", "POST", "status", "201"}, products},
		{"relay", relay, "productd_relay_publishes_total", []string{"outcome", "confirmed"}, products},
		{"relay", relay, "productd_relay_commit_to_confirm_seconds", nil, products},
		{"relay", relay, "productd_relay_paused", nil, 0},
		{"relay", relay, "productd_outbox_rows", []string{"status", "pending"}, 0},
		{"relay", relay, "productd_broker_connected", []string{"connection", "relay"}, 1},
		{"worker", worker, "productd_worker_messages_total", []string{"outcome", "acked"}, products},
		{"worker", worker, "productd_worker_image_results_total", []string{"status", "done"}, products},
		{"worker", worker, "productd_worker_step_duration_seconds", []string{"step", "update"}, products},
		{"worker", worker, "productd_queue_consumers", []string{"role", "work"}, 1},
		{"worker", worker, "productd_broker_connected", []string{"connection", "worker"}, 1},
	} {
		if got := c.m.value(t, c.family, c.labels...); got != c.want {
			t.Errorf("%s: %s%v = %v, want %v", c.role, c.family, c.labels, got, c.want)
		}
	}
	// Each process serves the families of its own roles, and the Go
	// runtime's and the cache's, which every role has.
	for role, m := range map[string]scrape{"api": api, "relay": relay, "worker": worker} {
		for _, family := range []string{"go_goroutines", "process_resident_memory_bytes", "productd_cache_breaker_open"} {
			m.value(t, family)
		}
		for family, owner := range map[string]string{
			"productd_relay_publishes_total": "relay", "productd_outbox_rows": "relay",
			"productd_worker_messages_total": "worker", "productd_queue_messages": "worker",
		} {
			if _, has := m.families[family]; has != (role == owner) {
				t.Errorf("the %s process serves %s: %t", role, family, has)
			}
		}
	}
}

// TestTraceJoinsRoles runs the api, relay and worker roles as separate
// deployments, each with a tracer provider of its own recording into one
// in-memory exporter, creates a product with an image, and expects one trace
// to join the HTTP request, the relay's publication and the worker's steps:
// the context can only have travelled in the outbox row and the message.
func TestTraceJoinsRoles(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	exp := tracetest.NewInMemoryExporter()
	d.exporter = exp
	images := serveImage(t, readFixture(t, "photo-444.jpg"))
	roles, _ := d.startApart(t)
	d.awaitReady(t, roles["api"])
	p := d.create(t, jsonRequest(t, http.MethodPost, d.url("/products"), map[string]any{
		"user_id": 10, "product_name": "traced", "product_price": 2,
		"product_images": []string{images + "/photo.jpg"},
	}))
	d.awaitImages(t, roles["worker"], p.ID)

	var spans tracetest.SpanStubs
	byName := func(name string) []tracetest.SpanStub {
		var out []tracetest.SpanStub
		for _, s := range spans {
			if s.Name == name {
				out = append(out, s)
			}
		}
		return out
	}
	wantWorker := "imageworker process " + string(productd.EventProductCreated)
	await(t, roles["worker"], "the worker's span to end", func() (bool, string) {
		spans = exp.GetSpans()
		return len(byName(wantWorker)) == 1, fmt.Sprintf("%d spans", len(spans))
	})

	post := byName("POST /products")
	publish := byName("outbox publish")
	process := byName(wantWorker)
	if len(post) != 1 || len(publish) != 1 || len(process) != 1 {
		t.Fatalf("spans: %d POST /products, %d outbox publish, %d worker; all: %v", len(post), len(publish), len(process), names(spans))
	}
	traceID := post[0].SpanContext.TraceID()
	for _, s := range []tracetest.SpanStub{publish[0], process[0]} {
		if s.SpanContext.TraceID() != traceID {
			t.Errorf("span %q is in trace %s, want the request's %s", s.Name, s.SpanContext.TraceID(), traceID)
		}
	}
	expectParent(t, publish[0], post[0])
	expectParent(t, process[0], publish[0])
	if publish[0].SpanKind != trace.SpanKindProducer || process[0].SpanKind != trace.SpanKindConsumer || post[0].SpanKind != trace.SpanKindServer {
		t.Errorf("span kinds: request %v, publish %v, worker %v", post[0].SpanKind, publish[0].SpanKind, process[0].SpanKind)
	}
	for _, step := range []string{"fetch", "decode", "resize", "encode", "upload", "update"} {
		got := byName(step)
		if len(got) != 1 {
			t.Errorf("%d %q spans, want 1", len(got), step)
			continue
		}
		expectParent(t, got[0], process[0])
	}
	// Each process has its own provider: the three resources are the three
	// roles' own, yet the trace is one.
	if post[0].Resource == publish[0].Resource || publish[0].Resource == process[0].Resource {
		t.Errorf("the roles share a tracer provider; the test proves nothing about propagation")
	}
	// The worker's log lines of the message carry the trace id.
	if !roles["worker"].contains(`"trace_id":"` + traceID.String() + `"`) {
		t.Errorf("no worker log line carries trace_id %s:\n%s", traceID, roles["worker"])
	}
	if !roles["api"].contains(`"trace_id":"` + traceID.String() + `"`) {
		t.Errorf("the request's access log line does not carry trace_id %s:\n%s", traceID, roles["api"])
	}
}

func expectParent(t *testing.T, child, parent tracetest.SpanStub) {
	t.Helper()
	if child.Parent.SpanID() != parent.SpanContext.SpanID() || child.Parent.TraceID() != parent.SpanContext.TraceID() {
		t.Errorf("span %q has parent %s/%s, want %q (%s/%s)", child.Name, child.Parent.TraceID(), child.Parent.SpanID(),
			parent.Name, parent.SpanContext.TraceID(), parent.SpanContext.SpanID())
	}
}

func names(spans tracetest.SpanStubs) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	slices.Sort(out)
	return out
}

// scrape is one reading of /metrics.
type scrape struct {
	families map[string]*dto.MetricFamily
}

// scrape reads the deployment's /metrics with the ops token.
func (d *deployment) scrape(t testing.TB, token string) scrape {
	t.Helper()
	return d.scrapeAt(t, d.addr, token)
}

// scrapeAt reads /metrics of the process listening on addr.
func (d *deployment) scrapeAt(t testing.TB, addr, token string) scrape {
	t.Helper()
	req := mustRequest(t, http.MethodGet, "http://"+addr+MetricsPath, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp := d.do(t, req)
	expectStatus(t, resp, http.StatusOK)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return scrape{families: families}
}

// find returns the samples of family whose labels include labels (name,
// value pairs), failing t when the family is missing.
func (s scrape) find(t testing.TB, family string, labels ...string) []*dto.Metric {
	t.Helper()
	f, ok := s.families[family]
	if !ok {
		t.Fatalf("/metrics has no %s", family)
	}
	var out []*dto.Metric
	for _, m := range f.GetMetric() {
		if hasLabels(m, labels) {
			out = append(out, m)
		}
	}
	return out
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found && labels[i+1] != "" {
			return false
		}
		if !found {
			// An empty value matches a label that is absent, as in the
			// exposition format.
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] {
					return false
				}
			}
		}
	}
	return true
}

// value returns the value of the samples of family with labels added up: a
// counter's or gauge's value, a histogram's count. No such sample is 0.
func (s scrape) value(t testing.TB, family string, labels ...string) float64 {
	t.Helper()
	var v float64
	for _, m := range s.find(t, family, labels...) {
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		case m.Histogram != nil:
			v += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			v += m.Untyped.GetValue()
		}
	}
	return v
}

// sum returns the sum of the histogram family's samples with labels.
func (s scrape) sum(t testing.TB, family string, labels ...string) float64 {
	t.Helper()
	var v float64
	for _, m := range s.find(t, family, labels...) {
		v += m.GetHistogram().GetSampleSum()
	}
	return v
}
