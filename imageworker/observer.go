package imageworker

import (
	"context"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/productd/productd"
)

// Observer watches the worker, for metrics and traces (see package
// telemetry). Its methods are called concurrently and must not block.
type Observer interface {
	// Received is called when a delivery arrives. The context it returns
	// is the one the delivery is handled in (carrying the trace its headers
	// continue); done is called once the delivery is settled.
	Received(ctx context.Context, d amqp.Delivery) (_ context.Context, done func())
	// Step reports one step of the work, from start, taking took, and its
	// error: StepFetch, StepDecode, StepResize, StepEncode and StepUpload
	// for each image, StepUpdate for the write-back of a product's result.
	Step(ctx context.Context, step string, start time.Time, took time.Duration, err error)
	// Settled reports how a delivery was settled: OutcomeAcked,
	// OutcomeRetried, OutcomeParked, OutcomeRequeued or OutcomeRenewed.
	Settled(outcome string)
	// Result reports an image status the worker wrote on a product:
	// done, or failed with the application error code of the cause
	// (productd.ErrorCode; "internal" when it has none).
	Result(status productd.ImageStatus, code string)
}

// The steps of Observer.Step.
const (
	StepFetch  = "fetch"
	StepDecode = "decode"
	StepResize = "resize"
	StepEncode = "encode"
	StepUpload = "upload"
	StepUpdate = "update"
)

// The outcomes of Observer.Settled.
const (
	OutcomeAcked    = "acked"
	OutcomeRetried  = "retried"
	OutcomeParked   = "parked"
	OutcomeRequeued = "requeued"
	OutcomeRenewed  = "renewed"
)

// settledOutcome is the Observer's outcome of a settlement: a retry queue's
// routing key is a retry.
func settledOutcome(outcome string) string {
	switch outcome {
	case OutcomeAcked, OutcomeParked, OutcomeRequeued, OutcomeRenewed:
		return outcome
	}
	return OutcomeRetried
}

// nopObserver is the Observer of a worker configured without one.
type nopObserver struct{}

func (nopObserver) Received(ctx context.Context, _ amqp.Delivery) (context.Context, func()) {
	return ctx, func() {}
}
func (nopObserver) Step(context.Context, string, time.Time, time.Duration, error) {}
func (nopObserver) Settled(string)                                                {}
func (nopObserver) Result(productd.ImageStatus, string)                           {}
