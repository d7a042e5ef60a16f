package broker_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/logging"
)

func TestOutcomesAndErrorsReadWell(t *testing.T) {
	t.Parallel()
	for o, want := range map[broker.Outcome]string{
		broker.Confirmed: "confirmed", broker.Returned: "returned", broker.Nacked: "nacked", broker.Unknown: "unknown", broker.TimedOut: "timed out",
	} {
		if o.String() != want {
			t.Errorf("%d.String() = %q, want %q", o, o.String(), want)
		}
	}
	err := &broker.ReturnedError{Exchange: "x", RoutingKey: "k", ReplyCode: 312, ReplyText: "NO_ROUTE"}
	if want := `message returned as unroutable by exchange "x" with key "k": 312 NO_ROUTE`; err.Error() != want {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestPublisherCloseIsSafeAtAnyTime(t *testing.T) {
	t.Parallel()
	b := amqptest.NewBroker(t, broker.Config{}, logging.Discard())
	pub := b.NewPublisher(0)
	if err := pub.Close(); err != nil {
		t.Errorf("close before use: %v", err)
	}
	if err := pub.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := pub.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	// A closed publisher opens a new channel when used again.
	publish(t, pub, message(b.Topology().Exchange, b.Topology().RoutingKeys[0], "again"))
	_ = pub.Close()
	_ = b.Close()
	if err := pub.Ready(context.Background()); err != broker.ErrClosed {
		t.Errorf("Ready after the broker closed: %v", err)
	}
}

// A message the channel refuses to send (a header of a type AMQP cannot
// carry) ends its batch there: it and the messages after it are Unknown, and
// the next batch goes out on a fresh channel.
func TestAMessageTheChannelRefusesLeavesTheRestOfItsBatchUnknown(t *testing.T) {
	t.Parallel()
	b := amqptest.NewBroker(t, broker.Config{}, logging.Discard())
	topo := b.Topology()
	pub := b.NewPublisher(0)
	defer pub.Close()
	bad := message(topo.Exchange, topo.RoutingKeys[0], "bad")
	bad.Publishing.Headers = amqp.Table{"unsendable": struct{}{}}
	results := pub.Publish(context.Background(), []broker.Message{
		message(topo.Exchange, topo.RoutingKeys[0], "first"), bad, message(topo.Exchange, topo.RoutingKeys[0], "last"),
	})
	if r := results[0]; r.Outcome != broker.Confirmed && r.Outcome != broker.Unknown {
		t.Errorf("the message before: %v %v", r.Outcome, r.Err)
	}
	for _, r := range results[1:] {
		if r.Outcome != broker.Unknown || !errors.Is(r.Err, broker.ErrUnconfirmed) || !strings.Contains(r.Err.Error(), "publish:") {
			t.Errorf("the refused message and the one after: %v %v", r.Outcome, r.Err)
		}
	}
	publish(t, pub, message(topo.Exchange, topo.RoutingKeys[0], "next"))
}
