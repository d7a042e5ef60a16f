package relay

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/internal/backoff"
	"github.com/productd/productd/outbox"
)

// The waits of the listener's reconnection and of the dispatcher after a
// failed drain.
const (
	retryMin = 50 * time.Millisecond
	retryMax = 5 * time.Second
)

// closeTimeout bounds the goodbye to Postgres of the listener's connection.
const closeTimeout = 2 * time.Second

// closeConn closes conn, waiting at most closeTimeout.
func closeConn(ctx context.Context, conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	_ = conn.Close(ctx)
}

// listen LISTENs on outbox.NotifyChannel on a connection of its own, outside
// the pool, and asks for a drain on every notification, until ctx ends. A
// lost connection is replaced with backoff; each new one asks for a drain
// too, for the rows committed while nobody listened.
func (r *Relay) listen(ctx context.Context) {
	attempt := 0
	for ctx.Err() == nil {
		conn, err := r.listenConn(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			attempt++
			wait := backoff.Exponential(attempt, retryMin, retryMax)
			r.log.WithError(err).WithFields(logrus.Fields{"attempt": attempt, "retry_in": wait.String()}).
				Warn("relay: cannot listen for outbox notifications; the periodic sweep still runs")
			backoff.Sleep(ctx, wait)
			continue
		}
		attempt = 0
		r.log.WithField("channel", outbox.NotifyChannel).Debug("relay: listening for outbox notifications")
		r.signal()
		for {
			if _, err = conn.WaitForNotification(ctx); err != nil {
				break
			}
			r.signal()
		}
		closeConn(ctx, conn)
		if ctx.Err() == nil {
			r.log.WithError(err).Warn("relay: lost the notification connection; reconnecting")
		}
	}
}

func (r *Relay) listenConn(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, r.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{outbox.NotifyChannel}.Sanitize()); err != nil {
		closeConn(ctx, conn)
		return nil, err
	}
	return conn, nil
}

// dispatch drains whenever asked, until ctx ends. Requests that arrive
// during a drain fold into one more drain after it, which sees their rows.
// While the broker is away it waits for it rather than spin; after any
// other failure it waits with backoff and tries again.
//
// After a drain that published rows it polls: rows are arriving, and a
// writer that wakes nobody (or a wake-up lost on the way) then waits
// Config.PollInterval at most, not until the next sweep. Each drain that
// finds nothing doubles the wait, and once the wait reaches
// Config.SweepInterval the sweep takes over.
func (r *Relay) dispatch(ctx context.Context) {
	poll := time.NewTimer(time.Hour)
	poll.Stop()
	defer poll.Stop()
	var wait time.Duration // the next poll's; zero when not polling
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-poll.C:
		}
		published := r.dispatchDrain(ctx)
		if ctx.Err() != nil {
			return
		}
		switch {
		case published > 0:
			wait = r.cfg.PollInterval
		case wait > 0:
			wait *= 2
		}
		if wait >= r.cfg.SweepInterval {
			wait = 0
		}
		if wait > 0 {
			poll.Reset(wait)
		}
	}
}

// dispatchDrain drains until a drain succeeds or ctx ends, and returns how
// many rows the drains published.
func (r *Relay) dispatchDrain(ctx context.Context) int64 {
	var published int64
	for attempt := 1; ; attempt++ {
		if err := r.broker.WaitConnected(ctx); err != nil {
			return published
		}
		n, err := r.Drain(ctx)
		published += n
		if err == nil || ctx.Err() != nil {
			return published
		}
		if !isBrokerAway(err) {
			r.stats.errors.Add(1)
			r.log.WithError(err).WithField("attempt", attempt).Error("relay: drain failed")
		}
		if errors.Is(err, ErrNoRoute) {
			// The publisher asked for the topology when its messages
			// came back; asking again covers a declaration that failed
			// (the broker logs it), and drains wait for one that works.
			r.broker.Repair("the relay's messages have no route")
		}
		backoff.Sleep(ctx, backoff.Exponential(attempt, retryMin, retryMax))
	}
}
