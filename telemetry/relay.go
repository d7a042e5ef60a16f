package telemetry

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/outbox"
	"github.com/productd/productd/relay"
)

// RelayObserver is the relay.Observer that counts publications by outcome,
// times them from the row's commit to the broker's confirmation, and, for a
// row written in a traced request, publishes the message in a producer span
// of that trace whose context travels in the message's headers.
type RelayObserver struct {
	t        *Telemetry
	outcomes *prometheus.CounterVec
	latency  prometheus.Histogram
	rows     prometheus.Histogram
	duration prometheus.Histogram
	// byOutcome holds the outcome counters by broker.Outcome.
	byOutcome [broker.TimedOut + 1]prometheus.Counter
}

var _ relay.Observer = (*RelayObserver)(nil)

// Relay registers the relay's families and returns the observer to give
// relay.Config.
func (t *Telemetry) Relay() *RelayObserver {
	o := &RelayObserver{
		t: t,
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "productd_relay_publishes_total",
			Help: "Outbox rows published, by the broker's answer: confirmed, returned (unroutable), nacked, timed_out (no answer in time) or unknown (the connection went away first).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "productd_relay_commit_to_confirm_seconds",
			Help:    "Time from an outbox row's write (its transaction's start, on the database's clock) to the broker's confirmation of its message.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		rows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "productd_relay_batch_rows",
			Help:    "Rows claimed by one relay batch.",
			Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000},
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "productd_relay_batch_duration_seconds",
			Help:    "Time of one relay batch, from its claim to its commit.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 15, 30},
		}),
	}
	for _, out := range []broker.Outcome{broker.Unknown, broker.Confirmed, broker.Returned, broker.Nacked, broker.TimedOut} {
		o.byOutcome[out] = o.outcomes.WithLabelValues(outcomeLabel(out))
	}
	t.register(o.outcomes, o.latency, o.rows, o.duration)
	return o
}

// outcomeLabel is an outcome as a label value.
func outcomeLabel(o broker.Outcome) string {
	if o == broker.TimedOut {
		return "timed_out"
	}
	return o.String()
}

// Publishing implements relay.Observer.
func (o *RelayObserver) Publishing(row outbox.Row, msg *amqp.Publishing) func(broker.Result) {
	var span trace.Span
	if row.TraceParent != "" && o.t.Tracing() {
		ctx := o.t.ContextWithRemote(context.Background(), row.TraceParent, row.TraceState)
		ctx, span = o.t.tracer.Start(ctx, "outbox publish", trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				semconv.MessagingSystemRabbitMQ,
				semconv.MessagingOperationTypeSend,
				semconv.MessagingDestinationName(msg.Type),
				semconv.MessagingMessageID(row.EventID),
				attribute.Int64("productd.outbox.row_id", row.ID),
				attribute.Int64("productd.product_id", row.ProductID),
				attribute.Int("productd.outbox.attempts", row.Attempts),
			))
		msg.Headers = o.t.InjectAMQP(ctx, msg.Headers)
	}
	return func(res broker.Result) {
		if int(res.Outcome) < len(o.byOutcome) {
			o.byOutcome[res.Outcome].Inc()
		}
		if res.Outcome == broker.Confirmed {
			o.latency.Observe(time.Since(row.CreatedAt).Seconds())
		}
		if span != nil {
			span.SetAttributes(attribute.String("productd.publish.outcome", outcomeLabel(res.Outcome)))
			if res.Err != nil {
				span.SetStatus(codes.Error, res.Err.Error())
			}
			span.End()
		}
	}
}

// Batch implements relay.Observer.
func (o *RelayObserver) Batch(rows int, took time.Duration) {
	o.rows.Observe(float64(rows))
	o.duration.Observe(took.Seconds())
}

// Outbox registers the outbox's gauges, read from pool at most once per
// Config.CacheFor however often Prometheus scrapes: the rows by status
// (exact up to outbox.CountCap, the planner's estimate above) and the age
// of the oldest pending row.
func (t *Telemetry) Outbox(pool *pgxpool.Pool) {
	t.register(newOutboxCollector(pool, t.cached))
}

// outboxCollector reads the outbox's figures through a cache.
type outboxCollector struct {
	snap          *cached[outbox.Stats]
	rows, oldest  *prometheus.Desc
	due, retrying *prometheus.Desc
}

func newOutboxCollector(pool *pgxpool.Pool, opts cacheOpts) *outboxCollector {
	return &outboxCollector{
		snap: newCached(opts, "outbox", func(ctx context.Context) (outbox.Stats, error) { return outbox.ReadStats(ctx, pool) }),
		rows: prometheus.NewDesc("productd_outbox_rows",
			"Outbox rows by status (pending, dead, published): exact up to 10000, the planner's estimate above; published rows are always an estimate, and only those retention has not deleted yet.",
			[]string{"status"}, nil),
		due: prometheus.NewDesc("productd_outbox_due_rows",
			"Pending outbox rows whose next attempt time has come (exact up to 10000).", nil, nil),
		retrying: prometheus.NewDesc("productd_outbox_retrying_rows",
			"Pending outbox rows that failed at least once (exact up to 10000).", nil, nil),
		oldest: prometheus.NewDesc("productd_outbox_oldest_pending_age_seconds",
			"How long the oldest pending outbox row has waited; 0 when none is pending.", nil, nil),
	}
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rows, c.due, c.retrying, c.oldest} {
		ch <- d
	}
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	s, ok := c.snap.get()
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.rows, prometheus.GaugeValue, float64(s.Pending.N), string(outbox.StatusPending))
	ch <- prometheus.MustNewConstMetric(c.rows, prometheus.GaugeValue, float64(s.Dead.N), string(outbox.StatusDead))
	ch <- prometheus.MustNewConstMetric(c.rows, prometheus.GaugeValue, float64(s.Published.N), string(outbox.StatusPublished))
	ch <- prometheus.MustNewConstMetric(c.due, prometheus.GaugeValue, float64(s.Due.N))
	ch <- prometheus.MustNewConstMetric(c.retrying, prometheus.GaugeValue, float64(s.Retrying.N))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, s.OldestPendingAge.Seconds())
}

// RelayState registers the families read from a running relay's Stats:
// whether and why it is paused, and its drains that failed. Reading them
// costs nothing.
func (t *Telemetry) RelayState(stats func() relay.Stats) {
	t.register(&relayStateCollector{
		stats: stats,
		paused: prometheus.NewDesc("productd_relay_paused",
			"1 while this relay publishes nothing for the reason given (maintenance: the ops console's switch; broker_down; unanswered: the broker stopped confirming; no_route: the topology lost a queue or binding), else 0. Rows wait in the outbox meanwhile.",
			[]string{"reason"}, nil),
		errors: prometheus.NewDesc("productd_relay_drain_errors_total",
			"Drains of the outbox that stopped on an error other than the broker's absence.", nil, nil),
	})
}

type relayStateCollector struct {
	stats          func() relay.Stats
	paused, errors *prometheus.Desc
}

func (c *relayStateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.paused
	ch <- c.errors
}

func (c *relayStateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	// Every reason is always exposed, so that a query sees 0 rather than
	// nothing.
	for _, reason := range []relay.PauseReason{
		relay.PausedMaintenance, relay.PausedBrokerDown, relay.PausedUnanswered, relay.PausedNoRoute,
	} {
		ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, boolValue(s.Pause.Reason == reason), string(reason))
	}
	ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(s.Errors))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
