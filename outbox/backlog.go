package outbox

import (
	"context"
	"fmt"
	"time"
)

// OldestPendingAge returns how long the oldest pending row has waited for
// its publication, zero when none waits. It reads one entry of a partial
// index, so it costs the same whatever the table's size.
func OldestPendingAge(ctx context.Context, q Querier) (time.Duration, error) {
	var age *time.Duration
	err := q.QueryRow(ctx, `SELECT (SELECT now() - created_at FROM outbox WHERE status = 'pending' ORDER BY id LIMIT 1)`).Scan(&age)
	if err != nil {
		return 0, fmt.Errorf("read the oldest pending outbox row: %w", err)
	}
	if age == nil {
		return 0, nil
	}
	return max(*age, 0), nil
}
