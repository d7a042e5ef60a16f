package relay

import (
	"errors"
	"time"
)

// Config is the relay's settings. Zero fields take the default given in their
// comment.
type Config struct {
	// BatchSize is how many rows one transaction claims and publishes
	// together. Default 500.
	BatchSize int

	// Concurrency is how many batches one drain keeps publishing at once,
	// each in its own transaction, so that claiming and marking one batch
	// overlap with waiting for another's confirmations; each also claims
	// its next batch while it waits. Default 2.
	Concurrency int

	// MaxAttempts is how many failed publications (returned or nacked) make
	// a row dead. Publications that got no answer because the broker went
	// away do not count. Default 10.
	MaxAttempts int

	// RetryBase and RetryMax shape the wait after a failed publication: the
	// n-th failure waits RetryBase doubled n-1 times, at most RetryMax, with
	// jitter over its upper half. Defaults 1s and 10m.
	RetryBase time.Duration
	RetryMax  time.Duration

	// ConfirmTimeout bounds the wait for one batch's confirmations; rows
	// still unconfirmed then are left for the next run. Default 15s.
	ConfirmTimeout time.Duration

	// SweepInterval is how often the sweep chore drains the outbox:
	// the safety net behind the LISTEN wake-ups, and what publishes rows
	// whose retry time has come. Default 1s.
	SweepInterval time.Duration

	// PollInterval is how soon the relay drains again after a drain that
	// published rows, unless woken earlier; each drain that then finds
	// nothing doubles the wait, until it reaches SweepInterval. While rows
	// keep coming, a row that no wake-up announced waits this long at most.
	// Default 10ms.
	PollInterval time.Duration

	// RetentionInterval is how often the retention chore runs. Default 1m.
	RetentionInterval time.Duration

	// PublishedRetention is how long published rows are kept. Default 1h.
	PublishedRetention time.Duration

	// RetentionBatch bounds the rows one retention statement deletes.
	// Default 5000.
	RetentionBatch int

	// StatusInterval is how often the relay reads the maintenance switch
	// and writes its status row (see SetPaused and ReadStatuses). Default 1s.
	StatusInterval time.Duration

	// StopTimeout bounds Run's shutdown once its context ends: the batches
	// in flight get it to finish, then are cut short (rows whose marks are
	// lost stay pending and are published again). Run returns within
	// StopTimeout plus the broker's Config.CloseTimeout. Default 30s.
	StopTimeout time.Duration

	// MarkTimeout bounds each statement that records a batch's outcome once
	// the broker has answered: releasing the unanswered rows, marking the
	// failed ones, the commit. They run even after the drain's context has
	// ended, so that confirmed messages are not published twice, but no
	// longer than this. Zero means DefaultMarkTimeout (10s).
	MarkTimeout time.Duration

	// Observer is told about every publication and batch (package
	// telemetry's metrics and spans). Nil means none.
	Observer Observer
}

// Defaults of Config.
const (
	DefaultBatchSize          = 500
	DefaultConcurrency        = 2
	DefaultMaxAttempts        = 10
	DefaultRetryBase          = time.Second
	DefaultRetryMax           = 10 * time.Minute
	DefaultConfirmTimeout     = 15 * time.Second
	DefaultSweepInterval      = time.Second
	DefaultPollInterval       = 10 * time.Millisecond
	DefaultRetentionInterval  = time.Minute
	DefaultPublishedRetention = time.Hour
	DefaultRetentionBatch     = 5000
	DefaultStopTimeout        = 30 * time.Second
	DefaultMarkTimeout        = 10 * time.Second
	DefaultStatusInterval     = time.Second
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() (Config, error) {
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	setInt(&c.BatchSize, DefaultBatchSize)
	setInt(&c.Concurrency, DefaultConcurrency)
	setInt(&c.MaxAttempts, DefaultMaxAttempts)
	setInt(&c.RetentionBatch, DefaultRetentionBatch)
	setDur(&c.RetryBase, DefaultRetryBase)
	setDur(&c.RetryMax, DefaultRetryMax)
	setDur(&c.ConfirmTimeout, DefaultConfirmTimeout)
	setDur(&c.SweepInterval, DefaultSweepInterval)
	setDur(&c.PollInterval, DefaultPollInterval)
	setDur(&c.RetentionInterval, DefaultRetentionInterval)
	setDur(&c.PublishedRetention, DefaultPublishedRetention)
	setDur(&c.StopTimeout, DefaultStopTimeout)
	setDur(&c.MarkTimeout, DefaultMarkTimeout)
	setDur(&c.StatusInterval, DefaultStatusInterval)
	if c.BatchSize < 0 || c.Concurrency < 0 || c.MaxAttempts < 0 || c.RetentionBatch < 0 {
		return Config{}, errors.New("relay: BatchSize, Concurrency, MaxAttempts and RetentionBatch must be positive")
	}
	for _, d := range []time.Duration{c.RetryBase, c.RetryMax, c.ConfirmTimeout, c.SweepInterval, c.PollInterval, c.RetentionInterval,
		c.PublishedRetention, c.StopTimeout, c.StatusInterval, c.MarkTimeout} {
		if d < 0 {
			return Config{}, errors.New("relay: durations must be positive")
		}
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.RetryMax < c.RetryBase {
		c.RetryMax = c.RetryBase
	}
	return c, nil
}
