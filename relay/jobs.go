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
// rows every Config.RetentionInterval. A sweep only wakes r, which drains
// while its Run runs.
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

// Work asks the relay for a drain and returns. The drain runs in Run's
// dispatcher, like a notification's: it follows the maintenance switch, waits
// for an absent broker, is retried after a failure, and is bounded by Run's
// shutdown, none of which a run of this job would have to repeat.
func (w *sweepWorker) Work(context.Context, *river.Job[SweepArgs]) error {
	w.r.signal()
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
