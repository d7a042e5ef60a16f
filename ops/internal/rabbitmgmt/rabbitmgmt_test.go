package rabbitmgmt_test

import (
	"context"
	"strings"
	"testing"

	"github.com/productd/productd/internal/amqptest"
	"github.com/productd/productd/ops/internal/rabbitmgmt"
)

func TestNewReadsWhereAndWhoFromTheURLs(t *testing.T) {
	t.Parallel()
	if _, err := rabbitmgmt.New(rabbitmgmt.Config{AMQPURL: "http://x"}); err == nil {
		t.Error("a non-AMQP URL was accepted")
	}
	if _, err := rabbitmgmt.New(rabbitmgmt.Config{AMQPURL: "amqp://a:b@h/", ManagementURL: "no-host"}); err == nil ||
		strings.Contains(err.Error(), "no-host") {
		t.Errorf("a management URL without a host: %v", err)
	}
	c, err := rabbitmgmt.New(rabbitmgmt.Config{AMQPURL: "amqp://a:b@h/orders"})
	if err != nil || c.Vhost() != "orders" {
		t.Errorf("vhost = %q, %v", c.Vhost(), err)
	}
}

// Against the local broker: its version and nodes, a queue's figures, and
// refusals (wrong credentials, a missing queue) as errors that say so.
func TestReadsTheLocalBroker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, err := rabbitmgmt.New(rabbitmgmt.Config{AMQPURL: amqptest.URL(t)})
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.Overview(ctx)
	if err != nil || o.Version == "" || len(o.Nodes) == 0 || !o.Nodes[0].Running {
		t.Fatalf("overview = %+v, %v", o, err)
	}
	name := amqptest.Prefix(t) + "q"
	ch := amqptest.Channel(t)
	// Exclusive: the queue goes with the channel's connection, closed when
	// the test ends, or when its process dies.
	if _, err := ch.QueueDeclare(name, false, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	q, err := c.Queue(ctx, name)
	if err != nil || q.Name != name || q.Type != "classic" {
		t.Errorf("queue = %+v, %v", q, err)
	}
	if _, err := c.Queue(ctx, name+"-missing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a missing queue: %v", err)
	}
	wrong, err := rabbitmgmt.New(rabbitmgmt.Config{AMQPURL: amqptest.URL(t), ManagementURL: "http://nobody:nothing@127.0.0.1:15672/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Overview(ctx); err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "nothing") {
		t.Errorf("wrong credentials: %v", err)
	}
}
