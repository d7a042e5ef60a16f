package relay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/outbox"
)

// The relay's states as it reports them in its status row.
const (
	StateRunning    = "running"
	StatePaused     = "paused"
	StateBrokerDown = "broker_down"
	StateStopped    = "stopped"
)

// Control is the relay's maintenance switch, kept in Postgres so that it
// reaches every relay process and survives their restarts.
type Control struct {
	// Paused stops every relay from claiming rows: they stay pending, with
	// their attempts untouched, until Resume.
	Paused bool
	// ChangedBy, Reason and ChangedAt say who flipped the switch last, why
	// and when.
	ChangedBy string
	Reason    string
	ChangedAt time.Time
}

// ReadControl returns the maintenance switch.
func ReadControl(ctx context.Context, q outbox.Querier) (Control, error) {
	var c Control
	err := q.QueryRow(ctx, `SELECT paused, changed_by, reason, changed_at FROM relay_control`).
		Scan(&c.Paused, &c.ChangedBy, &c.Reason, &c.ChangedAt)
	if err != nil {
		return Control{}, fmt.Errorf("read relay control: %w", err)
	}
	return c, nil
}

// SetPaused pauses (paused true) or resumes every relay, recording by and
// reason, and returns the switch as it now is. Relays notice within
// Config.StatusInterval; a resume also wakes them through the outbox's
// notification channel, so that the rows that waited go out at once.
func SetPaused(ctx context.Context, q outbox.Querier, paused bool, by, reason string) (Control, error) {
	var c Control
	err := q.QueryRow(ctx, `
		UPDATE relay_control SET paused = $1, changed_by = $2, reason = $3, changed_at = now()
		RETURNING paused, changed_by, reason, changed_at`, paused, by, reason).
		Scan(&c.Paused, &c.ChangedBy, &c.Reason, &c.ChangedAt)
	if err != nil {
		return Control{}, fmt.Errorf("set relay paused=%t: %w", paused, err)
	}
	if !paused {
		if _, err := q.Exec(ctx, `SELECT pg_notify($1, '')`, outbox.NotifyChannel); err != nil {
			return c, fmt.Errorf("wake relays: %w", err)
		}
	}
	return c, nil
}

// Status is what one relay process reported about itself.
type Status struct {
	// Process names the process: host, pid and a random suffix.
	Process string
	// State is StateRunning, StatePaused, StateBrokerDown or StateStopped,
	// Since when it is so, and Reason why, in words.
	State  string
	Since  time.Time
	Reason string
	// BrokerState is the connection's state and BrokerSince when it last
	// changed, as this process saw it.
	BrokerState string
	BrokerSince *time.Time
	// LastBatch is the last batch that had rows; nil before the first.
	LastBatch *BatchReport
	// Published and Failed count the process's rows since it started.
	Published int64
	Failed    int64
	StartedAt time.Time
	// UpdatedAt is the process's last report: a process that stopped
	// reporting (killed, or cut off from Postgres) shows an old one.
	UpdatedAt time.Time
}

// BatchReport is one batch's outcome.
type BatchReport struct {
	At          time.Time
	Rows        int
	Published   int
	Failed      int
	Unconfirmed int
	Duration    time.Duration
	// Outcome is "published" (every row confirmed), "partly failed" (some
	// returned or nacked), "unconfirmed" (the broker went away mid-batch) or
	// "no route" (see PausedNoRoute); Unconfirmed counts the rows of the
	// last two.
	Outcome string
}

// ReadStatuses returns the status rows of the relay processes that reported
// within since, newest first.
func ReadStatuses(ctx context.Context, q outbox.Querier, since time.Duration) ([]Status, error) {
	rows, err := q.Query(ctx, `
		SELECT process, state, since, reason, broker_state, broker_since, last_batch_at, last_batch_rows,
			last_batch_published, last_batch_failed, last_batch_ms, last_batch_outcome, published, failed,
			started_at, updated_at
		FROM relay_status WHERE updated_at > now() - $1 * interval '1 microsecond'
		ORDER BY updated_at DESC, process`, since.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("read relay status: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Status, error) {
		var s Status
		var at *time.Time
		var b BatchReport
		var ms float64
		err := row.Scan(&s.Process, &s.State, &s.Since, &s.Reason, &s.BrokerState, &s.BrokerSince, &at, &b.Rows,
			&b.Published, &b.Failed, &ms, &b.Outcome, &s.Published, &s.Failed, &s.StartedAt, &s.UpdatedAt)
		if at != nil {
			b.At, b.Duration = *at, time.Duration(ms*float64(time.Millisecond))
			b.Unconfirmed = b.Rows - b.Published - b.Failed
			s.LastBatch = &b
		}
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("read relay status: %w", err)
	}
	return out, nil
}

// statusRetention is how long the row of a process that stopped reporting is
// kept, for the dashboard to show it as gone.
const statusRetention = time.Hour

// maintenance is the relay's side of the maintenance switch and of its
// status row. Its zero value lets the relay run, so that a Relay whose Run
// was not called (a test calling Drain) is not paused.
type maintenance struct {
	paused atomic.Bool
	// held counts the batches the switch held back.
	held    atomic.Int64
	process string
	started time.Time

	mu        sync.Mutex
	lastBatch *BatchReport
	failed    int64
	state     string
	since     time.Time
	reason    string
	broker    broker.State
	brokerAt  time.Time
}

// running reports whether the relay may claim rows.
func (m *maintenance) running() bool {
	if m.paused.Load() {
		m.held.Add(1)
		return false
	}
	return true
}

// noteBatch records a batch that had rows.
func (m *maintenance) noteBatch(rows, published, failed, unconfirmed, noRoute int, took time.Duration) {
	outcome := "published"
	switch {
	case noRoute > 0:
		outcome, unconfirmed = "no route", unconfirmed+noRoute
	case unconfirmed > 0:
		outcome = "unconfirmed"
	case failed > 0:
		outcome = "partly failed"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failed += int64(failed)
	m.lastBatch = &BatchReport{
		At: time.Now(), Rows: rows, Published: published, Failed: failed, Unconfirmed: unconfirmed,
		Duration: took, Outcome: outcome,
	}
}

// pausedNow reads the switch inside a batch's transaction, before it
// claims: once SetPaused has committed, no batch that starts afterwards
// publishes, in any process; only batches already under way finish.
func (r *Relay) pausedNow(ctx context.Context, tx pgx.Tx) (bool, error) {
	var paused bool
	if err := tx.QueryRow(ctx, `SELECT paused FROM relay_control`).Scan(&paused); err != nil {
		return false, fmt.Errorf("read relay control: %w", err)
	}
	if paused {
		r.maint.held.Add(1)
	}
	return paused, nil
}

// last returns the last batch that had rows, nil before the first.
func (m *maintenance) last() *BatchReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lastBatch == nil {
		return nil
	}
	b := *m.lastBatch
	return &b
}

// loadControl reads the switch once, before the relay's first drain, so
// that a relay started while paused publishes nothing.
func (r *Relay) loadControl(ctx context.Context) {
	c, err := ReadControl(ctx, r.pool)
	if err != nil {
		r.log.WithError(err).Warn("relay: cannot read the maintenance switch; running until it can")
		return
	}
	r.applyControl(c)
}

// applyControl follows the switch, logging every change and draining at once
// on a resume.
func (r *Relay) applyControl(c Control) {
	if r.maint.paused.Swap(c.Paused) == c.Paused {
		return
	}
	entry := r.log.WithFields(logrus.Fields{"by": c.ChangedBy, "reason": c.Reason})
	if c.Paused {
		entry.Warn("relay: paused for maintenance; rows wait in the outbox")
		return
	}
	entry.Info("relay: resumed after maintenance")
	r.signal()
}

// maintain follows the maintenance switch and writes the process's status
// row every Config.StatusInterval until ctx ends, then reports the process
// stopped.
func (r *Relay) maintain(ctx context.Context) {
	r.maint.process, r.maint.started = processName(), time.Now()
	tick := time.NewTicker(r.cfg.StatusInterval)
	defer tick.Stop()
	for n := 0; ; n++ {
		if c, err := ReadControl(ctx, r.pool); err == nil {
			r.applyControl(c)
		} else if ctx.Err() == nil {
			r.log.WithError(err).Debug("relay: cannot read the maintenance switch")
		}
		if err := r.report(ctx, "", n%60 == 0); err != nil && ctx.Err() == nil {
			r.log.WithError(err).Debug("relay: cannot write its status")
		}
		select {
		case <-ctx.Done():
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := r.report(stopCtx, StateStopped, false); err != nil {
				r.log.WithError(err).Debug("relay: cannot report its stop")
			}
			return
		case <-tick.C:
		}
	}
}

// report upserts the process's status row; force sets the state (the stop).
// prune also deletes rows of processes silent for longer than
// statusRetention.
func (r *Relay) report(ctx context.Context, force string, prune bool) error {
	now := time.Now()
	state, reason := force, ""
	bs := r.broker.State()
	switch {
	case force != "":
		reason = "the process is stopping"
	case r.maint.paused.Load():
		state, reason = StatePaused, "paused for maintenance"
	case bs != broker.StateConnected:
		state, reason = StateBrokerDown, "the broker connection is "+string(bs)+"; rows wait in the outbox"
	case r.pause().Reason == PausedNoRoute:
		state, reason = StateNoRoute, r.pause().Detail
	default:
		state = StateRunning
	}
	stats := r.Stats()
	m := &r.maint
	m.mu.Lock()
	if m.state != state {
		m.state, m.since = state, now
	}
	m.reason = reason
	if m.broker != bs || m.brokerAt.IsZero() {
		m.broker, m.brokerAt = bs, now
	}
	var b BatchReport
	hasBatch := m.lastBatch != nil
	if hasBatch {
		b = *m.lastBatch
	}
	since, brokerAt, failed := m.since, m.brokerAt, m.failed
	m.mu.Unlock()

	var batchAt *time.Time
	if hasBatch {
		batchAt = &b.At
	}
	_, err := r.pool.Exec(ctx, `
		INSERT INTO relay_status (process, state, since, reason, broker_state, broker_since, last_batch_at,
			last_batch_rows, last_batch_published, last_batch_failed, last_batch_ms, last_batch_outcome,
			published, failed, started_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, now())
		ON CONFLICT (process) DO UPDATE SET state = $2, since = $3, reason = $4, broker_state = $5,
			broker_since = $6, last_batch_at = $7, last_batch_rows = $8, last_batch_published = $9,
			last_batch_failed = $10, last_batch_ms = $11, last_batch_outcome = $12, published = $13,
			failed = $14, updated_at = now()`,
		m.process, state, since, reason, string(bs), brokerAt, batchAt, b.Rows, b.Published, b.Failed,
		float64(b.Duration.Microseconds())/1000, b.Outcome, stats.Published, failed, m.started)
	if err != nil {
		return fmt.Errorf("write relay status: %w", err)
	}
	if prune {
		_, err = r.pool.Exec(ctx, `DELETE FROM relay_status WHERE updated_at < now() - $1 * interval '1 microsecond'`,
			statusRetention.Microseconds())
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("prune relay status: %w", err)
		}
	}
	return nil
}

// processName names this process in the status table: host, pid and a
// random suffix, since one process may run several relays (tests do).
func processName() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
