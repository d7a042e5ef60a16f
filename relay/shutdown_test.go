package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/outbox"
	"github.com/productd/productd/relay"
)

// The broker stops answering (everything it sends is dropped, the
// connection stays open) while a batch waits for its confirmations, and the
// relay is told to stop: Run returns within its stop timeout plus the
// broker's close timeout, not after the confirm timeout or the heartbeat,
// and the batch's rows are pending again with their attempts untouched.
func TestRunStopsInTimeBehindABrokerThatStopsAnswering(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	proxy := amqptest.NewProxy(t)
	const closeTimeout = 200 * time.Millisecond
	b := amqptest.NewBroker(t, broker.Config{URL: proxy.URL(), CloseTimeout: closeTimeout}, testLogger(t))
	const stopTimeout = time.Second
	// Without the stop bound, Run would wait for the confirm timeout (a
	// minute here), or for the heartbeat to find the connection dead (30 s).
	const confirmTimeout = time.Minute
	r := newRelay(t, pool, b, relay.Config{StopTimeout: stopTimeout, ConfirmTimeout: confirmTimeout, SweepInterval: time.Hour}, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	notify := func() {
		t.Helper()
		if _, err := pool.Exec(context.Background(), `SELECT pg_notify($1, '')`, outbox.NotifyChannel); err != nil {
			t.Fatal(err)
		}
	}
	// A first row, published: the relay has its publishing channel.
	insert(t, pool, "product.created")
	notify()
	await(t, "the first row to be published", allPublished(t, pool, 1))

	proxy.Blackhole("hole")
	insert(t, pool, "product.created", "product.created")
	notify()
	// The messages reach the queue; their confirmations never come back.
	await(t, "a batch to wait for the confirmations of its rows", func() bool { return amqptest.Depth(t, b.Topology().WorkQueue) == 3 })

	cancel()
	// Ten seconds of slack for a loaded machine: far more than a stop within
	// its bounds needs, still well short of either unbounded wait.
	bound, stop := context.WithTimeout(context.Background(), stopTimeout+closeTimeout+10*time.Second)
	defer stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-bound.Done():
		t.Fatal("Run still stopping after its stop timeout and the broker's close timeout")
	}
	var attempts int
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(sum(attempts), 0) FROM outbox`).Scan(&attempts); err != nil || attempts != 0 {
		t.Errorf("the stop cost attempts: %d (%v)", attempts, err)
	}
	if c := counts(t, pool); c["pending"] != 2 {
		t.Errorf("outbox after the stop: %v, want both rows pending", c)
	}
}
