package telemetry_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/productd/productd"
	"github.com/productd/productd/broker"
	"github.com/productd/productd/cache"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/outbox"
	"github.com/productd/productd/relay"
	"github.com/productd/productd/telemetry"
)

func enqueue(t *testing.T, ctx context.Context, q interface {
	Begin(context.Context) (pgx.Tx, error)
}) {
	t.Helper()
	ev, err := outbox.NewEvent(productd.EventProductCreated, 1, 1, []string{"http://example.com/a.jpg"})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := q.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.Enqueue(ctx, tx, ev); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestOutboxGaugesAreCached reads the outbox of a real database: the
// figures follow the table, but no more often than CacheFor.
func TestOutboxGaugesAreCached(t *testing.T) {
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	var logs bytes.Buffer
	log := logging.Discard()
	log.SetOutput(&logs)
	tel := newTelemetry(t, telemetry.Config{CacheFor: time.Hour, Log: log})
	tel.Outbox(pool)

	enqueue(t, ctx, pool)
	if got := counterValue(t, tel, "productd_outbox_rows", "status", "pending"); got != 1 {
		t.Fatalf("pending rows %v, want 1", got)
	}
	enqueue(t, ctx, pool)
	// Within CacheFor: the first reading still.
	if got := counterValue(t, tel, "productd_outbox_rows", "status", "pending"); got != 1 {
		t.Errorf("pending rows %v within the cache period, want the cached 1", got)
	}

	fresh := newTelemetry(t, telemetry.Config{CacheFor: time.Nanosecond, Log: log})
	fresh.Outbox(pool)
	for family, want := range map[string]float64{"productd_outbox_due_rows": 2, "productd_outbox_retrying_rows": 0} {
		if got := counterValue(t, fresh, family); got != want {
			t.Errorf("%s = %v, want %v", family, got, want)
		}
	}
	if age := counterValue(t, fresh, "productd_outbox_oldest_pending_age_seconds"); age <= 0 {
		t.Errorf("oldest pending age %v with rows pending", age)
	}

	// A database that went away leaves the families out and says why.
	pool.Close()
	if n := counterValue(t, fresh, "productd_outbox_rows", "status", "pending"); n != 0 {
		t.Errorf("pending rows %v from a closed pool", n)
	}
	// Each gathering read again, and failed again.
	if errs := counterValue(t, fresh, "productd_telemetry_read_errors_total", "source", "outbox"); errs < 1 {
		t.Errorf("%v read errors, want some", errs)
	}
	if !strings.Contains(logs.String(), "cannot read figures for /metrics") {
		t.Errorf("the failed reading was not logged: %s", logs.String())
	}
}

// TestTraceContextIsStoredWithTheRow writes an event inside a span and
// claims it back with the span's context.
func TestTraceContextIsStoredWithTheRow(t *testing.T) {
	pool := dbtest.NewPool(t)
	tel, _ := traced(t)
	ctx, span := tel.TracerProvider().Tracer("test").Start(context.Background(), "POST /products")
	defer span.End()
	enqueue(t, ctx, pool)
	enqueue(t, context.Background(), pool)

	err := db.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		rows, err := outbox.Claim(context.Background(), tx, 10)
		if err != nil {
			return err
		}
		if len(rows) != 2 {
			t.Fatalf("claimed %d rows, want 2", len(rows))
		}
		want := "00-" + span.SpanContext().TraceID().String() + "-" + span.SpanContext().SpanID().String() + "-01"
		if rows[0].TraceParent != want || rows[0].TraceState != "" {
			t.Errorf("traced row: traceparent %q tracestate %q, want %q", rows[0].TraceParent, rows[0].TraceState, want)
		}
		if rows[1].TraceParent != "" {
			t.Errorf("untraced row: traceparent %q", rows[1].TraceParent)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBrokerAndQueueGauges reads a real broker's state and queue depths.
func TestBrokerAndQueueGauges(t *testing.T) {
	b := amqptest.NewBroker(t, broker.Config{}, logging.Discard())
	tel := newTelemetry(t, telemetry.Config{CacheFor: time.Nanosecond})
	tel.Broker("worker", b)
	tel.Queues(b)
	topo := b.Topology()

	res := b.NewPublisher(0).Publish(context.Background(), []broker.Message{{
		Exchange: topo.Exchange, RoutingKey: string(productd.EventProductCreated),
	}})
	if !res[0].Published() {
		t.Fatalf("publish: %v", res[0].Err)
	}
	expectSamples(t, tel, []sample{
		{"productd_broker_connected", []string{"connection", "worker"}, 1},
		{"productd_broker_connects_total", []string{"connection", "worker"}, 1},
		{"productd_broker_connection_losses_total", []string{"connection", "worker"}, 0},
		{"productd_queue_messages", []string{"queue", topo.WorkQueue, "role", "work"}, 1},
		{"productd_queue_messages", []string{"queue", topo.ParkingQueue, "role", "parking"}, 0},
		{"productd_queue_consumers", []string{"queue", topo.WorkQueue}, 0},
	})
	if n := len(topo.Queues()); n < 3 {
		t.Fatalf("topology of %d queues", n)
	}

	// A closed broker is not connected: its depths are left out.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := counterValue(t, tel, "productd_broker_connected", "connection", "worker"); got != 0 {
		t.Errorf("a closed broker is connected: %v", got)
	}
	if got := counterValue(t, tel, "productd_telemetry_read_errors_total", "source", "queues"); got < 1 {
		t.Errorf("%v queue read errors from a closed broker, want some", got)
	}
}

func TestRelayState(t *testing.T) {
	tel := newTelemetry(t, telemetry.Config{})
	tel.RelayState(func() relay.Stats {
		return relay.Stats{Errors: 2, Pause: relay.Pause{Reason: relay.PausedBrokerDown}}
	})
	expectSamples(t, tel, []sample{
		{"productd_relay_paused", []string{"reason", "broker_down"}, 1},
		{"productd_relay_paused", []string{"reason", "maintenance"}, 0},
		{"productd_relay_paused", []string{"reason", "unanswered"}, 0},
		{"productd_relay_paused", []string{"reason", "no_route"}, 0},
		{"productd_relay_drain_errors_total", nil, 2},
	})
}

func TestCacheCounters(t *testing.T) {
	tel := newTelemetry(t, telemetry.Config{})
	tel.Cache(func() cache.Stats {
		return cache.Stats{LocalHits: 5, Hits: 4, Misses: 3, Fallbacks: 2, Invalidations: 6, InvalidationsLost: 1,
			BreakerOpens: 1, Breaker: cache.BreakerOpen, LocalSize: 7}
	})
	expectSamples(t, tel, []sample{
		{"productd_cache_hits_total", []string{"tier", "local"}, 5},
		{"productd_cache_hits_total", []string{"tier", "redis"}, 4},
		{"productd_cache_misses_total", nil, 3},
		{"productd_cache_fallbacks_total", nil, 2},
		{"productd_cache_invalidations_total", nil, 6},
		{"productd_cache_invalidations_lost_total", nil, 1},
		{"productd_cache_breaker_opens_total", nil, 1},
		{"productd_cache_breaker_open", nil, 1},
		{"productd_cache_local_entries", nil, 7},
	})
}
