// Package broker owns productd's connection to RabbitMQ: it declares the
// topology, publishes with confirms, consumes, and recovers on its own
// whenever the broker goes away.
//
// # Connection
//
// New starts a background loop that dials, declares the Topology, and waits
// for the connection to close; then it dials again with a growing, jittered
// wait until it succeeds (see Config). It never gives up and never fails
// because RabbitMQ is down. Every state change is logged with a "state"
// field: connecting, connected, recovered (with how long the broker was
// away), connection lost, and the broker's own flow-control alarms.
//
//	b, err := broker.New(broker.Config{URL: cfg.AMQPURL}, log)
//	if err != nil { ... }          // bad settings only
//	defer b.Close()
//	err = b.WaitConnected(ctx)     // optional: wait for the first connection
//
// No call waits on the broker longer than its context, or than
// Config.CloseTimeout for a close. amqp091's own calls take no context, so
// the broker runs them aside and leaves them to the connection's heartbeat
// once the caller's time is up: a broker that stops answering (a black-holed
// network path, a resource alarm) holds a goroutine, never a caller, and
// never a shutdown.
//
// # Topology
//
// Topology names everything and sets its limits; its zero value gives
// productd's defaults, and Topology.Prefix gives a test or a second
// deployment names of its own. Every queue is a durable quorum queue with
// explicit arguments, so that RabbitMQ 3.10 and 4.x behave alike:
//
//	productd.events           topic exchange; routing key = event type
//	productd.images           work queue, bound with every event type;
//	                          x-delivery-limit 10, then dead-lettered
//	                          (at-least-once) to productd.dlx
//	productd.retry            direct exchange of the delayed retries
//	productd.images.retry.5s  one queue per delay (1s 5s 30s 2m 10m), bound
//	                          to productd.retry with its own name; after its
//	                          TTL a message goes back to productd.images
//	productd.dlx              fanout exchange of messages that gave up
//	productd.images.parking   the parking lot, bound to productd.dlx
//
// Read the resolved names from Broker.Topology().
//
// What goes missing while the connection stays up (a queue deleted by an
// operator or a policy, a binding removed) comes back too: a message the
// topology routes but the broker returns as unroutable, a channel the broker
// closes (publishing to a deleted exchange), a consumer whose queue was
// deleted, each make the broker declare the topology again after
// Config.RepairDelay (Repair; Redeclare does it at once). Stats counts the
// declarations and keeps the last one's error.
//
// # Publishing
//
// A Publisher sends a batch with publisher confirms and waits for all of the
// batch's answers together. Every message is mandatory and persistent, and
// carries its delivery tag in the HeaderPublishTag header, which pairs a
// returned message with its own publication even among messages that share
// a message id. Each message's Result is Confirmed, Returned (unroutable),
// Nacked (refused, for example by a full queue), Unknown (the channel died
// first) or TimedOut (the wait ended first): after the last two the broker
// may or may not have it. Only Confirmed means published, and a returned
// message is never reported Confirmed, whenever its answers arrive.
// Publisher.Stats counts the outcomes.
//
//	pub := b.NewPublisher(0)
//	results := pub.Publish(ctx, []broker.Message{{
//		Exchange:   topo.Exchange,
//		RoutingKey: string(ev.Type),
//		Publishing: amqp.Publishing{MessageId: ev.ID, ContentType: "application/json", Body: body},
//	}})
//	if !results[0].Published() { ... results[0].Err ... }
//
// # Consuming (for the image worker)
//
// Consume subscribes to a queue with per-consumer prefetch, runs handlers
// concurrently, and subscribes again after every lost connection or
// cancelled subscription (its queue deleted: it declares the topology
// again first), until its context ends; then it stops taking deliveries,
// waits for running handlers, and closes the channel so that every
// unacknowledged delivery goes back to the queue:
//
//	err := b.Consume(ctx, broker.ConsumeOptions{Queue: topo.WorkQueue, Prefetch: 32, Concurrency: 4},
//		func(ctx context.Context, d amqp.Delivery) {
//			switch err := process(ctx, d); {
//			case err == nil:
//				_ = d.Ack(false)
//			case transient(err):
//				// Delay: republish to the retry queue of this attempt, then ack.
//				key, ok := topo.RetryRoutingKey(attemptOf(d) + 1)
//				if !ok { /* exhausted: publish to topo.DeadLetterExchange */ }
//				res := pub.Publish(ctx, []broker.Message{{Exchange: topo.RetryExchange, RoutingKey: key, Publishing: copyOf(d)}})
//				if res[0].Published() { _ = d.Ack(false) } else { _ = d.Nack(false, true) }
//			default:
//				// Permanent: park it with the reason in a header, then ack.
//			}
//		})
//
// The attempt count travels in a header the worker sets when it republishes
// (x-death counts dead-letterings, not the worker's own retries). Messages
// redelivered more than the work queue's delivery limit (a worker crashing on
// them) are dead-lettered to the parking lot by RabbitMQ itself.
//
// Callers that need more control use Broker.Channel, which waits for a live
// connection and opens a channel on it; register NotifyClose on the channel
// to learn that it died and ask for a new one.
package broker
