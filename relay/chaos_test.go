//go:build chaos

package relay_test

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/relay"
)

// TestChaosRabbitMQStoppedWhileCreatingProducts stops the real, shared
// RabbitMQ application (rabbitmqctl stop_app) for CHAOS_OUTAGE (default 1m)
// while clients keep creating products, then starts it again: every POST
// answers 201, no row dies or loses an attempt, and every event ends in the
// work queue. It stops the broker for every process on the machine: run it
// alone (go test -tags chaos -run Chaos ./relay/), never beside other tests.
func TestChaosRabbitMQStoppedWhileCreatingProducts(t *testing.T) {
	outage := time.Minute
	if v := os.Getenv("CHAOS_OUTAGE"); v != "" {
		var err error
		if outage, err = time.ParseDuration(v); err != nil {
			t.Fatalf("CHAOS_OUTAGE=%q: %v", v, err)
		}
	}
	rabbitmqctl := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("rabbitmqctl", args...).CombinedOutput(); err != nil {
			t.Fatalf("rabbitmqctl %v: %v\n%s", args, err, out)
		}
	}
	pool := newPool(t)
	log := testLogger(t)
	b := amqptest.NewBroker(t, broker.Config{}, log) // production reconnection settings
	r := newRelay(t, pool, b, relay.Config{}, log)
	run(t, r)
	srv := newAPI(t, pool)

	w := startWriters(t, srv, 4, 10*time.Millisecond) // about 400 products a second in all
	defer w.stop()
	await(t, "rows published before the outage", func() bool { return counts(t, pool)["published"] >= 100 })

	t.Cleanup(func() { _ = exec.Command("rabbitmqctl", "start_app").Run() }) // whatever happens
	rabbitmqctl("stop_app")
	t.Logf("RabbitMQ stopped for %v", outage)
	time.Sleep(outage) // the drill's length, not a condition to await
	rabbitmqctl("start_app")
	rabbitmqctl("await_startup")
	t.Log("RabbitMQ started again")

	await(t, "the broker connection to recover", b.Connected)
	total := w.stop()
	deadline := time.Now().Add(2 * time.Minute)
	for counts(t, pool)["published"] != total {
		if time.Now().After(deadline) {
			t.Fatalf("outbox after the outage: %v, want %d published", counts(t, pool), total)
		}
		time.Sleep(50 * time.Millisecond)
	}
	expectNothingLost(t, pool, b.Topology().WorkQueue, total)
	t.Logf("%d products created across a %v outage; relay stats %+v", total, outage, r.Stats())
}
