// Package amqptest gives tests a RabbitMQ topology of their own on the shared
// local broker, a way to cut the connection to it, and ways to read what
// reached a queue.
//
// Every test that calls NewBroker gets exchange and queue names under a
// unique prefix, deleted when the test ends, so packages can test in
// parallel against one RabbitMQ. NewProxy puts an in-process toxiproxy
// between the code under test and RabbitMQ: Cut makes the broker "go away"
// (every connection is closed and new ones are refused) and Restore brings it
// back, without touching the shared broker itself. NewVhost gives a test a
// vhost of its own, for code whose names cannot take a prefix.
//
// Test processes that die without their clean-ups (killed, or timed out)
// leave their names behind; the next test process to ask for a prefix or a
// vhost removes them (see reapOnce).
package amqptest

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/broker"
)

// DefaultURL is the local RabbitMQ that scripts/services starts.
// TEST_AMQP_URL overrides it.
const DefaultURL = "amqp://guest:guest@127.0.0.1:5672/"

// Timeout bounds every wait of this package: connecting, collecting
// messages. A test that hits it fails.
const Timeout = 30 * time.Second

// reachable tells, once per test process, whether RabbitMQ answers.
var reachable = sync.OnceValue(dial)

func dial() error {
	conn, err := amqp.DialConfig(rawURL(), amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		return err
	}
	return conn.Close()
}

func rawURL() string {
	if u := os.Getenv("TEST_AMQP_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// URL returns the URL of the test RabbitMQ, failing t with the command that
// starts it when it does not answer.
func URL(t testing.TB) string {
	t.Helper()
	if err := reachable(); err != nil {
		t.Fatalf("RabbitMQ at %s does not answer: %v\n(run `scripts/services up`)", rawURL(), err)
	}
	return rawURL()
}

var seq atomic.Int64

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// Prefix returns a name prefix unique to this test run, ending in a dot.
// The first call in a test process removes what dead test processes left
// behind (see reapOnce).
func Prefix(t testing.TB) string {
	t.Helper()
	reapOnce(t)
	name := strings.ToLower(unsafeChars.ReplaceAllString(t.Name(), "-"))
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("test.%s.%d.%d.", name, os.Getpid(), seq.Add(1))
}

// NewBroker starts a broker.Broker for t and waits for its first connection.
// An empty cfg.URL means URL(t). A topology without a prefix or names gets
// Prefix(t); pass another broker's resolved Topology() to share its names.
// When t ends the broker is closed and its exchanges and queues are deleted,
// with every other queue and exchange under its prefix.
func NewBroker(t testing.TB, cfg broker.Config, log *logrus.Logger) *broker.Broker {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = URL(t)
	}
	if cfg.Topology.Prefix == "" && cfg.Topology.Exchange == "" {
		cfg.Topology.Prefix = Prefix(t)
	}
	prefix := cfg.Topology.Prefix
	b, err := broker.New(cfg, log)
	if err != nil {
		t.Fatalf("create broker: %v", err)
	}
	t.Cleanup(func() {
		_ = b.Close()
		DeleteTopology(t, b.Topology())
		DeletePrefixed(t, prefix)
	})
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := b.WaitConnected(ctx); err != nil {
		t.Fatalf("broker never connected to %s: %v", cfg.URL, err)
	}
	return b
}

// DeleteTopology deletes topo's queues and exchanges from the test RabbitMQ.
func DeleteTopology(t testing.TB, topo broker.Topology) {
	t.Helper()
	DeleteQueues(t, topo.Queues()...)
	DeleteExchanges(t, topo.Exchanges()...)
}

// DeleteExchanges deletes exchanges from the test RabbitMQ.
func DeleteExchanges(t testing.TB, exchanges ...string) {
	t.Helper()
	withChannel(t, func(ch *amqp.Channel) error {
		for _, e := range exchanges {
			if err := ch.ExchangeDelete(e, false, false); err != nil {
				return fmt.Errorf("delete exchange %s: %w", e, err)
			}
		}
		return nil
	})
}

// DeleteQueues deletes queues from the test RabbitMQ.
func DeleteQueues(t testing.TB, queues ...string) {
	t.Helper()
	withChannel(t, func(ch *amqp.Channel) error {
		for _, q := range queues {
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				return fmt.Errorf("delete queue %s: %w", q, err)
			}
		}
		return nil
	})
}

// Channel returns a channel on a connection of its own to the test RabbitMQ,
// closed when t ends, for a test's own declarations and reads.
func Channel(t testing.TB) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(URL(t))
	if err != nil {
		t.Fatalf("connect to RabbitMQ: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("open channel: %v", err)
	}
	return ch
}

func withChannel(t testing.TB, fn func(*amqp.Channel) error) {
	t.Helper()
	conn, err := amqp.Dial(URL(t))
	if err != nil {
		t.Errorf("connect to RabbitMQ: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Errorf("open channel: %v", err)
		return
	}
	if err := fn(ch); err != nil {
		t.Errorf("%v", err)
	}
}

// BindRefusingQueue binds to exchange, with key, a queue that is always full
// and refuses publishes, so that the broker nacks every message routed to it.
// It returns the queue's name; the queue is deleted when t ends.
func BindRefusingQueue(t testing.TB, exchange, key string) string {
	t.Helper()
	name := Prefix(t) + "refusing"
	withChannel(t, func(ch *amqp.Channel) error {
		args := amqp.Table{amqp.QueueMaxLenArg: 0, amqp.QueueOverflowArg: amqp.QueueOverflowRejectPublish}
		if _, err := ch.QueueDeclare(name, false, false, false, false, args); err != nil {
			return fmt.Errorf("declare refusing queue: %w", err)
		}
		return ch.QueueBind(name, key, exchange, false, nil)
	})
	t.Cleanup(func() { DeleteQueues(t, name) })
	return name
}

// Drain removes and returns every message in queue now. Call it once the
// messages are known to be there (their publications confirmed).
func Drain(t testing.TB, queue string) []amqp.Delivery {
	t.Helper()
	return Collect(t, queue, Depth(t, queue))
}

// Collect consumes from queue until it has n messages, failing t when they
// do not all arrive within Timeout. It takes exactly n: messages beyond them
// stay in the queue.
func Collect(t testing.TB, queue string, n int) []amqp.Delivery {
	t.Helper()
	ch := Channel(t)
	defer ch.Close()
	if n == 0 {
		return nil
	}
	if err := ch.Qos(1000, 0, false); err != nil {
		t.Fatalf("set prefetch: %v", err)
	}
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", queue, err)
	}
	deadline := time.After(Timeout)
	out := make([]amqp.Delivery, 0, n)
	for len(out) < n {
		select {
		case d, ok := <-deliveries:
			if !ok {
				t.Fatalf("consumer of %s closed after %d of %d messages", queue, len(out), n)
			}
			out = append(out, d)
			// Acknowledge exactly what was taken: closing the channel then
			// returns any further message to the queue.
			if err := d.Ack(false); err != nil {
				t.Fatalf("ack: %v", err)
			}
		case <-deadline:
			t.Fatalf("only %d of %d messages reached %s within %v", len(out), n, queue, Timeout)
		}
	}
	return out
}

// Depth returns the number of ready messages in queue.
func Depth(t testing.TB, queue string) int {
	t.Helper()
	var n int
	withChannel(t, func(ch *amqp.Channel) error {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		n = q.Messages
		return err
	})
	return n
}

// CountIDs counts deliveries by message id.
func CountIDs(ds []amqp.Delivery) map[string]int {
	counts := make(map[string]int, len(ds))
	for _, d := range ds {
		counts[d.MessageId]++
	}
	return counts
}
