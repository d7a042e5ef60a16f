package relay_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/chores"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/relay"
)

// The LISTEN connection dies (a Postgres restart, a failover): the relay
// listens again, and a later commit is still published at once, without
// waiting for the hourly sweep.
func TestListenerReconnectsAfterItsConnectionDies(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := brokerFor(t, "", broker.Topology{})
	r := newRelay(t, pool, b, relay.Config{SweepInterval: time.Hour}, testLogger(t))
	run(t, r)
	ctx := context.Background()
	listeners := func() int {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN "productd_outbox"%'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	await(t, "the relay to listen", func() bool { return listeners() == 1 })
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN "productd_outbox"%'`); err != nil {
		t.Fatal(err)
	}
	await(t, "the relay to listen again", func() bool { return listeners() == 1 })
	// The sweep that runs on start may still be running: wait it out, so
	// that only a notification can publish what follows.
	awaitStartSweep(t, pool)
	if code := post(t, newAPI(t, pool), "after"); code != http.StatusCreated {
		t.Fatalf("POST: %d", code)
	}
	await(t, "the row to be published", allPublished(t, pool, 1))
}

// A drain that fails (the database, say) is retried with backoff until it
// succeeds; the failure is counted.
func TestAFailedDrainIsRetried(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := brokerFor(t, "", broker.Topology{})
	r := newRelay(t, pool, b, relay.Config{SweepInterval: time.Hour}, testLogger(t))
	var failures atomic.Int32
	relay.SetAfterPublish(r, func(context.Context, int) error {
		if failures.Add(1) <= 3 {
			return errors.New("database went away")
		}
		return nil
	})
	insert(t, pool, "product.created", "product.created")
	run(t, r)
	await(t, "the rows to be published", allPublished(t, pool, 2))
	// The counters move just after the commit that the test sees.
	await(t, "the stats to count the failure and the rows", func() bool {
		s := r.Stats()
		return s.Errors >= 1 && s.Published == 2
	})
}

// With the database gone, Drain and Retain fail saying what they were doing,
// and a Drain whose context has ended starts nothing.
func TestDrainAndRetainReportDatabaseFailures(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := brokerFor(t, "", broker.Topology{})
	r := newRelay(t, pool, b, relay.Config{}, logging.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := r.Drain(ctx); n != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("Drain with an ended context: %d, %v", n, err)
	}
	pool.Close()
	if _, err := r.Drain(context.Background()); err == nil || !strings.Contains(err.Error(), "begin relay transaction") {
		t.Errorf("Drain on a closed pool: %v", err)
	}
	if _, err := r.Retain(context.Background()); err == nil || !strings.Contains(err.Error(), "delete published outbox rows") {
		t.Errorf("Retain on a closed pool: %v", err)
	}
}

// Postgres goes away under a running relay and comes back: the relay, its
// LISTEN connection and its River client recover, and rows committed
// afterwards are published.
func TestRelayResumesAfterPostgresComesBack(t *testing.T) {
	t.Parallel()
	url := dbtest.New(t)
	proxy := amqptest.NewProxyFor(t, url)
	ctx := context.Background()
	pool, err := db.Open(ctx, proxy.URL()+"&pool_max_conns=16")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	direct, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)

	b := brokerFor(t, "", broker.Topology{})
	r := newRelay(t, pool, b, relay.Config{SweepInterval: 200 * time.Millisecond}, testLogger(t))
	run(t, r)
	insert(t, direct, "product.created")
	await(t, "the first row to be published", allPublished(t, direct, 1))

	proxy.Cut()
	await(t, "the relay to lose Postgres", func() bool { return pool.Ping(ctx) != nil })
	insert(t, direct, "product.created", "product.created")
	proxy.Restore()
	await(t, "the rows committed during the outage to be published", allPublished(t, direct, 3))
}

// A sweep that runs out of time on a backlog has not failed: River records
// it completed, and the rows are published all the same.
func TestASweepOutOfTimeIsNotAFailure(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	b := brokerFor(t, "", broker.Topology{})
	backlog(t, pool, 2000, nil)
	r := newRelay(t, pool, b, relay.Config{BatchSize: 50, SweepInterval: 100 * time.Millisecond}, testLogger(t))
	runWith(t, r, chores.Config{JobTimeout: time.Millisecond})
	await(t, "every row published", allPublished(t, pool, 2000))
	jobs := func(state string) int {
		var n int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'outbox_sweep' AND state = $1`, state).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	await(t, "a sweep to complete", func() bool { return jobs("completed") >= 1 })
	if n := jobs("discarded"); n != 0 {
		t.Errorf("%d sweeps discarded as failed", n)
	}
}
