package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/productd/productd/outbox"
)

// outbox finds rows pending longer than PendingAfter, and dead rows: events
// whose consumers never heard of them.
func (a *auditor) outbox(ctx context.Context, results ...*Result) error {
	pending, dead := results[0], results[1]
	rows, err := a.cfg.DB.Query(ctx, `
		SELECT id, event_type, product_id, attempts, last_error, now() - created_at
		FROM outbox
		WHERE status = 'pending'
		ORDER BY id`)
	if err != nil {
		return fmt.Errorf("read pending outbox rows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, productID int64
		var eventType, lastError string
		var attempts int
		var age time.Duration
		if err := rows.Scan(&id, &eventType, &productID, &attempts, &lastError, &age); err != nil {
			return fmt.Errorf("read pending outbox rows: %w", err)
		}
		pending.checked(1)
		if age > a.cfg.PendingAfter {
			pending.violation(fmt.Sprintf("outbox row %d", id), fmt.Sprintf("%s of product %d unpublished for %s after %d attempts%s",
				eventType, productID, age.Round(time.Second), attempts, lastErrorSuffix(lastError)))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read pending outbox rows: %w", err)
	}

	// Newest first, a page at a time.
	var before int64
	for {
		page, err := outbox.ListDead(ctx, a.cfg.DB, outbox.DeadFilter{}, before, 500)
		if err != nil {
			return err
		}
		dead.checked(int64(len(page)))
		for _, r := range page {
			dead.violation(fmt.Sprintf("outbox row %d", r.ID), fmt.Sprintf("%s of product %d dead after %d attempts%s",
				r.EventType, r.ProductID, r.Attempts, lastErrorSuffix(r.LastError)))
			before = r.ID
		}
		if len(page) < 500 {
			return nil
		}
	}
}

func lastErrorSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ": " + e
}
