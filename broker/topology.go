package broker

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd"
)

// Topology names the exchanges and queues productd uses and sets their
// limits. The zero value is usable: every empty field takes the default given
// in its comment, and Prefix (empty by default) is put in front of every name,
// so that tests and side-by-side deployments on one broker get names of their
// own.
//
// Every queue argument is set explicitly, so that the same code declares the
// same queues on RabbitMQ 3.10 (no default delivery limit) and 4.x (a default
// limit of 20).
type Topology struct {
	// Prefix is prepended to every exchange and queue name. Empty by
	// default.
	Prefix string

	// Exchange is the durable topic exchange events are published to, with
	// the event type as the routing key. Zero means DefaultExchange
	// ("productd.events").
	Exchange string

	// WorkQueue is the image worker's quorum queue, bound to Exchange with
	// every key of RoutingKeys. Zero means DefaultWorkQueue
	// ("productd.images").
	WorkQueue string

	// RoutingKeys are the keys WorkQueue is bound with. Empty means
	// DefaultRoutingKeys(): the three product event types. A message whose key is not among them is returned
	// to the publisher as unroutable.
	RoutingKeys []string

	// DeliveryLimit is the work queue's x-delivery-limit: a message
	// redelivered this many times (a crashing worker, say) is dead-lettered to
	// the parking lot. Zero means DefaultDeliveryLimit (10).
	DeliveryLimit int

	// RetryExchange is the direct exchange through which the worker delays a
	// message: the routing key picks a retry queue (see RetryRoutingKey).
	// Zero means DefaultRetryExchange ("productd.retry").
	RetryExchange string

	// RetryDelays are the delays of the retry queues, one queue per delay,
	// named WorkQueue + ".retry." + the delay (e.g. "productd.images.retry.5s").
	// A message waits in its queue for the delay, then goes back to the work
	// queue. Empty means DefaultRetryDelays(): 1s, 5s, 30s, 2m, 10m.
	RetryDelays []time.Duration

	// DeadLetterExchange is the fanout exchange of messages that gave up:
	// those past the delivery limit, and those the worker publishes there
	// itself with the reason in a header. Zero means
	// DefaultDeadLetterExchange ("productd.dlx").
	DeadLetterExchange string

	// ParkingQueue is bound to DeadLetterExchange and keeps every message
	// that gave up until an operator looks at it. Zero means
	// DefaultParkingQueue ("productd.images.parking").
	ParkingQueue string
}

// Defaults of Topology.
const (
	DefaultExchange           = "productd.events"
	DefaultWorkQueue          = "productd.images"
	DefaultDeliveryLimit      = 10
	DefaultRetryExchange      = "productd.retry"
	DefaultDeadLetterExchange = "productd.dlx"
	DefaultParkingQueue       = "productd.images.parking"
)

// DefaultRetryDelays are the retry queues' delays when Topology.RetryDelays
// is empty.
func DefaultRetryDelays() []time.Duration {
	return []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute}
}

// DefaultRoutingKeys are the work queue's bindings when Topology.RoutingKeys
// is empty: every product event.
func DefaultRoutingKeys() []string {
	return []string{
		string(productd.EventProductCreated),
		string(productd.EventProductImagesChanged),
		string(productd.EventProductDeleted),
	}
}

// Resolve returns t with every empty field set to its default and Prefix
// applied to every name (Prefix is then empty, so resolving twice changes
// nothing). It fails on a limit that RabbitMQ would refuse.
func (t Topology) Resolve() (Topology, error) {
	r := t
	r.Prefix = ""
	r.Exchange = t.Prefix + cmp.Or(t.Exchange, DefaultExchange)
	r.WorkQueue = t.Prefix + cmp.Or(t.WorkQueue, DefaultWorkQueue)
	r.RetryExchange = t.Prefix + cmp.Or(t.RetryExchange, DefaultRetryExchange)
	r.DeadLetterExchange = t.Prefix + cmp.Or(t.DeadLetterExchange, DefaultDeadLetterExchange)
	r.ParkingQueue = t.Prefix + cmp.Or(t.ParkingQueue, DefaultParkingQueue)
	r.DeliveryLimit = cmp.Or(t.DeliveryLimit, DefaultDeliveryLimit)
	if len(r.RoutingKeys) == 0 {
		r.RoutingKeys = DefaultRoutingKeys()
	}
	if r.DeliveryLimit < 0 {
		return Topology{}, fmt.Errorf("topology: delivery limit %d: want a positive number", r.DeliveryLimit)
	}
	if len(r.RetryDelays) == 0 {
		r.RetryDelays = DefaultRetryDelays()
	}
	seen := map[string]bool{}
	for _, d := range r.RetryDelays {
		if d < time.Millisecond {
			return Topology{}, fmt.Errorf("topology: retry delay %v: want at least 1ms", d)
		}
		name := r.RetryQueue(d)
		if seen[name] {
			return Topology{}, fmt.Errorf("topology: retry delay %v given twice", d)
		}
		seen[name] = true
	}
	r.RoutingKeys = append([]string(nil), r.RoutingKeys...)
	r.RetryDelays = append([]time.Duration(nil), r.RetryDelays...)
	return r, nil
}

// RetryQueue returns the name of the retry queue with the given delay.
func (t Topology) RetryQueue(delay time.Duration) string {
	return t.WorkQueue + ".retry." + formatDelay(delay)
}

// RetryRoutingKey returns the routing key, on RetryExchange, of the delay
// that a message failing for the attempt-th time (1 for the first failure)
// should wait before going back to the work queue. Delays grow with the
// attempt. ok is false when attempt is past the last delay: retries are
// exhausted and the message belongs in the parking lot.
//
// The worker republishes a transiently failed delivery with
//
//	key, ok := topo.RetryRoutingKey(attempt)
//	// ok: publish to topo.RetryExchange with key, then ack the delivery
//	// !ok: publish to topo.DeadLetterExchange with the reason, then ack
func (t Topology) RetryRoutingKey(attempt int) (key string, ok bool) {
	if attempt < 1 || attempt > len(t.RetryDelays) {
		return "", false
	}
	return t.RetryQueue(t.RetryDelays[attempt-1]), true
}

// Exchanges lists every exchange of the topology.
func (t Topology) Exchanges() []string {
	return []string{t.Exchange, t.RetryExchange, t.DeadLetterExchange}
}

// Queues lists every queue of the topology: the work queue, the retry queues
// and the parking lot.
func (t Topology) Queues() []string {
	qs := []string{t.WorkQueue}
	for _, d := range t.RetryDelays {
		qs = append(qs, t.RetryQueue(d))
	}
	return append(qs, t.ParkingQueue)
}

// Routes reports whether the topology binds a queue to exchange with key:
// a message published there has a route unless a queue or a binding of the
// topology has gone missing (deleted by an operator or a policy). The broker
// treats "no route" for such a message as a fault of its own, and declares
// the topology again.
func (t Topology) Routes(exchange, key string) bool {
	switch exchange {
	case t.Exchange:
		return slices.Contains(t.RoutingKeys, key)
	case t.RetryExchange:
		return slices.ContainsFunc(t.RetryDelays, func(d time.Duration) bool { return t.RetryQueue(d) == key })
	case t.DeadLetterExchange:
		return true // fanout
	case "": // the default exchange routes by queue name
		return t.HasQueue(key)
	}
	return false
}

// HasQueue reports whether name is one of the topology's queues.
func (t Topology) HasQueue(name string) bool { return slices.Contains(t.Queues(), name) }

// formatDelay writes a delay the short way people name queues: 500ms, 5s,
// 2m, 1h; anything else falls back to time.Duration's own form.
func formatDelay(d time.Duration) string {
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if d%u.unit == 0 {
			return strconv.FormatInt(int64(d/u.unit), 10) + u.name
		}
	}
	return d.String()
}

// parkingDeliveryLimit is high enough never to be reached by hand.
const parkingDeliveryLimit = 1000

// quorumArgs are the arguments every queue of the topology shares: a
// replicated quorum queue whose dead-lettering cannot lose a message
// (at-least-once needs the reject-publish overflow).
func quorumArgs() amqp.Table {
	return amqp.Table{
		amqp.QueueTypeArg:        amqp.QueueTypeQuorum,
		amqp.QueueOverflowArg:    amqp.QueueOverflowRejectPublish,
		"x-dead-letter-strategy": "at-least-once",
	}
}

// declare creates or checks the whole topology on ch. Declarations are
// idempotent, so every (re)connection runs it; a queue that exists with other
// arguments fails here, loudly, rather than behaving differently later.
func (t Topology) declare(ch *amqp.Channel) error {
	exchanges := []struct{ name, kind string }{
		{t.Exchange, amqp.ExchangeTopic},
		{t.RetryExchange, amqp.ExchangeDirect},
		{t.DeadLetterExchange, amqp.ExchangeFanout},
	}
	for _, e := range exchanges {
		if err := ch.ExchangeDeclare(e.name, e.kind, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", e.name, err)
		}
	}

	work := quorumArgs()
	work["x-delivery-limit"] = t.DeliveryLimit
	work["x-dead-letter-exchange"] = t.DeadLetterExchange
	if err := t.declareQueue(ch, t.WorkQueue, work); err != nil {
		return err
	}
	for _, key := range t.RoutingKeys {
		if err := ch.QueueBind(t.WorkQueue, key, t.Exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %s to %s with %s: %w", t.WorkQueue, t.Exchange, key, err)
		}
	}

	for _, d := range t.RetryDelays {
		name := t.RetryQueue(d)
		args := quorumArgs()
		args[amqp.QueueMessageTTLArg] = d.Milliseconds()
		// Expired messages go straight back to the work queue through the
		// default exchange, whatever key they were published with.
		args["x-dead-letter-exchange"] = ""
		args["x-dead-letter-routing-key"] = t.WorkQueue
		if err := t.declareQueue(ch, name, args); err != nil {
			return err
		}
		if err := ch.QueueBind(name, name, t.RetryExchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %s to %s: %w", name, t.RetryExchange, err)
		}
	}

	parking := amqp.Table{
		amqp.QueueTypeArg:     amqp.QueueTypeQuorum,
		amqp.QueueOverflowArg: amqp.QueueOverflowRejectPublish,
		// Without a limit of its own the parking lot would get 4.x's default
		// of 20 and silently drop a message an operator kept requeueing.
		"x-delivery-limit": parkingDeliveryLimit,
	}
	if err := t.declareQueue(ch, t.ParkingQueue, parking); err != nil {
		return err
	}
	if err := ch.QueueBind(t.ParkingQueue, "", t.DeadLetterExchange, false, nil); err != nil {
		return fmt.Errorf("bind queue %s to %s: %w", t.ParkingQueue, t.DeadLetterExchange, err)
	}
	return nil
}

func (t Topology) declareQueue(ch *amqp.Channel, name string, args amqp.Table) error {
	if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
		return fmt.Errorf("declare queue %s: %w", name, err)
	}
	return nil
}
