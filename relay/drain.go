package relay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

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
// When ctx ends, the batches in flight still finish (abandoning one would
// only turn its confirmed messages into duplicates); no new one starts.
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
		for gctx.Err() == nil {
			n, more, err := r.batch(gctx)
			total.Add(n)
			if err != nil || !more {
				return err
			}
			// A full batch: there is a backlog, worth another transaction.
			if pumps.Add(1) <= int32(r.cfg.Concurrency) {
				g.Go(pump)
			} else {
				pumps.Add(-1)
			}
		}
		return nil
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

// batch claims, publishes and marks one batch in one transaction. more
// reports a full batch: there may be more rows due.
func (r *Relay) batch(ctx context.Context) (published int64, more bool, err error) {
	if !r.maint.running() {
		return 0, false, nil // paused for maintenance: the rows wait
	}
	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	err = r.pub.Ready(readyCtx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return 0, false, ctx.Err()
		}
		return 0, false, fmt.Errorf("%w: %w", ErrBrokerUnavailable, err)
	}

	start := time.Now()
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("begin relay transaction: %w", err)
	}
	// From here on the batch finishes even if ctx ends, unless the relay
	// halts, and each step that records its outcome is bounded.
	wctx, stop := r.finishing(ctx)
	defer stop()
	defer r.bounded(wctx, tx.Rollback) //nolint:errcheck // a no-op after Commit

	// The batch's commit need not wait for its WAL to reach the disk: a
	// crash can lose only the marks, never an event, and a lost mark makes
	// the row pending again, published once more (delivery is at least
	// once). Not waiting keeps each batch's turn short.
	if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
		return 0, false, fmt.Errorf("relay transaction settings: %w", err)
	}
	if paused, err := r.pausedNow(ctx, tx); err != nil || paused {
		return 0, false, err
	}

	rows, err := outbox.Claim(ctx, tx, r.cfg.BatchSize)
	if err != nil || len(rows) == 0 {
		return 0, false, err
	}
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
