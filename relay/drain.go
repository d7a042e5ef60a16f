package relay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/internal/backoff"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/outbox"
)

// readyTimeout bounds the wait for a publishing channel before a batch: a
// broker that just went away makes the drain stop rather than wait.
const readyTimeout = 5 * time.Second

// Drain publishes due rows, in batches of Config.BatchSize with up to
// Config.Concurrency batches in flight, until a claim comes back short, and
// returns how many rows it published. It starts with one batch and adds
// another each time one comes back full, so that a trickle of rows costs
// one transaction, not Concurrency of them. It returns ErrBrokerUnavailable
// at once when the broker is unreachable, and as soon as a batch goes
// unanswered; the rows concerned stay pending, their attempts untouched.
// Drains may run concurrently, here and in other processes.
//
// While a full batch waits for its confirmations, the next one is claimed
// in a transaction of its own, so that the broker is never left waiting for
// a claim's round trips between two batches (a pause that commits meanwhile
// lets that batch finish, as one under way).
//
// When ctx ends, the batches in flight still finish (abandoning one would
// only turn its confirmed messages into duplicates); no new one starts, and
// a batch claimed ahead goes back untouched.
func (r *Relay) Drain(ctx context.Context) (int64, error) {
	if !r.maint.running() {
		return 0, nil // paused for maintenance: the rows wait
	}
	if !r.broker.Connected() {
		r.noteDrain(ErrBrokerUnavailable, 0)
		return 0, ErrBrokerUnavailable
	}
	if r.stillNoRoute() {
		return 0, fmt.Errorf("%w: waiting for the topology to be declared again", ErrNoRoute)
	}
	// A declaration from now on may have brought back what this drain finds
	// missing.
	declarations := r.broker.Stats().Declarations
	var total atomic.Int64
	var pumps atomic.Int32
	g, gctx := errgroup.WithContext(ctx)
	var pump func() error
	pump = func() error {
		defer pumps.Add(-1)
		next, err := r.claim(gctx)
		for next != nil {
			cur := next
			next = nil
			// A full batch says more rows are due: claim the next one while
			// this one waits for its confirmations, so that the broker gets
			// it as soon as it has answered for this one, not a claim's
			// round trips later.
			var ahead chan claimResult
			if r.pipeline && len(cur.rows) == r.cfg.BatchSize {
				ahead = make(chan claimResult, 1)
				go func() {
					c, err := r.claim(gctx)
					ahead <- claimResult{c, err}
				}()
			}
			n, more, ferr := r.finish(gctx, cur)
			total.Add(n)
			if ahead != nil {
				res := <-ahead
				next, err = res.c, res.err
			} else if ferr == nil && more && gctx.Err() == nil {
				next, err = r.claim(gctx)
			}
			if ferr != nil || !more || gctx.Err() != nil {
				// Rows claimed ahead go back as they were.
				r.abandon(gctx, next)
				return ferr
			}
			// A full batch: there is a backlog, worth another transaction.
			if pumps.Add(1) <= int32(r.cfg.Concurrency) {
				g.Go(pump)
			} else {
				pumps.Add(-1)
			}
		}
		return err
	}
	pumps.Add(1)
	g.Go(pump)
	err := g.Wait()
	if err == nil {
		err = ctx.Err()
	}
	r.noteDrain(err, declarations)
	return total.Load(), err
}

// claimed is a batch whose rows its transaction has claimed, not yet
// published.
type claimed struct {
	tx    pgx.Tx
	rows  []outbox.Row
	start time.Time
}

type claimResult struct {
	c   *claimed
	err error
}

// claim begins a batch's transaction and claims up to Config.BatchSize rows
// in it. It returns nil, the transaction rolled back, when there is nothing
// to publish: no row due, the relay paused, or an error.
func (r *Relay) claim(ctx context.Context) (*claimed, error) {
	if !r.maint.running() {
		return nil, nil // paused for maintenance: the rows wait
	}
	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	err := r.pub.Ready(readyCtx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", ErrBrokerUnavailable, err)
	}

	start := time.Now()
	// The batch's commit need not wait for its WAL to reach the disk: a
	// crash can lose only the marks, never an event, and a lost mark makes
	// the row pending again, published once more (delivery is at least
	// once). Not waiting keeps each batch's turn short. The setting goes
	// with the BEGIN, in the same round trip.
	tx, err := r.pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: "BEGIN; SET LOCAL synchronous_commit = off"})
	if err != nil {
		return nil, fmt.Errorf("begin relay transaction: %w", err)
	}
	c := &claimed{tx: tx, start: start}
	if paused, err := r.pausedNow(ctx, tx); err != nil || paused {
		r.abandon(ctx, c)
		return nil, err
	}
	c.rows, err = outbox.Claim(ctx, tx, r.cfg.BatchSize)
	if err != nil || len(c.rows) == 0 {
		r.abandon(ctx, c)
		return nil, err
	}
	return c, nil
}

// abandon rolls back c's transaction, if there is one: its rows are pending
// again, as they were.
func (r *Relay) abandon(ctx context.Context, c *claimed) {
	if c == nil {
		return
	}
	wctx, stop := r.finishing(ctx)
	defer stop()
	r.bounded(wctx, c.tx.Rollback) //nolint:errcheck // the rows are pending again either way once the connection goes
}

// finish publishes c's rows, records what the broker said of each and
// commits. more reports a full batch: there may be more rows due.
func (r *Relay) finish(ctx context.Context, c *claimed) (published int64, more bool, err error) {
	tx, rows, start := c.tx, c.rows, c.start
	// From here on the batch finishes even if ctx ends, unless the relay
	// halts, and each step that records its outcome is bounded.
	wctx, stop := r.finishing(ctx)
	defer stop()
	defer r.bounded(wctx, tx.Rollback) //nolint:errcheck // a no-op after Commit

	msgs := make([]broker.Message, len(rows))
	observed := make([]func(broker.Result), len(rows))
	for i, row := range rows {
		msgs[i] = r.message(row)
		observed[i] = r.cfg.Observer.Publishing(row, &msgs[i].Publishing)
	}
	results := r.pub.Publish(wctx, msgs)
	for i, res := range results {
		observed[i](res)
	}
	if r.afterPublish != nil {
		if err := r.afterPublish(wctx, len(rows)); err != nil {
			return 0, false, err
		}
	}

	// Claim marked every row published; undo that for the others. Rows the
	// broker did not answer for, or returned for want of a queue its
	// topology should have, go back as they were: the fault is the
	// broker's, not the row's.
	var confirmedIDs []string
	var unanswered, held []int64
	var failures []outbox.Failure
	var noRoute *broker.ReturnedError
	for i, res := range results {
		row := rows[i]
		var ret *broker.ReturnedError
		switch {
		case res.Published():
			if r.onConfirmed != nil {
				confirmedIDs = append(confirmedIDs, row.EventID)
			}
		case res.Unanswered():
			unanswered = append(unanswered, row.ID)
		case errors.As(res.Err, &ret) && ret.ReplyCode == amqp.NoRoute && r.broker.Topology().Routes(ret.Exchange, ret.RoutingKey):
			held = append(held, row.ID)
			noRoute = ret
		default:
			failures = append(failures, r.failure(row, res))
		}
	}
	release := slices.Concat(unanswered, held)
	if err := r.bounded(wctx, func(ctx context.Context) error { return outbox.Release(ctx, tx, release) }); err != nil {
		return 0, false, err
	}
	if err := r.bounded(wctx, func(ctx context.Context) error { return outbox.MarkFailed(ctx, tx, failures) }); err != nil {
		return 0, false, err
	}
	if err := r.bounded(wctx, tx.Commit); err != nil {
		return 0, false, fmt.Errorf("commit relay batch: %w", err)
	}
	r.count(results, failures, len(held))
	if r.onConfirmed != nil {
		r.onConfirmed(confirmedIDs)
	}
	published = int64(len(rows) - len(release) - len(failures))
	r.maint.noteBatch(len(rows), int(published), len(failures), len(unanswered), len(held), time.Since(start))
	r.cfg.Observer.Batch(len(rows), time.Since(start))
	r.log.WithFields(logrus.Fields{
		"rows": len(rows), "published": published, "failed": len(failures), "unconfirmed": len(unanswered),
		"no_route": len(held), "duration_ms": float64(time.Since(start).Microseconds()) / 1000,
	}).Info("relay: batch")

	if len(held) > 0 {
		return published, false, fmt.Errorf("%w: %d of %d messages returned by exchange %q for key %q: %d %s",
			ErrNoRoute, len(held), len(rows), noRoute.Exchange, noRoute.RoutingKey, noRoute.ReplyCode, noRoute.ReplyText)
	}
	if len(unanswered) > 0 {
		r.log.WithFields(logrus.Fields{"unconfirmed": len(unanswered), "rows": len(rows)}).
			Warn("relay: broker did not answer for part of a batch; those rows stay pending with their attempts untouched")
		return published, false, fmt.Errorf("%w: %d of %d messages unconfirmed", ErrBrokerUnavailable, len(unanswered), len(rows))
	}
	return published, len(rows) == r.cfg.BatchSize, nil
}

// finishing returns the context of the end of a batch: it outlives ctx, so
// that a batch whose messages the broker confirmed gets to mark them (not
// marking them would publish them again), but it ends when the relay halts.
func (r *Relay) finishing(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(r.halt, cancel)
	return wctx, func() {
		stop()
		cancel()
	}
}

// bounded runs one statement of a batch's end within Config.MarkTimeout.
func (r *Relay) bounded(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.MarkTimeout)
	defer cancel()
	return fn(ctx)
}

// message is the AMQP message of row: the event as JSON, its id as the
// message id, its type as the routing key.
func (r *Relay) message(row outbox.Row) broker.Message {
	return broker.Message{
		Exchange:   r.broker.Topology().Exchange,
		RoutingKey: row.EventType,
		Publishing: amqp.Publishing{
			MessageId:   row.EventID,
			ContentType: "application/json",
			Type:        row.EventType,
			Timestamp:   row.CreatedAt,
			AppId:       "productd",
			Body:        row.Payload,
		},
	}
}

// failure decides what a returned or nacked publication costs row: an
// attempt, and a wait before the next one, or its life.
func (r *Relay) failure(row outbox.Row, res broker.Result) outbox.Failure {
	attempt := row.Attempts + 1
	f := outbox.Failure{ID: row.ID, Error: res.Outcome.String() + ": " + res.Err.Error()}
	entry := r.log.WithError(res.Err).WithFields(logrus.Fields{
		"row_id": row.ID, logging.FieldEventID: row.EventID, logging.FieldProductID: row.ProductID,
		"event_type": row.EventType, "attempt": attempt, "outcome": res.Outcome.String(),
	})
	if attempt >= r.cfg.MaxAttempts {
		f.Dead = true
		entry.Error("relay: publication failed for the last time; the row is dead")
		return f
	}
	f.RetryIn = backoff.Exponential(attempt, r.cfg.RetryBase, r.cfg.RetryMax)
	entry.WithField("retry_in", f.RetryIn.String()).Warn("relay: publication failed; will retry")
	return f
}

// count adds a batch to the counters; noRoute of its returned messages
// cost no attempt (see PausedNoRoute).
func (r *Relay) count(results []broker.Result, failures []outbox.Failure, noRoute int) {
	r.stats.batches.Add(1)
	returned := 0
	for _, res := range results {
		switch res.Outcome {
		case broker.Confirmed:
			r.stats.published.Add(1)
		case broker.Returned:
			returned++
		case broker.Nacked:
			r.stats.nacked.Add(1)
		default:
			r.stats.unknown.Add(1)
		}
	}
	r.stats.returned.Add(int64(returned - noRoute))
	r.stats.noRoute.Add(int64(noRoute))
	for _, f := range failures {
		if f.Dead {
			r.stats.dead.Add(1)
		}
	}
}

// isBrokerAway reports errors that mean "wait for the broker", not a fault.
func isBrokerAway(err error) bool {
	return errors.Is(err, ErrBrokerUnavailable) || errors.Is(err, ErrNoRoute) || errors.Is(err, broker.ErrClosed)
}
