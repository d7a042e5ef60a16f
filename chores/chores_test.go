package chores_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/chores"
	"github.com/productd/productd/internal/dbtest"
	"github.com/productd/productd/logging"
)

// waitFor bounds every wait of these tests.
const waitFor = 30 * time.Second

type tickArgs struct{}

func (tickArgs) Kind() string { return "test_tick" }

type otherArgs struct{}

func (otherArgs) Kind() string { return "test_other" }

// runs counts the runs of a chore and hands each run's context to the test.
type runs struct {
	n     atomic.Int32
	start chan context.Context
	// released counts the runs that block let go with their context intact.
	released atomic.Int32
}

func newRuns() *runs { return &runs{start: make(chan context.Context, 100)} }

func (r *runs) worker(block <-chan struct{}) river.Worker[tickArgs] {
	return river.WorkFunc(func(ctx context.Context, _ *river.Job[tickArgs]) error {
		r.n.Add(1)
		r.start <- ctx
		if block != nil {
			select {
			case <-block:
				if ctx.Err() == nil {
					r.released.Add(1)
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
}

// next waits for the next run to start and returns its context.
func (r *runs) next(t *testing.T) context.Context {
	t.Helper()
	select {
	case ctx := <-r.start:
		return ctx
	case <-time.After(waitFor):
		t.Fatalf("no run within %s (%d so far)", waitFor, r.n.Load())
		return nil
	}
}

// start runs s until the test ends (or stop is called) and returns stop,
// which returns Run's error.
func start(t *testing.T, s *chores.Scheduler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-done
		}
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return stop
}

func jobStates(t *testing.T, pool *pgxpool.Pool, kind string) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT state::text, count(*) FROM river_job WHERE kind = $1 GROUP BY 1`, kind)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	states := map[string]int{}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			t.Fatal(err)
		}
		states[state] = n
	}
	return states
}

// A chore runs at start and then every interval: a completed run does not
// block the next one, as River's default unique states would.
func TestAChoreRunsOnStartAndEveryInterval(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	s := chores.New(pool, chores.Config{}, logging.Discard())
	r := newRuns()
	if err := chores.Register(s, tickArgs{}, r.worker(nil), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start(t, s)
	for range 3 {
		r.next(t)
	}
	var queues string
	err := pool.QueryRow(context.Background(), `SELECT string_agg(DISTINCT queue, ',') FROM river_job`).Scan(&queues)
	if err != nil || queues != chores.QueueName {
		t.Errorf("jobs in queues %q (%v), want %s", queues, err, chores.QueueName)
	}
}

// A run that outlasts Config.JobTimeout has its context cancelled, is not
// retried (the next interval is the retry), and the chore runs again.
func TestARunPastItsTimeoutIsCancelledAndTheChoreRunsAgain(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	s := chores.New(pool, chores.Config{JobTimeout: 20 * time.Millisecond}, logging.Discard())
	r := newRuns()
	block := make(chan struct{}) // never closed: every run waits for its timeout
	if err := chores.Register(s, tickArgs{}, r.worker(block), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	start(t, s)
	first := r.next(t)
	<-first.Done()
	r.next(t)
	deadline := time.Now().Add(waitFor)
	for jobStates(t, pool, "test_tick")["discarded"] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no run recorded as discarded: %v", jobStates(t, pool, "test_tick"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := jobStates(t, pool, "test_tick")["retryable"]; n != 0 {
		t.Errorf("%d runs waiting for a retry", n)
	}
}

// stopping is a logrus hook that closes seen when River logs that its
// client is stopping.
type stopping struct {
	once sync.Once
	seen chan struct{}
}

func (h *stopping) Levels() []logrus.Level { return logrus.AllLevels }

func (h *stopping) Fire(e *logrus.Entry) error {
	if strings.Contains(e.Message, "Stopping producers") {
		h.once.Do(func() { close(h.seen) })
	}
	return nil
}

// When Run's context ends, a run in flight finishes with its context intact:
// River is stopping before the run is let go, and Run still waits for it.
func TestRunLetsTheRunInFlightFinish(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	log := logging.Discard()
	log.SetLevel(logrus.DebugLevel)
	hook := &stopping{seen: make(chan struct{})}
	log.AddHook(hook)
	s := chores.New(pool, chores.Config{}, log)
	r := newRuns()
	release := make(chan struct{})
	if err := chores.Register(s, tickArgs{}, r.worker(release), time.Hour); err != nil {
		t.Fatal(err)
	}
	stop := start(t, s)
	r.next(t)
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case <-hook.seen:
	case <-time.After(waitFor):
		t.Fatal("River never logged that it is stopping")
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if r.released.Load() != 1 {
		t.Error("the run in flight was cancelled")
	}
	if states := jobStates(t, pool, "test_tick"); states["completed"] != 1 {
		t.Errorf("job states %v, want one completed", states)
	}
}

// A run still going at Config.StopTimeout is cancelled, and Run returns.
func TestRunCancelsARunPastTheStopTimeout(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	s := chores.New(pool, chores.Config{StopTimeout: 10 * time.Millisecond}, logging.Discard())
	r := newRuns()
	if err := chores.Register(s, tickArgs{}, r.worker(make(chan struct{})), time.Hour); err != nil {
		t.Fatal(err)
	}
	stop := start(t, s)
	ctx := r.next(t)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() == nil {
		t.Error("the run past the stop timeout kept its context")
	}
}

func TestRegisterRefusesWhatCannotWork(t *testing.T) {
	t.Parallel()
	s := chores.New(dbtest.NewPool(t), chores.Config{}, logging.Discard())
	work := newRuns().worker(nil)
	for _, every := range []time.Duration{0, -time.Second} {
		if err := chores.Register(s, tickArgs{}, work, every); err == nil || !strings.Contains(err.Error(), "not positive") {
			t.Errorf("interval %s: %v", every, err)
		}
	}
	if err := chores.Register(s, tickArgs{}, work, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := chores.Register(s, tickArgs{}, work, time.Minute); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("the same kind twice: %v", err)
	}
	other := river.WorkFunc(func(context.Context, *river.Job[otherArgs]) error { return nil })
	if err := chores.Register(s, otherArgs{}, other, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Kinds(), ","); got != "test_tick,test_other" {
		t.Errorf("kinds %q", got)
	}
	c1, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	if c2, err := s.Client(); err != nil || c2 != c1 {
		t.Errorf("a second Client call built another client (%v)", err)
	}
	if err := chores.Register(s, tickArgs{}, work, time.Minute); err == nil || !strings.Contains(err.Error(), "already built") {
		t.Errorf("registered after the client was built: %v", err)
	}
}

func TestRunFailsWhenItCannotStart(t *testing.T) {
	t.Parallel()
	empty := chores.New(nil, chores.Config{}, logging.Discard())
	if err := empty.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "none registered") {
		t.Errorf("Run without chores: %v", err)
	}
	empty.Stop(context.Background()) // nothing started: returns at once

	bad := chores.New(nil, chores.Config{JobTimeout: -time.Second}, logging.Discard())
	if err := chores.Register(bad, tickArgs{}, newRuns().worker(nil), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := bad.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("Run with a negative JobTimeout: %v", err)
	}
	if _, err := chores.New(nil, chores.Config{MaxWorkers: -1}, logging.Discard()).Client(); err == nil {
		t.Error("Client with negative MaxWorkers succeeded")
	}

	pool := dbtest.NewPool(t)
	pool.Close()
	away := chores.New(pool, chores.Config{}, logging.Discard())
	if err := chores.Register(away, tickArgs{}, newRuns().worker(nil), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := away.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "start river client") {
		t.Errorf("Run with the database away: %v", err)
	}
}

func TestDeleteInBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// left rows to delete; each call deletes up to limit of them.
	deleter := func(left int64, failAt int) func(context.Context, int) (int64, error) {
		calls := 0
		return func(_ context.Context, limit int) (int64, error) {
			calls++
			if calls == failAt {
				return 1, errors.New("database away")
			}
			n := min(left, int64(limit))
			left -= n
			return n, nil
		}
	}
	if n, err := chores.DeleteInBatches(ctx, 10, deleter(25, 0)); n != 25 || err != nil {
		t.Errorf("25 rows by 10: %d, %v", n, err)
	}
	if n, err := chores.DeleteInBatches(ctx, 10, deleter(20, 0)); n != 20 || err != nil {
		t.Errorf("20 rows by 10 (a last, empty batch): %d, %v", n, err)
	}
	if n, err := chores.DeleteInBatches(ctx, 10, deleter(100, 3)); n != 21 || err == nil {
		t.Errorf("failing third batch: %d, %v", n, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if n, err := chores.DeleteInBatches(cancelled, 10, deleter(100, 0)); n != 10 || !errors.Is(err, context.Canceled) {
		t.Errorf("ended context: %d, %v", n, err)
	}
}
