package broker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/logging"
)

func TestRetryQueuesSendMessagesBackToTheWorkQueueAfterTheirDelay(t *testing.T) {
	t.Parallel()
	b := amqptest.NewBroker(t, broker.Config{Topology: broker.Topology{RetryDelays: fastRetries}}, logging.Discard())
	topo := b.Topology()
	pub := b.NewPublisher(0)
	defer pub.Close()

	var msgs []broker.Message
	for attempt := 1; attempt <= 2; attempt++ {
		key, ok := topo.RetryRoutingKey(attempt)
		if !ok {
			t.Fatalf("no retry key for attempt %d", attempt)
		}
		msgs = append(msgs, message(topo.RetryExchange, key, fmt.Sprintf("retry%d", attempt)))
	}
	publish(t, pub, msgs...)
	got := amqptest.Collect(t, topo.WorkQueue, 2)
	if counts := amqptest.CountIDs(got); counts["retry1"] != 1 || counts["retry2"] != 1 {
		t.Fatalf("work queue got %v", counts)
	}
	if _, ok := topo.RetryRoutingKey(3); ok {
		t.Error("a third retry with two delays")
	}
}

func TestWorkQueueParksRejectedAndOverDeliveredMessages(t *testing.T) {
	t.Parallel()
	b := amqptest.NewBroker(t, broker.Config{Topology: broker.Topology{DeliveryLimit: 1}}, logging.Discard())
	topo := b.Topology()
	pub := b.NewPublisher(0)
	defer pub.Close()
	publish(t, pub, message(topo.Exchange, topo.RoutingKeys[0], "rejected"), message(topo.Exchange, topo.RoutingKeys[0], "crashy"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	seen := map[string]int{}
	go func() {
		_ = b.Consume(ctx, broker.ConsumeOptions{Queue: topo.WorkQueue, Prefetch: 1}, func(_ context.Context, d amqp.Delivery) {
			mu.Lock()
			seen[d.MessageId]++
			mu.Unlock()
			if d.MessageId == "rejected" {
				_ = d.Reject(false) // a permanent failure: straight to the parking lot
			} else {
				_ = d.Nack(false, true) // a worker that keeps failing on it
			}
		})
	}()
	parked := amqptest.Collect(t, topo.ParkingQueue, 2)
	if counts := amqptest.CountIDs(parked); counts["rejected"] != 1 || counts["crashy"] != 1 {
		t.Fatalf("parking lot got %v", counts)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["rejected"] != 1 || seen["crashy"] != 2 {
		t.Errorf("deliveries: %v; want rejected once, crashy past its limit of 1 redelivery", seen)
	}
}

func TestPublishingToTheDeadLetterExchangeParks(t *testing.T) {
	t.Parallel()
	b := amqptest.NewBroker(t, broker.Config{}, logging.Discard())
	topo := b.Topology()
	pub := b.NewPublisher(0)
	defer pub.Close()
	m := message(topo.DeadLetterExchange, "any", "gave-up")
	m.Publishing.Headers = amqp.Table{"x-productd-reason": "not an image"}
	publish(t, pub, m)
	got := amqptest.Collect(t, topo.ParkingQueue, 1)
	if got[0].MessageId != "gave-up" || got[0].Headers["x-productd-reason"] != "not an image" {
		t.Fatalf("parked %s with headers %v", got[0].MessageId, got[0].Headers)
	}
}

func TestConsumeSubscribesAgainAfterTheConnectionIsCut(t *testing.T) {
	t.Parallel()
	proxy := amqptest.NewProxy(t)
	b := amqptest.NewBroker(t, broker.Config{URL: proxy.URL(), ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond}, logging.Discard())
	topo := b.Topology()
	// The test publishes around the proxy, so it can publish while the
	// consumer's connection is cut.
	direct := amqptest.NewBroker(t, broker.Config{Topology: topo}, logging.Discard())
	pub := direct.NewPublisher(0)
	defer pub.Close()

	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 10)
	done := make(chan error)
	go func() {
		done <- b.Consume(ctx, broker.ConsumeOptions{Queue: topo.WorkQueue, Concurrency: 2}, func(hctx context.Context, d amqp.Delivery) {
			got <- d.MessageId
			_ = d.Ack(false)
		})
	}()
	publish(t, pub, message(topo.Exchange, topo.RoutingKeys[0], "first"))
	expect(t, got, "first")

	changed := b.Changed()
	proxy.Cut()
	<-changed
	publish(t, pub, message(topo.Exchange, topo.RoutingKeys[0], "while-cut"))
	proxy.Restore()
	expect(t, got, "while-cut")

	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Consume returned %v, want context.Canceled", err)
	}
	if err := b.Consume(context.Background(), broker.ConsumeOptions{}, nil); err == nil {
		t.Error("Consume without a queue succeeded")
	}
}

func TestConsumeWaitsForAMissingQueueAndStopsWithTheBroker(t *testing.T) {
	t.Parallel()
	b := amqptest.NewBroker(t, broker.Config{}, logging.Discard())
	done := make(chan error)
	go func() {
		done <- b.Consume(context.Background(), broker.ConsumeOptions{Queue: b.Topology().WorkQueue + ".missing"}, func(context.Context, amqp.Delivery) {})
	}()
	select {
	case err := <-done:
		t.Fatalf("Consume gave up on a missing queue: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	_ = b.Close()
	if err := <-done; err != broker.ErrClosed {
		t.Errorf("Consume after Close returned %v", err)
	}
}

// expect waits for id to be consumed. Earlier messages may come again
// before it: an ack in flight when the connection is cut is lost, and the
// broker redelivers.
func expect(t *testing.T, got <-chan string, id string) {
	t.Helper()
	deadline := time.After(amqptest.Timeout)
	for {
		select {
		case g := <-got:
			if g == id {
				return
			}
		case <-deadline:
			t.Fatalf("%q never consumed", id)
		}
	}
}

// An operator deletes the work queue under a running consumer, on a
// connection that stays up: the consumer declares the topology again and
// subscribes again, and takes what is published to the new queue.
func TestConsumeComesBackAfterItsQueueIsDeleted(t *testing.T) {
	t.Parallel()
	log, hook := logtest.NewNullLogger()
	b := amqptest.NewBroker(t, broker.Config{ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond}, log)
	topo := b.Topology()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 10)
	go func() {
		_ = b.Consume(ctx, broker.ConsumeOptions{Queue: topo.WorkQueue}, func(_ context.Context, d amqp.Delivery) {
			got <- d.MessageId
			_ = d.Ack(false)
		})
	}()
	// The test publishes on a channel of its own, which declares nothing:
	// only the consumer can bring the queue back.
	ch := amqptest.Channel(t)
	send := func(id string) {
		t.Helper()
		if err := ch.PublishWithContext(ctx, topo.Exchange, topo.RoutingKeys[0], false, false, amqp.Publishing{MessageId: id}); err != nil {
			t.Fatal(err)
		}
	}
	await(t, "the consumer to subscribe", func() bool { return hasLog(hook, "broker: consuming") })
	send("before")
	expect(t, got, "before")

	declarations := b.Stats().Declarations
	amqptest.DeleteQueues(t, topo.WorkQueue)
	await(t, "the topology to be declared again", func() bool { return b.Stats().Declarations > declarations })
	send("after")
	expect(t, got, "after")
	if s := b.Stats(); s.Repairs < 1 || s.TopologyError != "" || s.State != broker.StateConnected {
		t.Errorf("stats %+v", s)
	}
}
