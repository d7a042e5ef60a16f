package main

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/outbox"
)

// The broker stops answering mid-run (everything it sends is dropped, the
// connection stays open): the relay role, with a batch waiting for its
// confirmations, and the worker role, subscribed, still stop within
// SHUTDOWN_TIMEOUT of the signal.
func TestRolesStopWithinTheShutdownTimeoutBehindABrokerThatStopsAnswering(t *testing.T) {
	const shutdownTimeout = 4 * time.Second
	for _, role := range []string{"relay", "worker"} {
		t.Run(role, func(t *testing.T) {
			newDeployment(t)
			proxy := amqptest.NewProxyFor(t, os.Getenv("AMQP_URL"))
			t.Setenv("AMQP_URL", proxy.URL())
			t.Setenv("SHUTDOWN_TIMEOUT", shutdownTimeout.String())
			pool, err := db.Open(context.Background(), os.Getenv("DATABASE_URL"))
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			logs := &syncBuffer{}
			exited := make(chan int, 1)
			go func() { exited <- run(ctx, []string{role}, io.Discard, logs) }()
			want := map[string]string{"relay": `"msg":"relay: started"`, "worker": `"msg":"broker: consuming"`}[role]
			await(t, logs, "the role to start", func() (bool, string) { return logs.contains(want), "not yet" })

			if role == "relay" {
				// The drain on start opens the publishing channel.
				await(t, logs, "the sweep on start", func() (bool, string) {
					var n int
					err := pool.QueryRow(context.Background(),
						`SELECT count(*) FROM river_job WHERE kind = 'outbox_sweep' AND state = 'completed'`).Scan(&n)
					return err == nil && n > 0, "not completed"
				})
			}
			proxy.Blackhole("hole")
			if role == "relay" {
				_, err := pool.Exec(context.Background(), `
					INSERT INTO outbox (event_id, event_type, product_id, payload)
					VALUES (gen_random_uuid(), 'product.created', 1, '{}')`)
				if err == nil {
					_, err = pool.Exec(context.Background(), `SELECT pg_notify($1, '')`, outbox.NotifyChannel)
				}
				if err != nil {
					t.Fatal(err)
				}
				await(t, logs, "a batch to wait for its confirmation", func() (bool, string) {
					var free int
					err := pool.QueryRow(context.Background(),
						`SELECT count(*) FROM (SELECT id FROM outbox FOR UPDATE SKIP LOCKED) AS unlocked`).Scan(&free)
					return err == nil && free == 0, "the row is not claimed"
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
