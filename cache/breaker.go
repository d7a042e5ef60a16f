package cache

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/productd/productd/logging"
)

// BreakerState says whether reads go through Redis.
type BreakerState string

// The breaker's states. While it is open, reads go straight to the inner
// service without trying Redis, and a background probe tries Redis every
// Config.ProbeInterval; the probe, not a request, closes it again.
const (
	BreakerClosed BreakerState = "closed"
	BreakerOpen   BreakerState = "open"
)

// breaker opens after threshold Redis failures in a row, or at once when
// something shows that Redis may hold values this instance cannot trust
// (a lost subscription, a lost invalidation).
type breaker struct {
	threshold int32
	log       *logrus.Entry
	// onOpen runs (under mu) whenever the breaker opens: the in-process
	// tier may not answer while Redis cannot tell it about invalidations.
	onOpen func()

	open     atomic.Bool
	failures atomic.Int32
	opens    atomic.Uint64

	mu       sync.Mutex // orders the log lines of concurrent transitions
	openedAt time.Time
}

func newBreaker(threshold int, log *logrus.Logger) *breaker {
	b := &breaker{threshold: int32(threshold), log: log.WithField(logging.FieldComponent, "cache")}
	// Until the first probe succeeds nothing is known about Redis.
	b.open.Store(true)
	b.openedAt = time.Now()
	return b
}

func (b *breaker) closed() bool { return !b.open.Load() }

func (b *breaker) state() BreakerState {
	if b.open.Load() {
		return BreakerOpen
	}
	return BreakerClosed
}

// openFor returns how long the breaker has been open, 0 when closed.
func (b *breaker) openFor() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open.Load() {
		return 0
	}
	return time.Since(b.openedAt)
}

// success notes a Redis call that worked.
func (b *breaker) success() {
	if b.failures.Load() != 0 {
		b.failures.Store(0)
	}
}

// failure notes a Redis call that failed and opens the breaker once
// threshold calls in a row have.
func (b *breaker) failure(err error) {
	if b.failures.Add(1) >= b.threshold {
		b.trip("redis calls keep failing", err)
	}
}

// trip opens the breaker now and reports whether this call opened it.
func (b *breaker) trip(reason string, err error) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.onOpen != nil {
		b.onOpen() // also when already open: a recovery may be granting a lease
	}
	if b.open.Load() {
		return false
	}
	b.open.Store(true)
	b.opens.Add(1)
	b.openedAt = time.Now()
	entry := b.log.WithField("reason", reason)
	if err != nil {
		entry = entry.WithError(err)
	}
	entry.Warn("cache breaker opened: reads go to the database until redis answers again")
	return true
}

// reset closes the breaker after a successful recovery.
func (b *breaker) reset(gen int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures.Store(0)
	if !b.open.Load() {
		return
	}
	b.open.Store(false)
	b.log.WithFields(logrus.Fields{
		"open_for_ms": time.Since(b.openedAt).Milliseconds(),
		"generation":  gen,
	}).Info("cache breaker closed: reads go through redis again")
}
