package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Entry is one outbox row of a product's history.
type Entry struct {
	ID        int64
	EventID   string
	EventType string
	// ProductVersion is the product version the event announced.
	ProductVersion int64
	Status         Status
	Attempts       int
	LastError      string
	CreatedAt      time.Time
	NextAttemptAt  time.Time
	// PublishedAt is when the broker confirmed the row; nil unless
	// published.
	PublishedAt *time.Time
}

const productEntriesSQL = `
	SELECT id, event_id::text, event_type, coalesce((payload->>'product_version')::bigint, 0), status, attempts,
		last_error, created_at, next_attempt_at, published_at
	FROM outbox WHERE product_id = $1 ORDER BY id DESC LIMIT $2`

// ProductEntries returns up to limit outbox rows of product id, newest
// first. Published rows are there until retention deletes them.
func ProductEntries(ctx context.Context, q Querier, productID int64, limit int) ([]Entry, error) {
	rows, err := q.Query(ctx, productEntriesSQL, productID, limit)
	if err != nil {
		return nil, fmt.Errorf("read outbox rows of product %d: %w", productID, err)
	}
	entries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := row.Scan(&e.ID, &e.EventID, &e.EventType, &e.ProductVersion, &e.Status, &e.Attempts,
			&e.LastError, &e.CreatedAt, &e.NextAttemptAt, &e.PublishedAt)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read outbox rows of product %d: %w", productID, err)
	}
	return entries, nil
}
