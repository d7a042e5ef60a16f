package relay

import (
	"context"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/productd/productd/chores"
)

// SweepArgs is the chore that drains the outbox.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "outbox_sweep" }

// RetentionArgs is the chore that deletes old published rows.
type RetentionArgs struct{}

// Kind implements river.JobArgs.
func (RetentionArgs) Kind() string { return "outbox_retention" }

// RegisterChores registers r's chores with s: the sweep every
// Config.SweepInterval, the safety net behind the LISTEN wake-ups and what
// publishes rows whose retry time has come, and the retention of published
// rows every Config.RetentionInterval. A sweep publishes through r, so run
// s only while r runs: stop s before r's Run returns.
func (r *Relay) RegisterChores(s *chores.Scheduler) error {
	if err := chores.Register(s, SweepArgs{}, &sweepWorker{r: r}, r.cfg.SweepInterval); err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	if err := chores.Register(s, RetentionArgs{}, &retentionWorker{r: r}, r.cfg.RetentionInterval); err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	return nil
}

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	r *Relay
}

// Work drains the outbox once the relay runs (and so follows the
// maintenance switch). Neither an absent broker nor running out of time on a
// large backlog is the job's failure: the relay is paused, or has made
// progress, and the next period carries on.
func (w *sweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	select {
	case <-w.r.running:
	case <-ctx.Done():
		return nil
	}
	n, err := w.r.Drain(ctx)
	if isBrokerAway(err) {
		w.r.log.WithError(err).Debug("relay: sweep skipped, broker unavailable")
		return nil
	}
	if err != nil && ctx.Err() != nil {
		w.r.log.WithField("published", n).Info("relay: sweep stopped at its time limit; the next one carries on")
		return nil
	}
	if err != nil {
		w.r.stats.errors.Add(1)
		return fmt.Errorf("sweep outbox: %w", err)
	}
	if n > 0 {
		w.r.log.WithField("published", n).Debug("relay: sweep published rows")
	}
	return nil
}

type retentionWorker struct {
	river.WorkerDefaults[RetentionArgs]
	r *Relay
}

// Work deletes the published rows the retention settings let go.
func (w *retentionWorker) Work(ctx context.Context, _ *river.Job[RetentionArgs]) error {
	_, err := w.r.Retain(ctx)
	return err
}
