package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/logging"
)

// Two messages with one message id, one routed and one not: each gets its
// own outcome. Pairing a return with its message by message id alone would
// report both returned.
func TestReturnsArePairedWithTheirOwnPublication(t *testing.T) {
	t.Parallel()
	b := amqptest.NewBroker(t, broker.Config{}, logging.Discard())
	topo := b.Topology()
	pub := b.NewPublisher(0)
	defer pub.Close()

	results := pub.Publish(context.Background(), []broker.Message{
		message(topo.Exchange, "product.nowhere", "same-id"),
		message(topo.Exchange, topo.RoutingKeys[0], "same-id"),
		message(topo.Exchange, "product.nowhere", "same-id"),
	})
	want := []broker.Outcome{broker.Returned, broker.Confirmed, broker.Returned}
	for i, r := range results {
		if r.Outcome != want[i] {
			t.Errorf("message %d: %v (%v), want %v", i, r.Outcome, r.Err, want[i])
		}
	}
	var ret *broker.ReturnedError
	if !errors.As(results[0].Err, &ret) || ret.ReplyCode != amqp.NoRoute || ret.RoutingKey != "product.nowhere" {
		t.Errorf("returned error: %v", results[0].Err)
	}
	if got := amqptest.CountIDs(amqptest.Drain(t, topo.WorkQueue)); got["same-id"] != 1 {
		t.Errorf("work queue holds %v", got)
	}
	if s := pub.Stats(); s.Confirmed != 1 || s.Returned != 2 || s.Nacked != 0 || s.TimedOut != 0 || s.Unknown != 0 {
		t.Errorf("publisher stats %+v", s)
	}
}

// The confirm timeout falls while the broker's answers to a large batch of
// unroutable messages are still streaming in: every message is reported
// returned or timed out, none confirmed, whichever side of the deadline its
// return and its ack fell.
func TestAnUnroutableMessageIsNeverReportedConfirmedOnTheTimeoutPath(t *testing.T) {
	t.Parallel()
	proxy := amqptest.NewProxy(t)
	b := amqptest.NewBroker(t, broker.Config{URL: proxy.URL()}, logging.Discard())
	topo := b.Topology()

	const n = 20000
	msgs := make([]broker.Message, n)
	for i := range msgs {
		msgs[i] = message(topo.Exchange, "product.nowhere", fmt.Sprintf("m%d", i))
	}
	// The answers (a return and an ack each, about 250 bytes) trickle back
	// at about 2,000 messages a second, so that the timeout falls among
	// them whatever the machine's load.
	proxy.LimitBandwidth("narrow", 500)
	pub := b.NewPublisher(2 * time.Second)
	defer pub.Close()
	if err := pub.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	counts := map[broker.Outcome]int{}
	for i, r := range pub.Publish(context.Background(), msgs) {
		counts[r.Outcome]++
		if r.Outcome == broker.Confirmed {
			t.Errorf("unroutable message %d reported confirmed", i)
		}
	}
	proxy.RemoveToxic("narrow")
	if counts[broker.Returned] == 0 || counts[broker.TimedOut] == 0 {
		t.Fatalf("the timeout did not fall among the answers: %v", counts)
	}
	if s := pub.Stats(); s.Returned != int64(counts[broker.Returned]) || s.TimedOut != int64(counts[broker.TimedOut]) || s.Confirmed != 0 {
		t.Errorf("publisher stats %+v, outcomes %v", s, counts)
	}
}

// An operator deletes the work queue, then the events exchange, under a
// publisher whose connection stays up. A message the topology should route
// comes back unroutable, and a publication to the missing exchange closes
// the channel: each time the broker declares the topology again, and the
// next publication is confirmed.
func TestPublisherBringsBackTheTopologyItFindsMissing(t *testing.T) {
	t.Parallel()
	log, hook := logtest.NewNullLogger()
	b := amqptest.NewBroker(t, broker.Config{}, log)
	topo := b.Topology()
	pub := b.NewPublisher(0)
	defer pub.Close()
	publish(t, pub, message(topo.Exchange, topo.RoutingKeys[0], "before"))

	for _, c := range []struct {
		missing string
		remove  func()
		want    broker.Outcome
	}{
		{"queue", func() { amqptest.DeleteQueues(t, topo.WorkQueue) }, broker.Returned},
		{"exchange", func() { amqptest.DeleteExchanges(t, topo.Exchange) }, broker.Unknown},
	} {
		repairs := b.Stats().Repairs
		c.remove()
		r := pub.Publish(context.Background(), []broker.Message{message(topo.Exchange, topo.RoutingKeys[0], "lost")})
		if r[0].Outcome != c.want {
			t.Errorf("publication with part of the topology missing: %v %v, want %v", r[0].Outcome, r[0].Err, c.want)
		}
		await(t, "the topology to be declared again", func() bool { return b.Stats().Repairs > repairs })
		publish(t, pub, message(topo.Exchange, topo.RoutingKeys[0], "after-"+c.missing))
	}
	// Deleting the exchange left the queue and what was in it.
	if got := amqptest.CountIDs(amqptest.Drain(t, topo.WorkQueue)); got["after-queue"] != 1 || got["after-exchange"] != 1 || len(got) != 2 {
		t.Errorf("work queue holds %v, want the messages published after each repair", got)
	}
	if !hasLog(hook, "broker: part of the topology is missing; declaring it again") || !hasLog(hook, "broker: topology declared again") {
		t.Error("the repair was not logged")
	}
}

// A queue of the topology re-created by hand with other arguments: the
// broker refuses the declaration, says so, and keeps saying so in its
// stats until a declaration succeeds.
func TestRedeclareReportsATopologyTheBrokerRefuses(t *testing.T) {
	t.Parallel()
	log, hook := logtest.NewNullLogger()
	b := amqptest.NewBroker(t, broker.Config{}, log)
	topo := b.Topology()
	amqptest.DeleteQueues(t, topo.ParkingQueue)
	ch := amqptest.Channel(t)
	if _, err := ch.QueueDeclare(topo.ParkingQueue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	err := b.Redeclare(context.Background())
	if err == nil || !strings.Contains(err.Error(), "PRECONDITION_FAILED") || !strings.Contains(b.Stats().TopologyError, "PRECONDITION_FAILED") {
		t.Fatalf("Redeclare over a conflicting queue: %v; stats %+v", err, b.Stats())
	}
	if !hasLog(hook, "broker: cannot declare the topology again; what is missing stays missing") {
		t.Error("the refusal was not logged")
	}
	amqptest.DeleteQueues(t, topo.ParkingQueue)
	if err := b.Redeclare(context.Background()); err != nil || b.Stats().TopologyError != "" {
		t.Fatalf("Redeclare once the conflict is gone: %v; stats %+v", err, b.Stats())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Redeclare(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Redeclare with an ended context: %v", err)
	}
}
