package relay

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// QueueName is the River queue of the relay's jobs.
const QueueName = "productd_relay"

// SweepArgs is the periodic job that drains the outbox.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "outbox_sweep" }

// RetentionArgs is the periodic job that deletes old published rows and
// expired idempotency keys.
type RetentionArgs struct{}

// Kind implements river.JobArgs.
func (RetentionArgs) Kind() string { return "outbox_retention" }

// periodicOpts make a periodic job unique while one is waiting or running,
// so that a slow run is not queued behind by more of the same, but not once
// it completed: River's default states include completed, which would block
// the next insert until the completed job is cleaned away.
func periodicOpts() *river.InsertOpts {
	return &river.InsertOpts{
		Queue:       QueueName,
		MaxAttempts: 1, // the next period is the retry
		UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending,
			rivertype.JobStateRunning, rivertype.JobStateScheduled,
		}},
	}
}

// newRiverClient returns the River client of r: both workers, both periodic
// jobs (registered on every client, as any of them may be elected leader;
// RunOnStart so that a new leader does not wait a whole period), and River's
// job retention.
func newRiverClient(pool *pgxpool.Pool, r *Relay, log *slog.Logger) (*river.Client[pgx.Tx], error) {
	workers := river.NewWorkers()
	river.AddWorker(workers, &sweepWorker{r: r})
	river.AddWorker(workers, &retentionWorker{r: r})
	periodic := func(every time.Duration, args river.JobArgs) *river.PeriodicJob {
		return river.NewPeriodicJob(river.PeriodicInterval(every),
			func() (river.JobArgs, *river.InsertOpts) { return args, periodicOpts() },
			&river.PeriodicJobOpts{ID: args.Kind(), RunOnStart: true})
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger:  log,
		Queues:  map[string]river.QueueConfig{QueueName: {MaxWorkers: 2}},
		Workers: workers,
		PeriodicJobs: []*river.PeriodicJob{
			periodic(r.cfg.SweepInterval, SweepArgs{}),
			periodic(r.cfg.RetentionInterval, RetentionArgs{}),
		},
		JobTimeout:                  r.cfg.JobTimeout,
		CompletedJobRetentionPeriod: r.cfg.CompletedJobRetention,
		CancelledJobRetentionPeriod: r.cfg.CancelledJobRetention,
		DiscardedJobRetentionPeriod: r.cfg.DiscardedJobRetention,
	})
	if err != nil {
		return nil, fmt.Errorf("create river client: %w", err)
	}
	return client, nil
}

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	r *Relay
}

// Work drains the outbox. Neither an absent broker nor running out of time
// on a large backlog is the job's failure: the relay is paused, or has made
// progress, and the next period carries on.
func (w *sweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
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

// Work deletes what the retention settings let go.
func (w *retentionWorker) Work(ctx context.Context, _ *river.Job[RetentionArgs]) error {
	_, err := w.r.Retain(ctx)
	return err
}
