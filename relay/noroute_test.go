package relay_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/relay"
)

// The work queue is deleted under a relay whose connection stays up: the
// broker returns its messages as unroutable. That is the broker's fault,
// not the rows': the relay pauses, loudly, the rows stay pending with their
// attempts untouched, and once the topology is declared again the next
// drain publishes them.
func TestNoRoutePausesTheRelayWithoutSpendingAttempts(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := brokerFor(t, "", broker.Topology{})
	topo := b.Topology()
	r := newRelay(t, pool, b, relay.Config{MaxAttempts: 1}, testLogger(t))
	ctx := context.Background()

	amqptest.DeleteQueues(t, topo.WorkQueue)
	ids := insert(t, pool, "product.created", "product.deleted")
	if n, err := r.Drain(ctx); n != 0 || !errors.Is(err, relay.ErrNoRoute) {
		t.Fatalf("drain without the work queue: %d, %v", n, err)
	}
	s := r.Stats()
	if s.Pause.Reason != relay.PausedNoRoute || s.Pause.Since.IsZero() || s.Pause.Detail == "" || s.NoRoute != 2 || s.Returned != 0 {
		t.Errorf("stats after the no-route drain: %+v", s)
	}
	if s.LastBatch == nil || s.LastBatch.Outcome != "no route" || s.LastBatch.Rows != 2 || s.Publishes.Returned != 2 {
		t.Errorf("last batch %+v, publishes %+v", s.LastBatch, s.Publishes)
	}
	var attempts int
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum(attempts), 0) FROM outbox`).Scan(&attempts); err != nil || attempts != 0 {
		t.Errorf("no route cost attempts: %d (%v)", attempts, err)
	}
	if c := counts(t, pool); c["pending"] != 2 {
		t.Errorf("outbox %v, want both rows pending", c)
	}

	// Until the topology is declared again (a second from now), drains do
	// not even try.
	if n, err := r.Drain(ctx); n != 0 || !errors.Is(err, relay.ErrNoRoute) || r.Stats().Publishes.Returned != 2 {
		t.Errorf("drain before the topology is back: %d, %v; publishes %+v", n, err, r.Stats().Publishes)
	}

	// The returned messages made the publisher ask for the topology.
	await(t, "the topology to be declared again", func() bool { return b.Stats().Repairs > 0 })
	if n, err := r.Drain(ctx); n != 2 || err != nil {
		t.Fatalf("drain once the topology is back: %d, %v", n, err)
	}
	if s := r.Stats(); s.Pause.Reason != relay.NotPaused || s.Published != 2 || s.LastBatch.Outcome != "published" {
		t.Errorf("stats after the topology came back: %+v", s)
	}
	expectCopies(t, topo.WorkQueue, ids, 1)
}

// An operator deletes the work queue, then the whole topology, while the
// relay and a consumer run on connections that stay up. Every event
// published before and after reaches the consumer, and no row loses an
// attempt.
func TestDeletedTopologyComesBackUnderARunningRelayAndConsumer(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := brokerFor(t, "", broker.Topology{})
	topo := b.Topology()
	r := newRelay(t, pool, b, relay.Config{SweepInterval: 100 * time.Millisecond, MaxAttempts: 1}, testLogger(t))
	run(t, r)

	worker := amqptest.NewBroker(t, broker.Config{Topology: topo, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}, testLogger(t))
	var mu sync.Mutex
	seen := map[string]int{}
	ctx, cancel := context.WithCancel(context.Background())
	consumed := make(chan error, 1)
	go func() {
		consumed <- worker.Consume(ctx, broker.ConsumeOptions{Queue: topo.WorkQueue}, func(_ context.Context, d amqp.Delivery) {
			mu.Lock()
			seen[d.MessageId]++
			mu.Unlock()
			_ = d.Ack(false)
		})
	}()
	defer func() {
		cancel()
		<-consumed
	}()

	srv := newAPI(t, pool)
	total := 0
	postAndConsume := func(round string) {
		t.Helper()
		for i := range 5 {
			if code := post(t, srv, fmt.Sprintf("%s-%d", round, i)); code != http.StatusCreated {
				t.Fatalf("POST: %d", code)
			}
		}
		total += 5
		await(t, "every event of "+round+" consumed", func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, id := range eventIDs(t, pool, "published") {
				if seen[id] == 0 {
					return false
				}
			}
			return counts(t, pool)["published"] == total
		})
	}
	postAndConsume("before")
	amqptest.DeleteQueues(t, topo.WorkQueue)
	postAndConsume("after-queue")
	amqptest.DeleteTopology(t, topo)
	postAndConsume("after-topology")

	var attempts int
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(sum(attempts), 0) FROM outbox`).Scan(&attempts); err != nil || attempts != 0 {
		t.Errorf("the deletions cost attempts: %d (%v)", attempts, err)
	}
	if c := counts(t, pool); c["dead"] != 0 {
		t.Errorf("outbox %v", c)
	}
	t.Logf("relay %+v; worker's broker %+v", r.Stats(), worker.Stats())
}
