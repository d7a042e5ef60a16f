// Package relay publishes the outbox to RabbitMQ: every committed outbox row
// reaches the broker, confirmed, whatever the broker does in between.
//
// A Relay drains the outbox whenever it is woken, so that a commit reaches
// the broker within milliseconds. Writers wake it after their commits,
// never from inside their transactions (Postgres serialises the commits of
// transactions that notify): a writer in the same process calls Wake; one
// in another process wakes every relay through an outbox.Notifier, at most
// one notification per few milliseconds, which each Relay hears by
// LISTENing on outbox.NotifyChannel. While rows keep coming the relay also
// polls (Config.PollInterval, backing off while it finds nothing), and
// RegisterChores adds two chores to the process's chores.Scheduler (River):
// a sweep every Config.SweepInterval, on whichever process River elected
// leader, that wakes the relay for a drain too: the safety net for a lost
// wake-up, and what publishes rows whose retry time has come; and the
// deletion of old published rows.
//
// A drain claims due rows in batches with FOR UPDATE SKIP LOCKED, publishes
// each batch with publisher confirms, and in the same transaction marks the
// confirmed rows published and the nacked ones, and those returned for a
// routing key the topology does not bind, failed (attempts + 1, the error, a
// next attempt time growing exponentially with jitter, or dead at
// Config.MaxAttempts). Rows the broker never answered for (it went away
// mid-batch, or stopped answering) are left exactly as they were, and so
// are rows returned although the topology routes them: a queue or binding
// is missing, the broker's fault, not the row's. Either way the relay
// pauses, publishes nothing and burns no row's attempts: the broker package
// reconnects with backoff, or declares the missing topology again, and the
// relay resumes the moment a drain goes through. Stats says why it is paused
// and since when (see Pause), and what its last batch did.
//
// Any number of drains, in one process or many, can run at once: SKIP LOCKED
// gives each batch rows of its own. A process killed at any point loses
// nothing: its transaction rolls back and its rows are claimed again. The one
// price is a duplicate message when the kill falls between the broker's
// confirmation and the commit; consumers are idempotent by event id (the
// message id).
package relay

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/logging"
)

// Relay publishes the outbox of one database to one broker. Create it with
// New and run it with Run.
type Relay struct {
	cfg    Config
	pool   *pgxpool.Pool
	broker *broker.Broker
	pub    *broker.Publisher
	log    *logrus.Entry

	// wake asks the dispatcher for a drain; one pending request is enough.
	wake chan struct{}

	// halt ends when Run's shutdown runs out of time: the batches still in
	// flight are cut short. haltNow ends it.
	halt    context.Context
	haltNow context.CancelFunc

	stats  counters
	pauses pauses
	// maint follows the maintenance switch and reports the relay's status.
	maint maintenance

	// afterPublish, when set (by tests), runs between the broker's answers
	// and the marking of the rows; an error aborts the batch as a crash
	// would.
	afterPublish func(ctx context.Context, rows int) error
	// pipeline claims a full batch's successor while it awaits its
	// confirmations (see Drain); off only in benchmarks, to measure what
	// that gains.
	pipeline bool
	// onConfirmed, when set (by benchmarks), receives the event ids of each
	// batch's confirmed rows once they are marked.
	onConfirmed func(eventIDs []string)
}

// New returns a Relay publishing the outbox in pool's database through b.
func New(pool *pgxpool.Pool, b *broker.Broker, cfg Config, log *logrus.Logger) (*Relay, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.RetryMax = max(cfg.RetryMax, cfg.RetryBase)
	r := &Relay{
		cfg:      cfg,
		pool:     pool,
		broker:   b,
		pub:      b.NewPublisher(cfg.ConfirmTimeout),
		log:      log.WithField(logging.FieldComponent, "relay"),
		wake:     make(chan struct{}, 1),
		pipeline: true,
	}
	r.halt, r.haltNow = context.WithCancel(context.Background())
	return r, nil
}

// Run relays until ctx ends: it starts the LISTEN wake-ups and drains once
// at start, and drains whenever the sweep chore asks. When ctx ends it stops
// taking new work, lets the batches in flight finish, and returns nil,
// within Config.StopTimeout (plus the broker's close timeout) whatever the
// broker and the database do. A Relay runs once.
func (r *Relay) Run(ctx context.Context) error {
	// The switch is read before anything can drain: the listener's first
	// wake-up, or a sweep's, would otherwise publish rows that a pause holds.
	r.loadControl(ctx)
	r.log.WithFields(logrus.Fields{
		"batch_size": r.cfg.BatchSize, "concurrency": r.cfg.Concurrency, "max_attempts": r.cfg.MaxAttempts,
		"sweep_interval": r.cfg.SweepInterval.String(),
	}).Info("relay: started")

	var wg sync.WaitGroup
	wg.Go(func() { r.listen(ctx) })
	wg.Go(func() { r.dispatch(ctx) })
	wg.Go(func() { r.maintain(ctx) })
	r.signal()
	<-ctx.Done()

	// The batches in flight get Config.StopTimeout to finish; then they are
	// cut short.
	halt := time.AfterFunc(r.cfg.StopTimeout, func() {
		r.log.Warn("relay: batches still running at the stop timeout; cutting them short")
		r.haltNow()
	})
	defer halt.Stop()
	wg.Wait()
	if err := r.pub.Close(); err != nil {
		r.log.WithError(err).Debug("relay: close publisher channel")
	}
	r.log.WithFields(r.Stats().fields()).Info("relay: stopped")
	return nil
}

// Wake asks the relay for a drain and returns at once: what a writer in the
// same process calls after a commit that wrote outbox rows (see
// db.ServiceConfig). Wakes that come during a drain fold into one more
// drain after it.
func (r *Relay) Wake() { r.signal() }

// signal asks for a drain without waiting for it.
func (r *Relay) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Stats are a Relay's counters since it was created.
type Stats struct {
	// Batches counts claimed batches that had rows.
	Batches int64
	// Published counts rows marked published.
	Published int64
	// Returned and Nacked count failed publications, each costing its row an
	// attempt; Dead counts the rows that ran out of attempts.
	Returned int64
	Nacked   int64
	Dead     int64
	// Unknown counts publications the broker never answered for (timed out,
	// or the channel closed first); those rows stay pending without losing
	// an attempt.
	Unknown int64
	// NoRoute counts publications returned as unroutable although the
	// topology routes them (see PausedNoRoute); those rows stay pending
	// without losing an attempt.
	NoRoute int64
	// Errors counts drains that stopped on an error other than the broker's
	// absence.
	Errors int64
	// Pause is why the relay publishes nothing, and since when; its Reason
	// is NotPaused while it publishes.
	Pause Pause
	// LastBatch is the last batch that had rows; nil before the first.
	LastBatch *BatchReport
	// Publishes counts the relay's messages by the broker's answer.
	Publishes broker.PublishStats
	// Broker is the connection's state and counters.
	Broker broker.Stats
}

func (s Stats) fields() logrus.Fields {
	return logrus.Fields{
		"batches": s.Batches, "published": s.Published, "returned": s.Returned, "nacked": s.Nacked,
		"dead": s.Dead, "unknown": s.Unknown, "no_route": s.NoRoute, "errors": s.Errors,
	}
}

type counters struct {
	batches, published, returned, nacked, dead, unknown, noRoute, errors atomic.Int64
}

// Stats returns the Relay's counters, its pause and its last batch.
func (r *Relay) Stats() Stats {
	return Stats{
		Batches:   r.stats.batches.Load(),
		Published: r.stats.published.Load(),
		Returned:  r.stats.returned.Load(),
		Nacked:    r.stats.nacked.Load(),
		Dead:      r.stats.dead.Load(),
		Unknown:   r.stats.unknown.Load(),
		NoRoute:   r.stats.noRoute.Load(),
		Errors:    r.stats.errors.Load(),
		Pause:     r.pause(),
		LastBatch: r.maint.last(),
		Publishes: r.pub.Stats(),
		Broker:    r.broker.Stats(),
	}
}

// ErrBrokerUnavailable is returned by Drain when the broker is unreachable,
// or went away during the drain.
var ErrBrokerUnavailable = errors.New("broker unavailable")
