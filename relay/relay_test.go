package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd"
	"github.com/productd/productd/broker"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/outbox"
	"github.com/productd/productd/relay"
)

func TestNewRefusesBadSettings(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := brokerFor(t, "", broker.Topology{})
	for _, tc := range []struct {
		cfg  relay.Config
		want string
	}{
		{relay.Config{BatchSize: -1}, "Config.BatchSize"},
		{relay.Config{MaxAttempts: -1}, "Config.MaxAttempts"},
		{relay.Config{RetryBase: -time.Second}, "Config.RetryBase"},
		{relay.Config{PublishedRetention: -1}, "Config.PublishedRetention"},
	} {
		if _, err := relay.New(pool, b, tc.cfg, logging.Discard()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}

// A commit is published through the LISTEN wake-up, not the periodic sweep:
// the sweep here runs once at start and then not for an hour.
func TestCommittedRowsReachTheQueueOnceEachWithTheEventIDAsMessageID(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := brokerFor(t, "", broker.Topology{})
	r := newRelay(t, pool, b, relay.Config{SweepInterval: time.Hour}, testLogger(t))
	run(t, r)
	awaitStartSweep(t, pool)

	srv := newAPI(t, pool)
	const n = 20
	for i := range n {
		if code := post(t, srv, fmt.Sprintf("p%d", i)); code != http.StatusCreated {
			t.Fatalf("POST %d: status %d", i, code)
		}
	}
	await(t, "every row published", allPublished(t, pool, n))

	got := amqptest.Drain(t, b.Topology().WorkQueue)
	seen := amqptest.CountIDs(got)
	for _, id := range eventIDs(t, pool, "published") {
		if seen[id] != 1 {
			t.Errorf("event %s reached the queue %d times", id, seen[id])
		}
	}
	if len(got) != n {
		t.Errorf("queue holds %d messages, want %d", len(got), n)
	}
	for _, d := range got {
		var ev productd.Event
		if err := json.Unmarshal(d.Body, &ev); err != nil || ev.ID != d.MessageId || string(ev.Type) != d.RoutingKey {
			t.Errorf("message %s: body %s (%v), key %s", d.MessageId, d.Body, err, d.RoutingKey)
		}
		if d.ContentType != "application/json" || d.Type != "product.created" || d.DeliveryMode != amqp.Persistent || d.Timestamp.IsZero() {
			t.Errorf("message %s: content type %q, type %q, mode %d, timestamp %v", d.MessageId, d.ContentType, d.Type, d.DeliveryMode, d.Timestamp)
		}
	}
	if s := r.Stats(); s.Published != n || s.Dead != 0 || s.Batches < 1 || s.Broker.State != broker.StateConnected {
		t.Errorf("stats = %+v", s)
	}
}

// The broker goes away while clients keep creating products: every POST
// still answers 201, no row loses an attempt or dies, and once the broker is
// back every event is in the queue.
func TestBrokerOutageUnderContinuousPOSTsLosesNothing(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	proxy := amqptest.NewProxy(t)
	b := brokerFor(t, proxy.URL(), broker.Topology{})
	r := newRelay(t, pool, b, relay.Config{SweepInterval: 200 * time.Millisecond, BatchSize: 50}, testLogger(t))
	run(t, r)
	srv := newAPI(t, pool)

	w := startWriters(t, srv, 4, 0)
	defer w.stop()
	await(t, "rows published before the outage", func() bool { return counts(t, pool)["published"] >= 50 })

	proxy.Cut()
	await(t, "the broker connection to drop", func() bool { return !b.Connected() })
	// Rows pile up while the broker is away.
	await(t, "a backlog during the outage", func() bool { return counts(t, pool)["pending"] >= 300 })
	if _, err := r.Drain(context.Background()); !errors.Is(err, relay.ErrBrokerUnavailable) {
		t.Errorf("Drain with the broker away: %v", err)
	}
	proxy.Restore()
	await(t, "the backlog to drain", func() bool { return counts(t, pool)["pending"] < 50 })
	total := w.stop()
	await(t, "every row published", allPublished(t, pool, total))
	expectNothingLost(t, pool, b.Topology().WorkQueue, total)
	t.Logf("%d products created and published across the outage", total)
}

// Returned and nacked publications cost their rows an attempt each, with a
// wait that doubles, and kill them at the limit; requeueing brings them back.
func TestFailedPublicationsBackOffThenDieAndRequeueRevivesThem(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := brokerFor(t, "", broker.Topology{})
	topo := b.Topology()
	full := amqptest.BindRefusingQueue(t, topo.Exchange, "product.full")

	const base = 200 * time.Millisecond
	r := newRelay(t, pool, b, relay.Config{MaxAttempts: 3, RetryBase: base, RetryMax: time.Minute}, testLogger(t))
	ids := insert(t, pool, "product.unroutable", "product.full", "product.created")
	ctx := context.Background()

	for attempt := 1; attempt <= 3; attempt++ {
		await(t, "the failed rows to be due", func() bool {
			var due int
			err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE status = 'pending' AND next_attempt_at <= now()`).Scan(&due)
			return err == nil && due >= 2
		})
		var before, after time.Time
		if err := pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&before); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Drain(ctx); err != nil {
			t.Fatalf("attempt %d: drain: %v", attempt, err)
		}
		if err := pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&after); err != nil {
			t.Fatal(err)
		}
		// The wait of the n-th failure lies in [base·2^(n-1)/2, base·2^(n-1)].
		hi := base << (attempt - 1)
		lo := hi / 2
		for i, wantErr := range []string{"returned: ", "nacked: "} {
			var status, lastError string
			var attempts int
			var next time.Time
			err := pool.QueryRow(ctx, `SELECT status, attempts, last_error, next_attempt_at FROM outbox WHERE event_id = $1`, ids[i]).
				Scan(&status, &attempts, &lastError, &next)
			if err != nil {
				t.Fatal(err)
			}
			if attempts != attempt || !strings.HasPrefix(lastError, wantErr) {
				t.Errorf("attempt %d, row %d: %d attempts, last error %q", attempt, i, attempts, lastError)
			}
			if attempt < 3 {
				if status != "pending" || next.Sub(after) > hi || next.Sub(before) < lo {
					t.Errorf("attempt %d, row %d: %s, next attempt in [%v, %v], want within [%v, %v]",
						attempt, i, status, next.Sub(after), next.Sub(before), lo, hi)
				}
			} else if status != "dead" {
				t.Errorf("row %d after the last attempt: %s", i, status)
			}
		}
	}
	if c := counts(t, pool); c["dead"] != 2 || c["published"] != 1 {
		t.Fatalf("outbox: %v", c)
	}
	if s := r.Stats(); s.Returned != 3 || s.Nacked != 3 || s.Dead != 2 || s.Published != 1 {
		t.Errorf("stats = %+v", s)
	}

	// The operator fixes the routing and requeues the dead rows.
	ch := amqptest.Channel(t)
	if err := ch.QueueUnbind(full, "product.full", topo.Exchange, nil); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"product.unroutable", "product.full"} {
		if err := ch.QueueBind(topo.WorkQueue, key, topo.Exchange, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	dead, err := outbox.ListDead(ctx, pool, outbox.DeadFilter{}, 0, 10)
	if err != nil || len(dead) != 2 {
		t.Fatalf("dead rows: %v, %v", dead, err)
	}
	if err := outbox.Requeue(ctx, pool, dead[0].ID); err != nil {
		t.Fatal(err)
	}
	if n, err := outbox.RequeueDead(ctx, pool, outbox.DeadFilter{}); err != nil || n != 1 {
		t.Fatalf("requeue all: %d, %v", n, err)
	}
	if n, err := r.Drain(ctx); err != nil || n != 2 {
		t.Fatalf("drain after requeue: %d, %v", n, err)
	}
	expectCopies(t, topo.WorkQueue, ids, 1)
}

// Two relays on one table, each with its own broker connection and River
// client, share the rows: all are published, each exactly once.
func TestTwoRelaysShareTheTable(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b1 := brokerFor(t, "", broker.Topology{})
	b2 := brokerFor(t, "", b1.Topology())
	const preloaded = 3000
	backlog(t, pool, preloaded, nil)
	cfg := relay.Config{BatchSize: 100, SweepInterval: 200 * time.Millisecond}
	r1 := newRelay(t, pool, b1, cfg, testLogger(t))
	r2 := newRelay(t, pool, b2, cfg, logging.Discard())
	run(t, r1)
	run(t, r2)

	srv := newAPI(t, pool)
	const posted = 200
	for i := range posted {
		if code := post(t, srv, fmt.Sprintf("p%d", i)); code != http.StatusCreated {
			t.Fatalf("POST: %d", code)
		}
	}
	total := preloaded + posted
	await(t, "every row published", allPublished(t, pool, total))

	expectCopies(t, b1.Topology().WorkQueue, eventIDs(t, pool, "published"), 1)
	s1, s2 := r1.Stats(), r2.Stats()
	if s1.Published+s2.Published != int64(total) {
		t.Errorf("relays published %d + %d, want %d in all", s1.Published, s2.Published, total)
	}
	t.Logf("relay 1 published %d rows in %d batches, relay 2 %d in %d", s1.Published, s1.Batches, s2.Published, s2.Batches)
}

// The one duplicate the design allows: a relay killed after the broker
// confirmed a batch and before it committed the marks. The rows are claimed
// again and published a second time.
func TestCrashBetweenConfirmAndMarkPublishesAgain(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := brokerFor(t, "", broker.Topology{})
	r := newRelay(t, pool, b, relay.Config{}, testLogger(t))
	ids := insert(t, pool, "product.created", "product.created", "product.deleted")
	crash := errors.New("killed after the confirms")
	relay.SetAfterPublish(r, func(context.Context, int) error { return crash })

	ctx := context.Background()
	if _, err := r.Drain(ctx); !errors.Is(err, crash) {
		t.Fatalf("drain: %v", err)
	}
	var attempts int
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum(attempts), 0) FROM outbox`).Scan(&attempts); err != nil || attempts != 0 {
		t.Errorf("the crash cost attempts: %d (%v)", attempts, err)
	}
	if c := counts(t, pool); c["pending"] != 3 {
		t.Fatalf("after the crash: %v", c)
	}
	relay.SetAfterPublish(r, nil)
	if n, err := r.Drain(ctx); err != nil || n != 3 {
		t.Fatalf("drain after the crash: %d, %v", n, err)
	}
	expectCopies(t, b.Topology().WorkQueue, ids, 2)
}

// The connection drops while a batch waits for its confirmations: none of
// its rows is marked published or loses an attempt, though the messages did
// reach the queue; the next drain publishes them again.
func TestConnectionDroppedMidBatchLeavesUnconfirmedRowsPending(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	proxy := amqptest.NewProxy(t)
	b := brokerFor(t, proxy.URL(), broker.Topology{})
	topo := b.Topology()
	r := newRelay(t, pool, b, relay.Config{BatchSize: 100, Concurrency: 1}, testLogger(t))
	if _, err := r.Drain(context.Background()); err != nil { // opens the publishing channel
		t.Fatal(err)
	}
	const n = 50
	backlog(t, pool, n, nil)
	// From now on nothing comes back from the broker: no confirmation.
	proxy.Blackhole("mute")

	done := make(chan error, 1)
	go func() { _, err := r.Drain(context.Background()); done <- err }()
	await(t, "the batch to reach the queue", func() bool { return amqptest.Depth(t, topo.WorkQueue) == n })
	proxy.Cut()
	if err := <-done; !errors.Is(err, relay.ErrBrokerUnavailable) {
		t.Fatalf("drain: %v", err)
	}
	c := counts(t, pool)
	s := r.Stats()
	if c["pending"]+c["published"] != n || int64(c["published"]) != s.Published || int64(c["pending"]) != s.Unknown || c["pending"] == 0 {
		t.Errorf("outbox %v, stats %+v: want every unconfirmed row pending", c, s)
	}
	var attempts int
	if err := pool.QueryRow(context.Background(), `SELECT sum(attempts) FROM outbox`).Scan(&attempts); err != nil || attempts != 0 {
		t.Errorf("the drop cost attempts: %d (%v)", attempts, err)
	}

	proxy.RemoveToxic("mute")
	proxy.Restore()
	if err := b.WaitConnected(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := counts(t, pool); c["published"] != n {
		t.Fatalf("after the broker returned: %v", c)
	}
	seen := amqptest.CountIDs(amqptest.Drain(t, topo.WorkQueue))
	for _, id := range eventIDs(t, pool, "published") {
		if seen[id] < 1 {
			t.Errorf("event %s missing from the queue", id)
		}
	}
}

func TestRetentionDeletesOnlyOldPublishedRows(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := brokerFor(t, "", broker.Topology{})
	ctx := context.Background()
	ids := insert(t, pool, "a", "b", "c", "d", "e", "f")
	set := func(sql string, ids ...string) {
		t.Helper()
		if _, err := pool.Exec(ctx, `UPDATE outbox SET `+sql+` WHERE event_id = ANY($1::uuid[])`, ids); err != nil {
			t.Fatal(err)
		}
	}
	set(`status = 'published', published_at = now() - interval '2 hours'`, ids[0], ids[1], ids[2])
	set(`status = 'published', published_at = now() - interval '10 minutes'`, ids[3])
	set(`status = 'dead', created_at = now() - interval '2 days'`, ids[4])
	set(`created_at = now() - interval '2 days', next_attempt_at = now() + interval '1 hour'`, ids[5])

	r := newRelay(t, pool, b, relay.Config{RetentionBatch: 2}, testLogger(t))
	got, err := r.Retain(ctx)
	if err != nil || got != 3 {
		t.Fatalf("retained %d, %v", got, err)
	}
	var left []string
	rows, err := pool.Query(ctx, `SELECT event_id::text FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		left = append(left, id)
	}
	if strings.Join(left, ",") != strings.Join(ids[3:], ",") {
		t.Errorf("rows left %v, want %v", left, ids[3:])
	}
}

// RegisterChores registers both chores, which run on start: the retention
// chore removes an old published row without anyone calling Retain.
func TestRunSchedulesTheRetentionJob(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := brokerFor(t, "", broker.Topology{})
	insert(t, pool, "product.created")
	if _, err := pool.Exec(context.Background(), `UPDATE outbox SET status = 'published', published_at = now() - interval '2 hours'`); err != nil {
		t.Fatal(err)
	}
	r := newRelay(t, pool, b, relay.Config{RetentionInterval: time.Hour}, testLogger(t))
	run(t, r)
	await(t, "the retention job to delete the old row", func() bool { return len(counts(t, pool)) == 0 })
	var kinds string
	err := pool.QueryRow(context.Background(), `SELECT string_agg(DISTINCT kind, ',' ORDER BY kind) FROM river_job`).Scan(&kinds)
	if err != nil || kinds != "outbox_retention,outbox_sweep" {
		t.Errorf("river jobs %q (%v)", kinds, err)
	}
}

// Rows that no wake-up announces, written while rows keep coming, are
// published by the poll that follows a drain which found rows, without
// waiting for the sweep.
func TestRelayPollsWhileRowsArrive(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := brokerFor(t, "", broker.Topology{})
	r := newRelay(t, pool, b, relay.Config{SweepInterval: time.Hour, PollInterval: 20 * time.Millisecond}, testLogger(t))
	run(t, r)
	awaitStartSweep(t, pool)
	insert(t, pool, "product.created")
	r.Wake()
	await(t, "the first row to be published", allPublished(t, pool, 1))
	insert(t, pool, "product.created", "product.created")
	await(t, "the rows nobody announced to be published", allPublished(t, pool, 3))
}
