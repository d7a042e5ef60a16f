package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// CountCap is where the exact counts of Stats stop: above it a count is the
// planner's estimate (Count.Estimate), so that a large backlog costs the
// dashboard no more than a small one.
const CountCap = 10000

// RateSample bounds the rows a rate of Stats reads: when more rows than
// this fall in the window, the rate is measured over the time the newest
// RateSample of them took.
const RateSample = 5000

// RateWindow is the window of the rates of Stats.
const RateWindow = 5 * time.Minute

// Count is a number of rows: exact up to CountCap, an estimate above.
type Count struct {
	N int64
	// Estimate says N is the planner's estimate, not a count.
	Estimate bool
}

// Rate is rows per second over Window, counted exactly.
type Rate struct {
	PerSecond float64
	Window    time.Duration
	// Rows is how many rows fell in Window.
	Rows int64
}

// Stats is the outbox at a glance, for the ops dashboard. Every figure is
// read from an index that stays small (the backlog, the dead rows, the
// retries, the newest published rows) or from the planner's statistics, so
// it costs the same at millions of published rows as at none.
type Stats struct {
	// Pending counts rows waiting for publication, due or not.
	Pending Count
	// Due counts the pending rows whose next attempt time has come.
	Due Count
	// Retrying counts the pending rows that failed at least once.
	Retrying Count
	// Dead counts rows that ran out of attempts.
	Dead Count
	// Published estimates the published rows still kept (retention deletes
	// them after a while): always an estimate.
	Published Count
	// OldestPendingAge is how long the oldest pending row has waited; zero
	// when nothing is pending.
	OldestPendingAge time.Duration
	// Created and PublishedRate are the rows written and published per
	// second over the last RateWindow (or the newest RateSample rows).
	Created       Rate
	PublishedRate Rate
}

// The statements of ReadStats. Each count reads at most CountCap + 1 index
// entries.
const (
	pendingWhere  = `status = 'pending'`
	dueWhere      = `status = 'pending' AND next_attempt_at <= now()`
	retryingWhere = `status = 'pending' AND attempts > 0`
	deadWhere     = `status = 'dead'`
	statsSQL      = `
	SELECT
		(SELECT count(*) FROM (SELECT 1 FROM outbox WHERE ` + pendingWhere + ` LIMIT $1) s),
		(SELECT count(*) FROM (SELECT 1 FROM outbox WHERE ` + dueWhere + ` ORDER BY next_attempt_at LIMIT $1) s),
		(SELECT count(*) FROM (SELECT 1 FROM outbox WHERE ` + retryingWhere + ` ORDER BY next_attempt_at LIMIT $1) s),
		(SELECT count(*) FROM (SELECT 1 FROM outbox WHERE ` + deadWhere + ` LIMIT $1) s),
		(SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'outbox'::regclass),
		(SELECT now() - created_at FROM outbox WHERE status = 'pending' ORDER BY id LIMIT 1)`
	// The newest rows first, through the primary key and the published
	// index: how many fell in the window and when the oldest of them came.
	createdRateSQL = `
	SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)
	FROM (SELECT created_at FROM outbox ORDER BY id DESC LIMIT $1) s
	WHERE created_at > now() - $2 * interval '1 microsecond'`
	publishedRateSQL = `
	SELECT count(*), coalesce(extract(epoch FROM now() - min(published_at)), 0)
	FROM (SELECT published_at FROM outbox WHERE status = 'published' AND published_at > now() - $2 * interval '1 microsecond'
		ORDER BY published_at DESC LIMIT $1) s`
)

// ReadStats computes Stats.
func ReadStats(ctx context.Context, q Querier) (Stats, error) {
	var s Stats
	var oldest *time.Duration
	var total int64
	err := q.QueryRow(ctx, statsSQL, CountCap+1).Scan(&s.Pending.N, &s.Due.N, &s.Retrying.N, &s.Dead.N, &total, &oldest)
	if err != nil {
		return Stats{}, fmt.Errorf("read outbox stats: %w", err)
	}
	for _, c := range []struct {
		count *Count
		where string
	}{{&s.Pending, pendingWhere}, {&s.Due, dueWhere}, {&s.Retrying, retryingWhere}, {&s.Dead, deadWhere}} {
		if c.count.N > CountCap {
			if *c.count, err = Estimate(ctx, q, `SELECT 1 FROM outbox WHERE `+c.where); err != nil {
				return Stats{}, fmt.Errorf("read outbox stats: %w", err)
			}
			c.count.N = max(c.count.N, CountCap+1)
		}
	}
	if oldest != nil {
		s.OldestPendingAge = max(*oldest, 0)
	}
	if s.Created, err = readRate(ctx, q, createdRateSQL); err != nil {
		return Stats{}, fmt.Errorf("read outbox stats: created rate: %w", err)
	}
	if s.PublishedRate, err = readRate(ctx, q, publishedRateSQL); err != nil {
		return Stats{}, fmt.Errorf("read outbox stats: published rate: %w", err)
	}
	// The table's estimate lags; the rows published in the window are at
	// least there.
	s.Published = Count{N: max(total-s.Pending.N-s.Dead.N, s.PublishedRate.Rows), Estimate: true}
	return s, nil
}

// readRate runs one of the rate statements.
func readRate(ctx context.Context, q Querier, sql string) (Rate, error) {
	var r Rate
	var span float64
	if err := q.QueryRow(ctx, sql, RateSample, RateWindow.Microseconds()).Scan(&r.Rows, &span); err != nil {
		return Rate{}, err
	}
	r.Window = RateWindow
	if r.Rows >= RateSample && span > 0 {
		// The sample filled before the window did: the rate is over the
		// time the sample took.
		r.Window = time.Duration(span * float64(time.Second))
	}
	r.PerSecond = float64(r.Rows) / r.Window.Seconds()
	return r, nil
}

// Estimate returns the planner's estimate of the rows query returns, from
// EXPLAIN: it scales the table's statistics by its current size, so it
// follows a growing table between ANALYZEs, yet costs no row reads.
func Estimate(ctx context.Context, q Querier, query string, args ...any) (Count, error) {
	// A string, not []byte: pgx's json codec would decode into a []byte
	// as JSON.
	var plan string
	if err := q.QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+query, args...).Scan(&plan); err != nil {
		return Count{}, fmt.Errorf("estimate rows: %w", err)
	}
	var out []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		} `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(plan), &out); err != nil || len(out) == 0 {
		return Count{}, fmt.Errorf("estimate rows: unreadable plan %q: %v", plan, err)
	}
	return Count{N: int64(out[0].Plan.Rows), Estimate: true}, nil
}

// Retry is a pending row that failed at least once, waiting for its next
// attempt.
type Retry struct {
	ID            int64
	EventType     string
	ProductID     int64
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
}

// RetryGroup counts the rows waiting for their attempt-th retry.
type RetryGroup struct {
	Attempts      int
	Rows          int64
	NextAttemptAt time.Time
}

const (
	retryGroupsSQL = `
	SELECT attempts, count(*), min(next_attempt_at)
	FROM (SELECT attempts, next_attempt_at FROM outbox WHERE ` + retryingWhere + ` ORDER BY next_attempt_at LIMIT $1) s
	GROUP BY attempts ORDER BY attempts`
	nextRetriesSQL = `
	SELECT id, event_type, product_id, attempts, next_attempt_at, last_error
	FROM outbox WHERE ` + retryingWhere + ` ORDER BY next_attempt_at LIMIT $1`
)

// ReadRetries returns the rows waiting for a retry grouped by attempt
// number (counting at most CountCap rows), and the next limit of them to be
// tried, with their last errors.
func ReadRetries(ctx context.Context, q Querier, limit int) ([]RetryGroup, []Retry, error) {
	rows, err := q.Query(ctx, retryGroupsSQL, CountCap)
	if err != nil {
		return nil, nil, fmt.Errorf("read outbox retries: %w", err)
	}
	groups, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (RetryGroup, error) {
		var g RetryGroup
		return g, row.Scan(&g.Attempts, &g.Rows, &g.NextAttemptAt)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read outbox retries: %w", err)
	}
	rows, err = q.Query(ctx, nextRetriesSQL, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("read outbox retries: %w", err)
	}
	next, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Retry, error) {
		var r Retry
		return r, row.Scan(&r.ID, &r.EventType, &r.ProductID, &r.Attempts, &r.NextAttemptAt, &r.LastError)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read outbox retries: %w", err)
	}
	return groups, next, nil
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
