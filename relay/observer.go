package relay

import (
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/outbox"
)

// Observer watches the relay's publications, for metrics and traces (see
// package telemetry). Its methods are called from the batches' goroutines,
// concurrently, and must not block.
type Observer interface {
	// Publishing is called for each claimed row just before its message is
	// published. It may add headers to msg (the row's trace context), and
	// returns the function the relay calls with the broker's answer for the
	// message as soon as it has it.
	Publishing(row outbox.Row, msg *amqp.Publishing) func(broker.Result)
	// Batch is called after each batch that had rows, once it is committed,
	// with its size and the time from its claim to its commit.
	Batch(rows int, took time.Duration)
}

// nopObserver is the Observer of a Relay configured without one.
type nopObserver struct{}

func (nopObserver) Publishing(outbox.Row, *amqp.Publishing) func(broker.Result) { return ignoreResult }
func (nopObserver) Batch(int, time.Duration)                                    {}

func ignoreResult(broker.Result) {}
