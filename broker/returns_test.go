package broker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

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
	proxy.AddToxic(`{"name":"narrow","type":"bandwidth","stream":"downstream","attributes":{"rate":500}}`)
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
