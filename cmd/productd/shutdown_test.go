package main

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/outbox"
)

// queueDepth returns the number of ready messages in queue at url.
func queueDepth(url, queue string) (int, error) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	return q.Messages, err
}

// The broker stops answering mid-run (everything it sends is dropped, the
// connection stays open): the relay role, with a batch waiting for its
// confirmations, and the worker role, subscribed, still stop within
// SHUTDOWN_TIMEOUT of the signal.
func TestRolesStopWithinTheShutdownTimeoutBehindABrokerThatStopsAnswering(t *testing.T) {
	t.Parallel()
	// The relay's batches get six tenths of it and the closes a tenth each,
	// which leaves seconds of slack for a loaded machine; a stop without
	// those bounds waits for the confirm timeout (15 s) or the heartbeat
	// (30 s).
	const shutdownTimeout = 10 * time.Second
	for _, role := range []string{"relay", "worker"} {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			d := newDeployment(t)
			vhost := d.getenv("AMQP_URL")
			proxy := amqptest.NewProxyFor(t, vhost)
			d.setenv("AMQP_URL", proxy.URL())
			d.setenv("SHUTDOWN_TIMEOUT", shutdownTimeout.String())
			pool, err := db.Open(context.Background(), d.getenv("DATABASE_URL"))
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			logs := &syncBuffer{}
			exited := make(chan int, 1)
			go func() { exited <- d.run(ctx, []string{role}, io.Discard, logs) }()
			want := map[string]string{"relay": `"msg":"relay: started"`, "worker": `"msg":"broker: consuming"`}[role]
			await(t, logs, "the role to start", func() (bool, string) { return logs.contains(want), "not yet" })

			// A row committed and notified; the relay publishes it.
			addRow := func() {
				t.Helper()
				_, err := pool.Exec(context.Background(), `
					INSERT INTO outbox (event_id, event_type, product_id, payload)
					VALUES (gen_random_uuid(), 'product.created', 1, '{}')`)
				if err == nil {
					_, err = pool.Exec(context.Background(), `SELECT pg_notify($1, '')`, outbox.NotifyChannel)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if role == "relay" {
				// A first row, published: the relay has its publishing
				// channel.
				addRow()
				await(t, logs, "the first row to be published", func() (bool, string) {
					var n int
					err := pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE status = 'published'`).Scan(&n)
					return err == nil && n == 1, fmt.Sprintf("%d published (%v)", n, err)
				})
			}
			proxy.Blackhole("hole")
			if role == "relay" {
				addRow()
				// The message reaches the queue; its confirmation never
				// comes back.
				await(t, logs, "a batch to wait for its confirmation", func() (bool, string) {
					n, err := queueDepth(vhost, broker.DefaultWorkQueue)
					return err == nil && n == 2, fmt.Sprintf("%d messages (%v)", n, err)
				})
			}

			cancel()
			bound, stop := context.WithTimeout(context.Background(), shutdownTimeout)
			defer stop()
			select {
			case code := <-exited:
				if code != 0 {
					t.Errorf("productd %s exited %d:\n%s", role, code, logs)
				}
			case <-bound.Done():
				t.Fatalf("productd %s still stopping SHUTDOWN_TIMEOUT after the signal:\n%s", role, logs)
			}
		})
	}
}
