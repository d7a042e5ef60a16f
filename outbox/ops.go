package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/productd/productd"
)

// Stats is the outbox at a glance, for the ops dashboard. Every figure is
// read from an index that stays small (the backlog, the dead rows, the last
// hour) or from the planner's statistics, so it costs the same at millions of
// published rows as at none.
type Stats struct {
	// Pending counts rows waiting for publication, due or not.
	Pending int64
	// Due counts the pending rows whose next attempt time has come.
	Due int64
	// Dead counts rows that ran out of attempts.
	Dead int64
	// PublishedLastHour counts rows published in the last hour, exactly.
	PublishedLastHour int64
	// PublishedEstimate estimates all published rows still kept: the table's
	// row estimate from its last ANALYZE minus the exact counts above. It is
	// only as fresh as autovacuum's statistics.
	PublishedEstimate int64
	// OldestPendingAge is how long the oldest pending row has waited; zero
	// when nothing is pending.
	OldestPendingAge time.Duration
}

const statsSQL = `
	SELECT
		(SELECT count(*) FROM outbox WHERE status = 'pending'),
		(SELECT count(*) FROM outbox WHERE status = 'pending' AND next_attempt_at <= now()),
		(SELECT count(*) FROM outbox WHERE status = 'dead'),
		(SELECT count(*) FROM outbox WHERE status = 'published' AND published_at > now() - interval '1 hour'),
		(SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = 'outbox'::regclass),
		(SELECT now() - created_at FROM outbox WHERE status = 'pending' ORDER BY id LIMIT 1)`

// ReadStats computes Stats.
func ReadStats(ctx context.Context, q Querier) (Stats, error) {
	var s Stats
	var oldest *time.Duration
	var estimate float64
	err := q.QueryRow(ctx, statsSQL).Scan(&s.Pending, &s.Due, &s.Dead, &s.PublishedLastHour, &estimate, &oldest)
	if err != nil {
		return Stats{}, fmt.Errorf("read outbox stats: %w", err)
	}
	s.PublishedEstimate = max(int64(estimate)-s.Pending-s.Dead, s.PublishedLastHour)
	if oldest != nil {
		s.OldestPendingAge = max(*oldest, 0)
	}
	return s, nil
}

// DeadRow is a row that ran out of attempts, with the error of its last one.
type DeadRow struct {
	ID        int64
	EventID   string
	EventType string
	ProductID int64
	Attempts  int
	LastError string
	CreatedAt time.Time
	// LastAttemptAt is roughly when the row died: the time its next attempt
	// would have been due.
	LastAttemptAt time.Time
}

const listDeadSQL = `
	SELECT id, event_id::text, event_type, product_id, attempts, last_error, created_at, next_attempt_at
	FROM outbox
	WHERE status = 'dead' AND id > $1
	ORDER BY id
	LIMIT $2`

// ListDead returns up to limit dead rows with ids above afterID, in id order:
// pass the last id of a page to get the next one.
func ListDead(ctx context.Context, q Querier, afterID int64, limit int) ([]DeadRow, error) {
	rows, err := q.Query(ctx, listDeadSQL, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list dead outbox rows: %w", err)
	}
	dead, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DeadRow, error) {
		var d DeadRow
		err := row.Scan(&d.ID, &d.EventID, &d.EventType, &d.ProductID, &d.Attempts, &d.LastError, &d.CreatedAt, &d.LastAttemptAt)
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
	n, err := requeue(ctx, q, requeueOneSQL, id)
	if err != nil {
		return fmt.Errorf("requeue outbox row %d: %w", id, err)
	}
	if n == 0 {
		return productd.Errorf(productd.ENOTFOUND, "dead outbox row %d not found", id)
	}
	return nil
}

// requeueBatch bounds the rows one statement of RequeueAllDead updates.
const requeueBatch = 1000

// RequeueAllDead requeues every dead row, a bounded batch per statement, and
// returns how many it requeued.
func RequeueAllDead(ctx context.Context, q Querier) (int64, error) {
	var total int64
	for {
		n, err := requeue(ctx, q, requeueAllSQL, requeueBatch)
		total += n
		if err != nil {
			return total, fmt.Errorf("requeue dead outbox rows: %w", err)
		}
		if n < requeueBatch {
			return total, nil
		}
	}
}

// The statements of Requeue and RequeueAllDead: a dead row becomes pending,
// due now, with its attempts reset.
const (
	requeueSet    = `UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = now() WHERE status = 'dead' AND `
	requeueOneSQL = requeueSet + `id = $1`
	requeueAllSQL = requeueSet + `id = ANY(ARRAY(
		SELECT id FROM outbox WHERE status = 'dead' ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED))`
)

// requeue runs one of the requeue statements, then wakes the relays.
func requeue(ctx context.Context, q Querier, sql string, arg any) (int64, error) {
	tag, err := q.Exec(ctx, sql, arg)
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

// The ids are collected first (ARRAY runs once, as an init plan) so that
// the delete finds its rows through the primary key; "id IN (subquery)"
// lets the planner hash-join against a scan of the whole table.
const deletePublishedSQL = `
	DELETE FROM outbox WHERE id = ANY(ARRAY(
		SELECT id FROM outbox
		WHERE status = 'published' AND published_at < $1
		ORDER BY published_at
		LIMIT $2
		FOR UPDATE SKIP LOCKED))`

// DeletePublished deletes up to limit rows published before before, oldest
// first, and returns how many it deleted. Call it until it returns less than
// limit; bounded batches keep each transaction and its locks short.
func DeletePublished(ctx context.Context, q Querier, before time.Time, limit int) (int64, error) {
	tag, err := q.Exec(ctx, deletePublishedSQL, before, limit)
	if err != nil {
		return 0, fmt.Errorf("delete published outbox rows: %w", err)
	}
	return tag.RowsAffected(), nil
}
