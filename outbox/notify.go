package outbox

import (
	"cmp"
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/productd/productd/internal/settings"
)

// NotifyChannel is the Postgres channel relays LISTEN on: a notification on
// it makes every relay drain the outbox at once instead of at its next poll.
// A Notifier sends them for the writers of its process; operators' actions
// that make rows due (SetPaused, Requeue) send one of their own.
const NotifyChannel = "productd_outbox"

// Defaults of NotifierConfig.
const (
	// DefaultNotifyInterval is the least time between two notifications of
	// one Notifier.
	DefaultNotifyInterval = 5 * time.Millisecond
	// DefaultNotifyTimeout bounds one notification.
	DefaultNotifyTimeout = time.Second
)

// NotifierConfig is a Notifier's settings.
type NotifierConfig struct {
	// Interval is the least time between two notifications: Wakes that
	// come sooner fold into one notification at its end. Zero means
	// DefaultNotifyInterval (5 ms).
	Interval time.Duration

	// Timeout bounds one notification. Zero means DefaultNotifyTimeout
	// (1 s).
	Timeout time.Duration

	// OnError, when set, hears of each notification that failed. A failed
	// notification loses nothing: the relays find the rows at their next
	// poll or sweep.
	OnError func(error)
}

// withDefaults returns c with every zero field set to its default.
func (c NotifierConfig) withDefaults() NotifierConfig {
	c.Interval = cmp.Or(c.Interval, DefaultNotifyInterval)
	c.Timeout = cmp.Or(c.Timeout, DefaultNotifyTimeout)
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults.
func (c NotifierConfig) validate() error {
	return settings.NonNegative("outbox notifier", settings.F("Interval", c.Interval), settings.F("Timeout", c.Timeout))
}

// Notifier wakes the relays of every process after commits that wrote
// outbox rows, sending at most one notification on NotifyChannel per
// Config.Interval however many commits ask for one.
//
// The notification is sent after the writers' commits, from outside their
// transactions, on purpose: Postgres serialises the commits of every
// transaction that notified on one global lock, so a pg_notify in each
// write transaction would make every writer of the database wait its turn.
// One notification per interval costs one short transaction, whatever the
// write rate.
type Notifier struct {
	q    Querier
	cfg  NotifierConfig
	kick chan struct{}
	sent atomic.Int64
}

// NewNotifier returns a Notifier that notifies through q (a pool). It
// sends nothing until Run runs. It panics when a setting of cfg cannot work
// (see NotifierConfig).
func NewNotifier(q Querier, cfg NotifierConfig) *Notifier {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		panic(err)
	}
	return &Notifier{q: q, cfg: cfg, kick: make(chan struct{}, 1)}
}

// Wake asks for a notification and returns at once: call it after a commit
// that wrote outbox rows. Wakes that come while one is pending fold into it.
func (n *Notifier) Wake() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Sent returns the number of notifications sent.
func (n *Notifier) Sent() int64 { return n.sent.Load() }

// Run sends the notifications Wake asks for until ctx ends. The first Wake
// after a quiet spell is sent at once; those that come within the next
// Config.Interval are sent together at its end.
func (n *Notifier) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		}
		if err := n.notify(ctx); err != nil && ctx.Err() == nil && n.cfg.OnError != nil {
			n.cfg.OnError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(n.cfg.Interval):
		}
	}
}

// Start runs Run in a goroutine of its own until ctx ends or stop is
// called; stop returns once Run has.
func (n *Notifier) Start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

func (n *Notifier) notify(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	if _, err := n.q.Exec(ctx, `SELECT pg_notify($1, '')`, NotifyChannel); err != nil {
		return fmt.Errorf("notify relays on %s: %w", NotifyChannel, err)
	}
	n.sent.Add(1)
	return nil
}
