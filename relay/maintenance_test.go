package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/chores"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/relay"
)

// The maintenance switch holds every row in the outbox, across a restart of
// the relay, and a resume publishes them all; the status rows say what each
// relay process is doing and why.
func TestPauseHoldsRowsAcrossARestartUntilResume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	b := brokerFor(t, "", broker.Topology{})
	cfg := relay.Config{SweepInterval: 50 * time.Millisecond, StatusInterval: 20 * time.Millisecond}

	first := newRelay(t, pool, b, cfg, testLogger(t))
	stopFirst := runWith(t, first, chores.Config{})
	awaitState(t, pool, relay.StateRunning, 1)

	c, err := relay.SetPaused(ctx, pool, true, "alice", "rabbit upgrade")
	if err != nil || !c.Paused || c.ChangedBy != "alice" || c.Reason != "rabbit upgrade" {
		t.Fatalf("SetPaused = %+v, %v", c, err)
	}
	// Rows committed once the pause is, are held at once: no batch that
	// starts after the pause publishes, whether or not the relay's own
	// reading of the switch has caught up.
	ids := insert(t, pool, "product.created", "product.created", "product.deleted")
	awaitHeldBatch(t, first)
	expectHeld(t, pool, b, len(ids))
	awaitState(t, pool, relay.StatePaused, 1)

	// A relay started while paused publishes nothing either, not even on
	// the drain it runs at start.
	stopFirst()
	second := newRelay(t, pool, b, cfg, testLogger(t))
	run(t, second)
	awaitHeldBatch(t, second)
	expectHeld(t, pool, b, len(ids))
	statuses, err := relay.ReadStatuses(ctx, pool, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var paused, stopped int
	for _, s := range statuses {
		switch s.State {
		case relay.StatePaused:
			paused++
			if s.Reason == "" || s.BrokerState != string(broker.StateConnected) || s.BrokerSince == nil {
				t.Errorf("paused status %+v: want a reason and the broker's state", s)
			}
		case relay.StateStopped:
			stopped++
		}
	}
	if paused != 1 || stopped != 1 {
		t.Errorf("statuses %+v: want one paused relay and one stopped", statuses)
	}

	if _, err := relay.SetPaused(ctx, pool, false, "bob", "upgrade done"); err != nil {
		t.Fatal(err)
	}
	await(t, "every held row published after the resume", allPublished(t, pool, len(ids)))
	var running relay.Status
	await(t, "the running relay to report its batch", func() bool {
		statuses, err := relay.ReadStatuses(ctx, pool, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range statuses {
			if s.State == relay.StateRunning && s.LastBatch != nil {
				running = s
				return true
			}
		}
		return false
	})
	if b := running.LastBatch; b.Rows != len(ids) || b.Published != len(ids) || b.Outcome != "published" || running.Published != int64(len(ids)) {
		t.Errorf("running status %+v, last batch %+v: want the %d rows published in one batch", running, b, len(ids))
	}
	control, err := relay.ReadControl(ctx, pool)
	if err != nil || control.Paused || control.ChangedBy != "bob" {
		t.Errorf("control = %+v, %v", control, err)
	}
	expectCopies(t, b.Topology().WorkQueue, ids, 1)
}

// awaitState waits until n relay processes report state.
func awaitState(t testing.TB, pool *pgxpool.Pool, state string, n int) {
	t.Helper()
	await(t, "relays reporting "+state, func() bool {
		statuses, err := relay.ReadStatuses(context.Background(), pool, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, s := range statuses {
			if s.State == state {
				got++
			}
		}
		return got == n
	})
}

// awaitHeldBatch waits for r to hold back a batch that starts now or later:
// any batch starting after a committed pause sees it.
func awaitHeldBatch(t testing.TB, r *relay.Relay) {
	t.Helper()
	from := relay.HeldBatches(r)
	await(t, "a batch held back by the pause", func() bool { return relay.HeldBatches(r) > from })
}

// expectHeld checks that n rows are pending, untouched, and that nothing
// reached the work queue.
func expectHeld(t testing.TB, pool *pgxpool.Pool, b *broker.Broker, n int) {
	t.Helper()
	if got := counts(t, pool); got["pending"] != n || got["published"] != 0 {
		t.Fatalf("while paused the outbox holds %v, want %d pending", got, n)
	}
	if depth := amqptest.Depth(t, b.Topology().WorkQueue); depth != 0 {
		t.Fatalf("while paused %d messages reached the work queue", depth)
	}
}
