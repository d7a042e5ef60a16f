package telemetry

import (
	"context"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The W3C trace context's fields, as HTTP headers, AMQP headers and outbox
// columns name them.
const (
	headerTraceParent = "traceparent"
	headerTraceState  = "tracestate"
)

// ContextWithRemote returns ctx continuing the trace of a W3C traceparent
// and tracestate, as an outbox row stores them; empty or malformed values
// leave ctx as it is.
func (t *Telemetry) ContextWithRemote(ctx context.Context, traceParent, traceState string) context.Context {
	if traceParent == "" {
		return ctx
	}
	carrier := propagation.MapCarrier{headerTraceParent: traceParent}
	if traceState != "" {
		carrier[headerTraceState] = traceState
	}
	return t.propagator.Extract(ctx, carrier)
}

// amqpCarrier is an AMQP message's headers as a propagation carrier.
type amqpCarrier amqp.Table

func (c amqpCarrier) Get(key string) string {
	s, _ := c[key].(string)
	return s
}

func (c amqpCarrier) Set(key, value string) { c[key] = value }

func (c amqpCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// InjectAMQP writes ctx's trace context into headers, making them when nil,
// and returns them. Without a span in ctx they are returned as they were.
func (t *Telemetry) InjectAMQP(ctx context.Context, headers amqp.Table) amqp.Table {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return headers
	}
	if headers == nil {
		headers = amqp.Table{}
	}
	t.propagator.Inject(ctx, amqpCarrier(headers))
	return headers
}

// ExtractAMQP returns ctx continuing the trace whose context headers carry.
func (t *Telemetry) ExtractAMQP(ctx context.Context, headers amqp.Table) context.Context {
	if _, ok := headers[headerTraceParent]; !ok {
		return ctx
	}
	return t.propagator.Extract(ctx, amqpCarrier(headers))
}
