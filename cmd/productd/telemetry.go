package main

import (
	"context"

	"github.com/gin-gonic/gin"
	"github.com/sirupsen/logrus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/productd/productd/api"
	"github.com/productd/productd/config"
	"github.com/productd/productd/ops/web"
	"github.com/productd/productd/telemetry"
)

// MetricsPath is where every productd process serves its Prometheus
// metrics.
const MetricsPath = "/metrics"

// mountMetrics serves the process's metrics on r at MetricsPath, behind the
// ops console's authorisation: OPS_TOKEN as a Bearer token or basic-auth
// password, or loopback clients only when it is empty.
func mountMetrics(a *app, r gin.IRouter) {
	auth := web.Authorize(web.Config{Token: a.cfg.OpsToken, ClientAddr: api.ClientAddr, Log: a.log})
	r.GET(MetricsPath, auth, gin.WrapH(a.tel.Handler()))
}

// spanExporterKey is the context key of withSpanExporter.
type spanExporterKey struct{}

// withSpanExporter returns ctx asking the run it is given to to record its
// spans into exp, tracing on whatever the environment says: how the tests
// collect the spans of roles run as separate deployments.
func withSpanExporter(ctx context.Context, exp sdktrace.SpanExporter) context.Context {
	return context.WithValue(ctx, spanExporterKey{}, exp)
}

// newTelemetry returns the process's telemetry as cfg (and ctx, see
// withSpanExporter) sets it up.
func newTelemetry(ctx context.Context, cfg *config.Config, log *logrus.Logger) (*telemetry.Telemetry, error) {
	exp, _ := ctx.Value(spanExporterKey{}).(sdktrace.SpanExporter)
	return telemetry.New(ctx, telemetry.Config{
		Tracing: cfg.Tracing || exp != nil, Exporter: exp, ServiceName: cfg.ServiceName, Log: log,
	})
}

// shutdownTelemetry exports the spans still buffered, within the shutdown
// timeout.
func shutdownTelemetry(ctx context.Context, cfg *config.Config, log *logrus.Logger, tel *telemetry.Telemetry) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout/10)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		log.WithError(err).Warn("telemetry: spans may be lost")
	}
}
