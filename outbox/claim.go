package outbox

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Querier is what the functions of this package run their statements on: a
// pool, a connection or a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Row is a pending row claimed for publication.
type Row struct {
	ID        int64
	EventID   string
	EventType string
	ProductID int64
	// Payload is the event as JSON, the message body.
	Payload []byte
	// Attempts counts the earlier failed publications.
	Attempts  int
	CreatedAt time.Time
	// TraceParent and TraceState are the W3C trace context of the
	// transaction that wrote the row; empty when it was not traced.
	TraceParent string
	TraceState  string
}

// claimSQL marks the claimed rows published at once: in the common case,
// where the broker confirms the whole batch, that is the only write the
// batch makes. The ids are collected first (ARRAY runs once) so that the
// update finds them through the primary key.
const claimSQL = `
	UPDATE outbox SET status = 'published', published_at = now()
	WHERE id = ANY(ARRAY(
		SELECT id FROM outbox
		WHERE status = 'pending' AND next_attempt_at <= now()
		ORDER BY next_attempt_at, id
		LIMIT $1
		FOR UPDATE SKIP LOCKED))
	RETURNING id, event_id::text, event_type, product_id, payload, attempts, created_at,
		coalesce(traceparent, ''), coalesce(tracestate, '')`

// Claim takes up to limit pending rows that are due, the longest due first,
// for publication in tx, and returns them in id order. Rows that another
// transaction holds are skipped rather than waited for, so any number of
// relays can claim side by side, each getting rows of its own.
//
// Claim presumes success: within tx the rows are already marked published.
// Publish them, then Release the ones the broker did not answer for and
// MarkFailed the ones it refused, all in tx, and commit. Nobody sees a row
// published before the commit; if the transaction rolls back (the process
// died, say), every row is pending as before and will be claimed again.
func Claim(ctx context.Context, tx pgx.Tx, limit int) ([]Row, error) {
	rows, err := tx.Query(ctx, claimSQL, limit)
	if err != nil {
		return nil, fmt.Errorf("claim outbox rows: %w", err)
	}
	claimed, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Row, error) {
		var r Row
		err := row.Scan(&r.ID, &r.EventID, &r.EventType, &r.ProductID, &r.Payload, &r.Attempts, &r.CreatedAt,
			&r.TraceParent, &r.TraceState)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim outbox rows: %w", err)
	}
	// RETURNING does not keep the subquery's order.
	slices.SortFunc(claimed, func(a, b Row) int { return cmp.Compare(a.ID, b.ID) })
	return claimed, nil
}

// Release returns claimed rows to pending as they were, attempts untouched:
// the broker never answered for them, which says nothing about the rows.
func Release(ctx context.Context, tx pgx.Tx, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE outbox SET status = 'pending', published_at = NULL WHERE id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("release %d outbox rows: %w", len(ids), err)
	}
	return nil
}

// Failure is a failed publication of a claimed row.
type Failure struct {
	ID    int64
	Error string
	// RetryIn is how long the row waits before it is due again.
	RetryIn time.Duration
	// Dead gives up on the row: it is no longer claimed until requeued.
	Dead bool
}

// MarkFailed records failures of claimed rows: each row's attempts grow by
// one, its last_error is set, and it becomes pending again, due after
// RetryIn, or dead.
func MarkFailed(ctx context.Context, tx pgx.Tx, failures []Failure) error {
	if len(failures) == 0 {
		return nil
	}
	ids := make([]int64, len(failures))
	errs := make([]string, len(failures))
	waits := make([]int64, len(failures))
	dead := make([]bool, len(failures))
	for i, f := range failures {
		ids[i], errs[i], waits[i], dead[i] = f.ID, f.Error, f.RetryIn.Microseconds(), f.Dead
	}
	_, err := tx.Exec(ctx, `
		UPDATE outbox o SET
			attempts        = o.attempts + 1,
			last_error      = f.error,
			next_attempt_at = now() + f.wait_us * interval '1 microsecond',
			status          = CASE WHEN f.dead THEN 'dead' ELSE 'pending' END,
			published_at    = NULL
		FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::boolean[]) AS f(id, error, wait_us, dead)
		WHERE o.id = f.id`,
		ids, errs, waits, dead)
	if err != nil {
		return fmt.Errorf("mark %d outbox rows failed: %w", len(failures), err)
	}
	return nil
}
