package broker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/logging"
)

// stillWaiting bounds each step of the tests below: a step still running
// when it passes is waiting on a broker that will not answer before the
// connection's heartbeat gives up (30 s with the default 10 s heartbeat), or
// RabbitMQ drops a connection whose handshake did not finish (10 s).
const stillWaiting = 5 * time.Second

// ends runs fn and fails t if it has not returned within stillWaiting.
func ends(t *testing.T, what string, fn func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stillWaiting)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("%s still waits on the broker", what)
	}
}

// The broker stops answering (everything it sends is dropped, the
// connection stays open): every call that waits on it ends with its own
// context or within the close timeout.
func TestEveryWaitEndsBehindABrokerThatStopsAnswering(t *testing.T) {
	t.Parallel()
	log, hook := logtest.NewNullLogger()
	proxy := amqptest.NewProxy(t)
	b := amqptest.NewBroker(t, broker.Config{URL: proxy.URL(), CloseTimeout: 100 * time.Millisecond}, log)
	topo := b.Topology()
	pub := b.NewPublisher(300 * time.Millisecond)
	idle := b.NewPublisher(0) // its channel stays open, for Close to close
	for _, p := range []*broker.Publisher{pub, idle} {
		if err := p.Ready(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	consumeCtx, stopConsuming := context.WithCancel(context.Background())
	defer stopConsuming()
	consumed := make(chan error, 1)
	go func() {
		consumed <- b.Consume(consumeCtx, broker.ConsumeOptions{Queue: topo.WorkQueue}, func(context.Context, amqp.Delivery) {})
	}()
	await(t, "the consumer to subscribe", func() bool { return hasLog(hook, "broker: consuming") })

	proxy.Blackhole("hole")

	ends(t, "a publication", func() {
		r := pub.Publish(context.Background(), []broker.Message{message(topo.Exchange, topo.RoutingKeys[0], "lost")})
		if r[0].Outcome != broker.TimedOut {
			t.Errorf("publication behind the black hole: %v %v", r[0].Outcome, r[0].Err)
		}
	})
	// The timed-out batch gave up its channel: Ready opens another, which
	// the broker never confirms. Two callers at once: one opens, one waits
	// for it, and each leaves when its own context ends.
	ends(t, "Ready", func() {
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				defer cancel()
				if err := pub.Ready(ctx); !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Ready behind the black hole: %v", err)
				}
			})
		}
		wg.Wait()
	})
	ends(t, "Channel", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if _, err := b.Channel(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Channel behind the black hole: %v", err)
		}
	})
	ends(t, "Publisher.Close", func() {
		if err := idle.Close(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Publisher.Close behind the black hole: %v", err)
		}
	})
	ends(t, "Consume", func() {
		stopConsuming()
		if err := <-consumed; !errors.Is(err, context.Canceled) {
			t.Errorf("Consume: %v", err)
		}
	})
	ends(t, "Close", func() { _ = b.Close() })
}

// A broker that accepts the connection and never answers the handshake
// holds neither the connection loop nor Close, however long DialTimeout is.
func TestCloseEndsADialThatNeverAnswers(t *testing.T) {
	t.Parallel()
	proxy := amqptest.NewProxy(t)
	proxy.Blackhole("hole")
	b, err := broker.New(broker.Config{URL: proxy.URL(), Topology: broker.Topology{Prefix: amqptest.Prefix(t)}, DialTimeout: time.Hour}, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := b.WaitConnected(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitConnected behind the black hole: %v", err)
	}
	ends(t, "Close", func() { _ = b.Close() })
	if b.State() != broker.StateClosed {
		t.Errorf("state after Close: %s", b.State())
	}
}
