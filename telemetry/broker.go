package telemetry

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd/broker"
)

// Broker registers the families of one broker connection, labelled
// connection=name ("relay", "worker"): whether it is connected, and how
// often it connected and was lost.
func (t *Telemetry) Broker(name string, b *broker.Broker) {
	labels := prometheus.Labels{"connection": name}
	t.register(&brokerCollector{
		b: b,
		connected: prometheus.NewDesc("productd_broker_connected",
			"1 while the broker connection is open with its topology declared, else 0.", nil, labels),
		connects: prometheus.NewDesc("productd_broker_connects_total",
			"Connections made to the broker, the first one included.", nil, labels),
		losses: prometheus.NewDesc("productd_broker_connection_losses_total",
			"Broker connections lost other than by a shutdown.", nil, labels),
	})
}

// brokerCollector reads a Broker's counters, which cost nothing to read.
type brokerCollector struct {
	b                           *broker.Broker
	connected, connects, losses *prometheus.Desc
}

func (c *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.connected
	ch <- c.connects
	ch <- c.losses
}

func (c *brokerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.b.Stats()
	ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, boolValue(s.State == broker.StateConnected))
	ch <- prometheus.MustNewConstMetric(c.connects, prometheus.CounterValue, float64(s.Connects))
	ch <- prometheus.MustNewConstMetric(c.losses, prometheus.CounterValue, float64(s.Losses))
}

// Queues registers the depths of the topology's queues (the work queue,
// the retry queues and the parking lot), asked of the broker through b with
// passive declarations at most once per Config.CacheFor: they touch no
// message and need no management plugin.
func (t *Telemetry) Queues(b *broker.Broker) {
	topo := b.Topology()
	c := &queueCollector{
		messages: prometheus.NewDesc("productd_queue_messages",
			"Messages ready in a queue of the image pipeline (not those delivered and unacknowledged), by queue and role (work, retry, parking).",
			[]string{"queue", "role"}, nil),
		consumers: prometheus.NewDesc("productd_queue_consumers",
			"Consumers of a queue of the image pipeline.", []string{"queue", "role"}, nil),
	}
	for _, name := range topo.Queues() {
		role := "retry"
		switch name {
		case topo.WorkQueue:
			role = "work"
		case topo.ParkingQueue:
			role = "parking"
		}
		c.queues = append(c.queues, queueName{name: name, role: role})
	}
	c.snap = newCached(t.cached, "queues", func(ctx context.Context) ([]amqp.Queue, error) { return c.read(ctx, b) })
	t.register(c)
}

type queueName struct{ name, role string }

// queueCollector reads queue depths through a cache.
type queueCollector struct {
	queues              []queueName
	snap                *cached[[]amqp.Queue]
	messages, consumers *prometheus.Desc
}

// errNotConnected leaves the queue depths out while the broker is away,
// rather than waiting for it.
var errNotConnected = errors.New("the broker is not connected")

// read declares every queue passively on a channel of its own, closed
// after; a broker that does not answer in time has the channel closed under
// it.
func (c *queueCollector) read(ctx context.Context, b *broker.Broker) ([]amqp.Queue, error) {
	if !b.Connected() {
		return nil, errNotConnected
	}
	ch, err := b.Channel(ctx)
	if err != nil {
		return nil, fmt.Errorf("queue depths: %w", err)
	}
	type result struct {
		qs  []amqp.Queue
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		for _, q := range c.queues {
			got, err := ch.QueueDeclarePassive(q.name, true, false, false, false, nil)
			if err != nil {
				r.err = fmt.Errorf("queue depths: %s: %w", q.name, err)
				break
			}
			r.qs = append(r.qs, got)
		}
		done <- r
	}()
	select {
	case r := <-done:
		go ch.Close() //nolint:errcheck // a passive declaration left nothing behind
		return r.qs, r.err
	case <-ctx.Done():
		go ch.Close() //nolint:errcheck // unblocks the declarations
		return nil, fmt.Errorf("queue depths: %w", ctx.Err())
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.messages
	ch <- c.consumers
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	qs, ok := c.snap.get()
	if !ok {
		return
	}
	for i, q := range qs {
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.GaugeValue, float64(q.Messages), c.queues[i].name, c.queues[i].role)
		ch <- prometheus.MustNewConstMetric(c.consumers, prometheus.GaugeValue, float64(q.Consumers), c.queues[i].name, c.queues[i].role)
	}
}
