// Package parkinglog keeps a readable copy of every message parked by the
// image pipeline: a RabbitMQ stream bound to the dead-letter exchange next to
// the parking lot.
//
// The parking lot is a quorum queue, and a quorum queue cannot be read
// without a delivery: a basic.get (the management API's "get messages"
// included) that requeues counts against the queue's delivery limit and
// raises the message's x-delivery-count, so a dashboard that peeked every
// few seconds would eventually have the parking lot drop what it was
// watching. A stream is read by offset, without acknowledging or removing
// anything, so the dashboard reads the log and never touches the lot.
// The log holds what was parked since it was declared; a message replayed
// out of the parking lot stays in the log.
package parkinglog

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd/broker"
)

// Retention bounds the log: by age and by size, whichever comes first.
const (
	MaxAge   = "7D"
	MaxBytes = 1 << 30
)

// Name returns the log's queue name for topo.
func Name(topo broker.Topology) string { return topo.ParkingQueue + ".log" }

// Declare creates the log, if it is not there, and binds it to topo's
// dead-letter exchange. The exchange must exist (the broker declares it).
func Declare(ch *amqp.Channel, topo broker.Topology) error {
	name := Name(topo)
	_, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{
		amqp.QueueTypeArg:                 amqp.QueueTypeStream,
		amqp.StreamMaxAgeArg:              MaxAge,
		amqp.StreamMaxLenBytesArg:         int64(MaxBytes),
		amqp.StreamMaxSegmentSizeBytesArg: int64(16 << 20),
	})
	if err != nil {
		return fmt.Errorf("declare parking log %s: %w", name, err)
	}
	if err := ch.QueueBind(name, "", topo.DeadLetterExchange, false, nil); err != nil {
		return fmt.Errorf("bind parking log %s to %s: %w", name, topo.DeadLetterExchange, err)
	}
	return nil
}

// Entry is one parked message as the log keeps it.
type Entry struct {
	Offset    int64
	MessageID string
	EventType string
	ProductID int64
	// Reason is why the message was parked: the worker's reason header,
	// or NoReason.
	Reason string
	// Attempts is how many transient failures the worker counted.
	Attempts int64
}

// NoReason is the reason of a message parked without the worker's reason
// header: one the broker dead-lettered itself, past the work queue's
// delivery limit (a worker that kept crashing on it). The broker's own
// x-death header, which says so, does not survive the way into a stream on
// RabbitMQ 3.10.
const NoReason = "dead-lettered by the broker, most likely past the work queue's delivery limit"

// ReasonHeader and AttemptHeader are the headers the image worker sets when
// it parks a message.
const (
	ReasonHeader  = "x-productd-reason"
	AttemptHeader = "x-productd-attempt"
)

// quiet is how long Newest waits for one more message before it takes the
// log's end as reached: a stream sends what it has in chunks, at once.
const quiet = 150 * time.Millisecond

// Newest returns up to n of the newest entries of the log called name,
// newest first, reading them on ch without removing or changing anything.
// It closes ch when done: a stream consumer cannot be cancelled mid-chunk
// cleanly.
func Newest(ctx context.Context, ch *amqp.Channel, name string, n int) ([]Entry, error) {
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(name, true, false, false, false, amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeStream})
	if err != nil {
		return nil, fmt.Errorf("read parking log %s: %w", name, err)
	}
	if q.Messages == 0 || n <= 0 {
		return nil, nil
	}
	if err := ch.Qos(n+100, 0, false); err != nil {
		return nil, fmt.Errorf("read parking log %s: %w", name, err)
	}
	start := max(int64(q.Messages-n), 0)
	deliveries, err := ch.ConsumeWithContext(ctx, name, "", false, false, false, false, amqp.Table{"x-stream-offset": start})
	if err != nil {
		return nil, fmt.Errorf("read parking log %s: %w", name, err)
	}
	var out []Entry
	timer := time.NewTimer(5 * quiet)
	defer timer.Stop()
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return newestFirst(out, n), nil
			}
			out = append(out, entryOf(d))
			_ = d.Ack(false) // streams need acks to keep sending; nothing is removed
			if len(out) > 2*n {
				out = out[len(out)-n:]
			}
			timer.Reset(quiet)
		case <-timer.C:
			return newestFirst(out, n), nil
		case <-ctx.Done():
			return nil, fmt.Errorf("read parking log %s: %w", name, ctx.Err())
		}
	}
}

func newestFirst(es []Entry, n int) []Entry {
	if len(es) > n {
		es = es[len(es)-n:]
	}
	out := make([]Entry, len(es))
	for i, e := range es {
		out[len(es)-1-i] = e
	}
	return out
}

func entryOf(d amqp.Delivery) Entry {
	e := Entry{MessageID: d.MessageId, EventType: d.Type}
	if off, ok := d.Headers["x-stream-offset"].(int64); ok {
		e.Offset = off
	}
	var ev struct {
		ProductID int64  `json:"product_id"`
		Type      string `json:"type"`
	}
	if json.Unmarshal(d.Body, &ev) == nil {
		e.ProductID = ev.ProductID
		if e.EventType == "" {
			e.EventType = ev.Type
		}
	}
	if r, ok := d.Headers[ReasonHeader].(string); ok {
		e.Reason = r
	}
	switch a := d.Headers[AttemptHeader].(type) {
	case int64:
		e.Attempts = a
	case int32:
		e.Attempts = int64(a)
	}
	if e.Reason == "" {
		e.Reason = NoReason
	}
	return e
}
