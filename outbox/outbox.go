// Package outbox owns the outbox table: enqueueing an event inside the
// caller's transaction, and everything the relay and the ops dashboard do
// with the rows afterwards.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/productd/productd"
)

// NotifyChannel is the Postgres channel that Enqueue notifies when its
// transaction commits, so that relays wake up at once instead of at their
// next poll.
const NotifyChannel = "productd_outbox"

// Status is the state of an outbox row.
type Status string

// The outbox row states. A row is StatusPending until the broker confirms
// its message (StatusPublished) or its attempts run out (StatusDead).
const (
	StatusPending   Status = "pending"
	StatusPublished Status = "published"
	StatusDead      Status = "dead"
)

// NewEvent returns an event of type typ for the product at version,
// with a fresh time-ordered id.
func NewEvent(typ productd.EventType, productID, version int64, images []string) (productd.Event, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return productd.Event{}, fmt.Errorf("generate event id: %w", err)
	}
	if images == nil {
		images = []string{}
	}
	return productd.Event{
		SchemaVersion:  productd.EventSchemaVersion,
		ID:             id.String(),
		Type:           typ,
		ProductID:      productID,
		ProductVersion: version,
		Images:         images,
		OccurredAt:     time.Now().UTC(),
	}, nil
}

// Enqueue writes ev as a pending row inside tx. The row becomes visible, and
// relays are notified, only when tx commits; if tx rolls back, neither the
// change nor its event happened. When ctx carries a span, the row keeps its
// W3C trace context (see TraceContext), for the publication to continue the
// trace.
func Enqueue(ctx context.Context, tx pgx.Tx, ev productd.Event) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	traceParent, traceState := TraceContext(ctx)
	// One statement inserts the row and queues the notification: Postgres
	// delivers it at commit and folds duplicates within a transaction.
	_, err = tx.Exec(ctx, `
		WITH row AS (
			INSERT INTO outbox (event_id, event_type, product_id, payload, traceparent, tracestate)
			VALUES ($1, $2, $3, $4, $6, $7)
			RETURNING id
		)
		SELECT pg_notify($5, '') FROM row`,
		ev.ID, string(ev.Type), ev.ProductID, payload, NotifyChannel, traceParent, traceState)
	if err != nil {
		return fmt.Errorf("insert outbox row for event %s: %w", ev.ID, err)
	}
	return nil
}

// TraceContext returns the W3C traceparent and tracestate of the span in
// ctx, as the outbox stores them: nil (NULL) when ctx carries none, so that
// an untraced write costs nothing but two empty parameters.
func TraceContext(ctx context.Context) (traceParent, traceState any) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil, nil
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	traceParent = carrier["traceparent"]
	if ts := carrier["tracestate"]; ts != "" {
		traceState = ts
	}
	return traceParent, traceState
}
