// Package chores holds the process's River client and the periodic jobs
// (chores) that each owner of some data registers with it: the relay its
// outbox sweep and outbox retention, package db the retention of
// idempotency keys, and so on. Maintenance lives with the code that owns the
// data; this package only schedules it.
//
// River elects one leader among all the clients on a database, and only the
// leader schedules periodic jobs, from its own memory. Every process that
// runs a Scheduler must therefore register the same chores, whatever else it
// does: a chore registered by only some of them would not run while another
// leads. Any running client may then work the job the leader inserted.
//
// Each chore runs on start (so that a new leader leaves no gap), then every
// interval. At most one run of a chore is queued or running at a time, and a
// finished run never blocks the next one. A failed run is not retried: the
// next interval is the retry. Config.JobTimeout bounds a run (a worker's
// Timeout method can set its own bound), and River rescues a run stuck for an
// hour, so a chore must be safe to repeat.
//
// A Scheduler is used in two phases: Register every chore, then build the
// client (Client) or run it (Run, or Start and Stop); registering afterwards
// is an error.
//
//	s := chores.New(pool, chores.Config{}, log)
//	err := chores.Register(s, CleanupArgs{}, river.WorkFunc(cleanup), time.Minute)
//	...
//	err = s.Run(ctx) // until ctx ends
package chores

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/sirupsen/logrus"
	logrusslog "github.com/sirupsen/logrus/hooks/slog"

	"github.com/productd/productd/logging"
)

// QueueName is the River queue every chore runs in.
const QueueName = "productd_chores"

// Scheduler holds the chores registered with it and the River client that
// runs them. Create it with New.
type Scheduler struct {
	cfg  Config
	pool *pgxpool.Pool
	log  *logrus.Logger

	mu       sync.Mutex
	workers  *river.Workers
	periodic []*river.PeriodicJob
	kinds    []string
	client   *river.Client[pgx.Tx] // set by Client; registration is closed then
}

// New returns a Scheduler whose River client works in pool's database.
func New(pool *pgxpool.Pool, cfg Config, log *logrus.Logger) *Scheduler {
	return &Scheduler{cfg: cfg.withDefaults(), pool: pool, log: log, workers: river.NewWorkers()}
}

// Register adds the chore args, done by w every interval, to s. The kind of
// args names the chore, and no two chores may share one. It fails when the
// interval is not positive, the kind is taken, or s's client is built.
func Register[T river.JobArgs](s *Scheduler, args T, w river.Worker[T], every time.Duration) error {
	kind := args.Kind()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.client != nil:
		return fmt.Errorf("register chore %s: the River client is already built", kind)
	case every <= 0:
		return fmt.Errorf("register chore %s: interval %s is not positive", kind, every)
	case slices.Contains(s.kinds, kind):
		return fmt.Errorf("register chore %s: already registered", kind)
	}
	if err := river.AddWorkerSafely(s.workers, w); err != nil {
		return fmt.Errorf("register chore %s: %w", kind, err)
	}
	s.periodic = append(s.periodic, river.NewPeriodicJob(river.PeriodicInterval(every),
		func() (river.JobArgs, *river.InsertOpts) { return args, insertOpts() },
		&river.PeriodicJobOpts{ID: kind, RunOnStart: true}))
	s.kinds = append(s.kinds, kind)
	return nil
}

// insertOpts make a chore unique while a run of it is queued or running, so
// that a slow run does not pile more of the same behind it, but not once it
// finished: River's default unique states include completed, which would
// block the next run until River's cleaner deletes the completed one.
// ByQueue keeps jobs of the same kind in another queue (where an older
// release put them) from blocking these.
func insertOpts() *river.InsertOpts {
	return &river.InsertOpts{
		Queue:       QueueName,
		MaxAttempts: 1, // the next interval is the retry
		UniqueOpts: river.UniqueOpts{
			ByQueue: true,
			ByState: []rivertype.JobState{
				rivertype.JobStateAvailable, rivertype.JobStatePending,
				rivertype.JobStateRunning, rivertype.JobStateScheduled,
			},
		},
	}
}

// Kinds returns the kinds of the registered chores, in registration order.
func (s *Scheduler) Kinds() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.kinds)
}

// Client returns the River client of s, building it on the first call;
// registration is closed from then on. Other packages use it for what needs
// River's client without running jobs, such as a River UI handler.
func (s *Scheduler) Client() (*river.Client[pgx.Tx], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		return s.client, nil
	}
	if err := s.cfg.validate(); err != nil {
		return nil, err
	}
	riverLog := slog.New(logrusslog.NewHandler(s.log, &logrusslog.HandlerOptions{LevelMapper: riverLevel}))
	client, err := river.NewClient(riverpgxv5.New(s.pool), &river.Config{
		Logger:                      riverLog,
		Queues:                      map[string]river.QueueConfig{QueueName: {MaxWorkers: s.cfg.MaxWorkers}},
		Workers:                     s.workers,
		PeriodicJobs:                s.periodic,
		JobTimeout:                  s.cfg.JobTimeout,
		CompletedJobRetentionPeriod: s.cfg.CompletedJobRetention,
		CancelledJobRetentionPeriod: s.cfg.CancelledJobRetention,
		DiscardedJobRetentionPeriod: s.cfg.DiscardedJobRetention,
	})
	if err != nil {
		return nil, fmt.Errorf("create river client: %w", err)
	}
	s.client = client
	return client, nil
}

// Run runs s's chores until ctx ends: Start, then Stop once ctx ends. It
// fails only when Start does.
func (s *Scheduler) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	s.Stop(ctx)
	return nil
}

// Start starts s's River client, building it if Client was not called, and
// returns once it runs. It fails when no chore is registered, or the client
// cannot be built or started (the database away).
func (s *Scheduler) Start(ctx context.Context) error {
	if len(s.Kinds()) == 0 {
		return errors.New("start chores: none registered")
	}
	client, err := s.Client()
	if err != nil {
		return err
	}
	// River's own context must outlive ctx: cancelling it would cancel the
	// chores in flight instead of letting them finish.
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start river client: %w", err)
	}
	s.entry().WithField("chores", s.Kinds()).Info("chores: started")
	return nil
}

// Stop stops s's River client: it takes no new work and lets the chores in
// flight finish, up to Config.StopTimeout, after which their contexts are
// cancelled. It returns when the client has stopped, even if ctx has ended.
func (s *Scheduler) Stop(ctx context.Context) {
	s.mu.Lock()
	client := s.client
	s.mu.Unlock()
	if client == nil {
		return
	}
	log := s.entry()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.StopTimeout)
	defer cancel()
	if err := client.Stop(stopCtx); err != nil {
		log.WithError(err).Warn("chores: still running at the stop timeout; cancelling them")
		if err := client.StopAndCancel(context.WithoutCancel(ctx)); err != nil {
			log.WithError(err).Warn("chores: stop and cancel")
		}
	}
	log.Info("chores: stopped")
}

func (s *Scheduler) entry() *logrus.Entry { return s.log.WithField(logging.FieldComponent, "chores") }

// riverLevel maps River's log levels to productd's: River reports its
// routine (job counts every few seconds, leadership) at info, which is debug
// here; its warnings and errors keep their level.
func riverLevel(l slog.Level) logrus.Level {
	switch {
	case l >= slog.LevelError:
		return logrus.ErrorLevel
	case l >= slog.LevelWarn:
		return logrus.WarnLevel
	default:
		return logrus.DebugLevel
	}
}
