package telemetry

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// httpMetrics are the HTTP server's families.
type httpMetrics struct {
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics(register func(...prometheus.Collector)) *httpMetrics {
	m := &httpMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "productd_http_request_duration_seconds",
			Help: "Time from a request's arrival to its response, by route (Gin's template; \"unmatched\" for none), method and status. Its _count counts the requests.",
			// From a cached read (well under a millisecond) to an upload of
			// several images.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method", "status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "productd_http_requests_in_flight",
			Help: "Requests being served now.",
		}),
	}
	register(m.duration, m.inFlight)
	return m
}

// routeUnmatched is the route label of a request no route matched.
const routeUnmatched = "unmatched"

// HTTP returns the Gin middleware that counts and times every request and,
// with tracing on, serves it in a server span that continues the caller's
// W3C trace context (traceparent header) and is in the request's context
// for the handlers, the outbox row and the log lines. Mount it first, so
// that it sees the whole request.
func (t *Telemetry) HTTP() gin.HandlerFunc {
	if !t.Tracing() {
		return t.http.observe
	}
	return func(c *gin.Context) {
		ctx := t.propagator.Extract(c.Request.Context(), propagation.HeaderCarrier(c.Request.Header))
		ctx, span := t.tracer.Start(ctx, c.Request.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(method(c.Request.Method)), semconv.URLPath(c.Request.URL.Path)))
		c.Request = c.Request.WithContext(ctx)
		defer func() {
			route := c.FullPath()
			if route == "" {
				route = routeUnmatched
			}
			status := c.Writer.Status()
			span.SetName(method(c.Request.Method) + " " + route)
			span.SetAttributes(semconv.HTTPRoute(route), semconv.HTTPResponseStatusCode(status))
			if status >= http.StatusInternalServerError {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			span.End()
		}()
		t.http.observe(c)
	}
}

// observe serves the request, then records it.
func (m *httpMetrics) observe(c *gin.Context) {
	start := time.Now()
	m.inFlight.Inc()
	defer m.inFlight.Dec()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = routeUnmatched
	}
	m.duration.WithLabelValues(route, method(c.Request.Method), statusLabel(c.Writer.Status())).
		Observe(time.Since(start).Seconds())
}

// method bounds the method label: a client may send any token as a method.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// statusLabel formats the common statuses without allocating.
func statusLabel(s int) string {
	switch s {
	case http.StatusOK:
		return "200"
	case http.StatusCreated:
		return "201"
	case http.StatusNoContent:
		return "204"
	case http.StatusNotFound:
		return "404"
	}
	return strconv.Itoa(s)
}
