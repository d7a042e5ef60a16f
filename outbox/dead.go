package outbox

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/productd/productd"
)

// DeadRow is a row that ran out of attempts, with the error of its last one.
type DeadRow struct {
	ID        int64
	EventID   string
	EventType string
	ProductID int64
	Attempts  int
	LastError string
	CreatedAt time.Time
	// DiedAt is roughly when the row died: the time its last attempt set
	// for the next one, which a dead row never gets.
	DiedAt time.Time
}

// DeadFilter selects dead rows. Zero fields select everything.
type DeadFilter struct {
	// EventType selects rows of this event type.
	EventType string
	// ProductID selects the rows of one product.
	ProductID int64
	// ErrorContains selects rows whose last error contains it, ignoring
	// case.
	ErrorContains string
}

// IsZero reports whether f selects every dead row.
func (f DeadFilter) IsZero() bool { return f == DeadFilter{} }

// where returns f's conditions, numbering its arguments from next, and the
// arguments.
func (f DeadFilter) where(next int) (string, []any) {
	conds := []string{`status = 'dead'`}
	var args []any
	add := func(cond string, arg any) {
		conds = append(conds, fmt.Sprintf(cond, next+len(args)))
		args = append(args, arg)
	}
	if f.EventType != "" {
		add("event_type = $%d", f.EventType)
	}
	if f.ProductID != 0 {
		add("product_id = $%d", f.ProductID)
	}
	if f.ErrorContains != "" {
		add("strpos(lower(last_error), lower($%d)) > 0", f.ErrorContains)
	}
	return strings.Join(conds, " AND "), args
}

const deadColumns = `id, event_id::text, event_type, product_id, attempts, last_error, created_at, next_attempt_at`

// ListDead returns up to limit dead rows selected by f with ids below
// beforeID (0 for the first page), newest first: pass the last id of a page
// to get the next one.
func ListDead(ctx context.Context, q Querier, f DeadFilter, beforeID int64, limit int) ([]DeadRow, error) {
	where, args := f.where(3)
	if beforeID <= 0 {
		beforeID = 1<<63 - 1
	}
	rows, err := q.Query(ctx, `SELECT `+deadColumns+` FROM outbox WHERE `+where+` AND id < $1 ORDER BY id DESC LIMIT $2`,
		append([]any{beforeID, limit}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("list dead outbox rows: %w", err)
	}
	dead, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DeadRow, error) {
		var d DeadRow
		err := row.Scan(&d.ID, &d.EventID, &d.EventType, &d.ProductID, &d.Attempts, &d.LastError, &d.CreatedAt, &d.DiedAt)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list dead outbox rows: %w", err)
	}
	return dead, nil
}

// Requeue makes the dead row id pending again with its attempts reset, due
// now, and wakes the relays. Its last error stays for the record. A row that
// is not dead (or does not exist) is an ENOTFOUND error.
func Requeue(ctx context.Context, q Querier, id int64) error {
	n, err := requeue(ctx, q, requeueSet+`id = $1`, id)
	if err != nil {
		return fmt.Errorf("requeue outbox row %d: %w", id, err)
	}
	if n == 0 {
		return productd.Errorf(productd.ENOTFOUND, "dead outbox row %d not found", id)
	}
	return nil
}

// requeueBatch bounds the rows one statement of RequeueDead updates.
const requeueBatch = 1000

// requeueSet makes a dead row pending, due now, with its attempts reset.
const requeueSet = `UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = now() WHERE status = 'dead' AND `

// requeueMatchingSQL requeues a batch of the rows f selects.
func requeueMatchingSQL(f DeadFilter) (string, []any) {
	where, args := f.where(2)
	return requeueSet + `id = ANY(ARRAY(
		SELECT id FROM outbox WHERE ` + where + ` ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED))`, args
}

// RequeueDead requeues every dead row f selects, a bounded batch per
// statement, and returns how many it requeued.
func RequeueDead(ctx context.Context, q Querier, f DeadFilter) (int64, error) {
	sql, args := requeueMatchingSQL(f)
	var total int64
	for {
		n, err := requeue(ctx, q, sql, append([]any{requeueBatch}, args...)...)
		total += n
		if err != nil {
			return total, fmt.Errorf("requeue dead outbox rows: %w", err)
		}
		if n < requeueBatch {
			return total, nil
		}
	}
}

// requeue runs one of the requeue statements, then wakes the relays.
func requeue(ctx context.Context, q Querier, sql string, args ...any) (int64, error) {
	tag, err := q.Exec(ctx, sql, args...)
	if err != nil || tag.RowsAffected() == 0 {
		return 0, err
	}
	// On a pool this runs after the update committed; in a transaction,
	// Postgres delivers it at commit. Either way no relay wakes too early.
	if _, err := q.Exec(ctx, `SELECT pg_notify($1, '')`, NotifyChannel); err != nil {
		return tag.RowsAffected(), fmt.Errorf("notify relays: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Discard deletes the dead row id: an operator decided its event will never
// be published. A row that is not dead is an ENOTFOUND error.
func Discard(ctx context.Context, q Querier, id int64) error {
	tag, err := q.Exec(ctx, `DELETE FROM outbox WHERE id = $1 AND status = 'dead'`, id)
	if err != nil {
		return fmt.Errorf("discard outbox row %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return productd.Errorf(productd.ENOTFOUND, "dead outbox row %d not found", id)
	}
	return nil
}
