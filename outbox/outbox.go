// Package outbox owns the outbox table: enqueueing an event inside the
// caller's transaction, and everything the relay and the ops dashboard do
// with the rows afterwards.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/productd/productd"
)

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

// Enqueue writes ev as a pending row inside tx. The row becomes visible only
// when tx commits; if tx rolls back, neither the change nor its event
// happened. Enqueue wakes no relay: the caller does so after the commit (a
// Notifier, or a relay in its own process), or the relays find the row at
// their next poll or sweep. When ctx carries a span, the row keeps its W3C
// trace context (see TraceContext), for the publication to continue the
// trace.
func Enqueue(ctx context.Context, tx pgx.Tx, ev productd.Event) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	traceParent, traceState := TraceContext(ctx)
	_, err = tx.Exec(ctx, `
		INSERT INTO outbox (event_id, event_type, product_id, payload, traceparent, tracestate)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		ev.ID, string(ev.Type), ev.ProductID, payload, traceParent, traceState)
	if err != nil {
		return fmt.Errorf("insert outbox row for event %s: %w", ev.ID, err)
	}
	return nil
}

// productKey is how the JSON of an Event (ProductID and ProductVersion zero)
// holds its product id and version, one after the other.
const productKey = `"product_id":0,"product_version":0`

// SplitPayload returns ev's JSON in three pieces, to be joined around its
// product's id and version by a statement that inserts the product and the
// event's row together, before either is known: before || id || between ||
// version || after is the JSON Enqueue would have written. ev.ProductID and
// ev.ProductVersion must be zero.
func SplitPayload(ev productd.Event) (before, between, after string, err error) {
	if ev.ProductID != 0 || ev.ProductVersion != 0 {
		return "", "", "", fmt.Errorf("split event %s: product id and version already set", ev.ID)
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return "", "", "", fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	// Inside a JSON string every quote is escaped, so the first match is
	// the object's own keys.
	i := strings.Index(string(payload), productKey)
	if i < 0 {
		return "", "", "", fmt.Errorf("split event %s: no %s in %s", ev.ID, productKey, payload)
	}
	id, version, _ := strings.Cut(productKey, ",")
	return string(payload[:i+len(id)-1]), "," + version[:len(version)-1], string(payload[i+len(productKey):]), nil
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
