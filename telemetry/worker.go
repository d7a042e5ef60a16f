package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/productd/productd"
)

// WorkerObserver is the imageworker.Observer that counts deliveries by how
// they were settled and products' image results by reason, times every step,
// and, for a message that carries a trace context, handles it in a consumer
// span of that trace with a child span per step.
type WorkerObserver struct {
	t        *Telemetry
	settled  *prometheus.CounterVec
	results  *prometheus.CounterVec
	steps    *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// Worker registers the image worker's families and returns the observer to
// give imageworker.Config.
func (t *Telemetry) Worker() *WorkerObserver {
	o := &WorkerObserver{
		t: t,
		settled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "productd_worker_messages_total",
			Help: "Messages the image worker settled, by outcome: acked (done, or nothing left to do), retried (sent to a delayed retry queue), parked (the parking lot), requeued (back to the work queue: shutdown, or the broker did not confirm a republication), renewed (a fresh copy, its redeliveries not being runs).",
		}, []string{"outcome"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "productd_worker_image_results_total",
			Help: "Image statuses the worker wrote on products: done, or failed with the reason's error code (unsupported_media_type, too_large, unprocessable, unavailable, internal, ...).",
		}, []string{"status", "reason"}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "productd_worker_step_duration_seconds",
			Help:    "Time of one step of the image worker: fetch, decode, resize, encode and upload per image, update per product (the write-back), by step and result (ok or error).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"step", "result"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "productd_worker_messages_in_flight",
			Help: "Messages the image worker is handling now.",
		}),
	}
	t.register(o.settled, o.results, o.steps, o.inFlight)
	return o
}

// Received implements imageworker.Observer.
func (o *WorkerObserver) Received(ctx context.Context, d amqp.Delivery) (context.Context, func()) {
	o.inFlight.Inc()
	if !o.t.Tracing() {
		return ctx, o.inFlight.Dec
	}
	if _, traced := d.Headers[headerTraceParent]; !traced {
		return ctx, o.inFlight.Dec
	}
	ctx, span := o.t.tracer.Start(o.t.ExtractAMQP(ctx, d.Headers), "imageworker process "+d.Type,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			semconv.MessagingSystemRabbitMQ,
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingMessageID(d.MessageId),
			attribute.Bool("productd.redelivered", d.Redelivered),
		))
	return ctx, func() {
		o.inFlight.Dec()
		span.End()
	}
}

// Step implements imageworker.Observer.
func (o *WorkerObserver) Step(ctx context.Context, step string, start time.Time, took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	o.steps.WithLabelValues(step, result).Observe(took.Seconds())
	if !trace.SpanContextFromContext(ctx).IsValid() || !o.t.Tracing() {
		return
	}
	_, span := o.t.tracer.Start(ctx, step, trace.WithTimestamp(start))
	if err != nil {
		// The message meant for people: the error itself may name
		// addresses.
		span.SetStatus(codes.Error, productd.ErrorMessage(err))
	}
	span.End(trace.WithTimestamp(start.Add(took)))
}

// Settled implements imageworker.Observer.
func (o *WorkerObserver) Settled(outcome string) { o.settled.WithLabelValues(outcome).Inc() }

// Result implements imageworker.Observer.
func (o *WorkerObserver) Result(status productd.ImageStatus, code string) {
	o.results.WithLabelValues(string(status), code).Inc()
}
