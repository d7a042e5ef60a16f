package relay

import (
	"cmp"
	"time"

	"github.com/productd/productd/internal/settings"
)

// Config is the relay's settings. Zero fields take the default given in their
// comment; negative ones are refused.
type Config struct {
	// BatchSize is how many rows one transaction claims and publishes
	// together. Zero means DefaultBatchSize (500).
	BatchSize int

	// Concurrency is how many batches one drain keeps publishing at once,
	// each in its own transaction, so that claiming and marking one batch
	// overlap with waiting for another's confirmations; each also claims
	// its next batch while it waits. Zero means DefaultConcurrency (2).
	Concurrency int

	// MaxAttempts is how many failed publications (returned or nacked) make
	// a row dead. Publications that got no answer because the broker went
	// away do not count. Zero means DefaultMaxAttempts (10).
	MaxAttempts int

	// RetryBase and RetryMax shape the wait after a failed publication: the
	// n-th failure waits RetryBase doubled n-1 times, at most RetryMax, with
	// jitter over its upper half; a RetryMax under RetryBase is taken as
	// RetryBase. Zero means DefaultRetryBase (1 s) and DefaultRetryMax
	// (10 min).
	RetryBase time.Duration
	RetryMax  time.Duration

	// ConfirmTimeout bounds the wait for one batch's confirmations; rows
	// still unconfirmed then are left for the next run. Zero means
	// DefaultConfirmTimeout (15 s).
	ConfirmTimeout time.Duration

	// SweepInterval is how often the sweep chore drains the outbox:
	// the safety net behind the LISTEN wake-ups, and what publishes rows
	// whose retry time has come. Zero means DefaultSweepInterval (1 s).
	SweepInterval time.Duration

	// PollInterval is how soon the relay drains again after a drain that
	// published rows, unless woken earlier; each drain that then finds
	// nothing doubles the wait, until it reaches SweepInterval. While rows
	// keep coming, a row that no wake-up announced waits this long at most.
	// Zero means DefaultPollInterval (10 ms).
	PollInterval time.Duration

	// RetentionInterval is how often the retention chore runs. Zero means
	// DefaultRetentionInterval (1 min).
	RetentionInterval time.Duration

	// PublishedRetention is how long published rows are kept. Zero means
	// DefaultPublishedRetention (1 h).
	PublishedRetention time.Duration

	// RetentionBatch bounds the rows one retention statement deletes. Zero
	// means DefaultRetentionBatch (5000).
	RetentionBatch int

	// StatusInterval is how often the relay reads the maintenance switch
	// and writes its status row (see SetPaused and ReadStatuses). Zero
	// means DefaultStatusInterval (1 s).
	StatusInterval time.Duration

	// StopTimeout bounds Run's shutdown once its context ends: the batches
	// in flight get it to finish, then are cut short (rows whose marks are
	// lost stay pending and are published again). Run returns within
	// StopTimeout plus the broker's Config.CloseTimeout. Zero means
	// DefaultStopTimeout (30 s).
	StopTimeout time.Duration

	// MarkTimeout bounds each statement that records a batch's outcome once
	// the broker has answered: releasing the unanswered rows, marking the
	// failed ones, the commit. They run even after the drain's context has
	// ended, so that confirmed messages are not published twice, but no
	// longer than this. Zero means DefaultMarkTimeout (10 s).
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
func (c Config) withDefaults() Config {
	c.BatchSize = cmp.Or(c.BatchSize, DefaultBatchSize)
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, DefaultMaxAttempts)
	c.RetentionBatch = cmp.Or(c.RetentionBatch, DefaultRetentionBatch)
	c.RetryBase = cmp.Or(c.RetryBase, DefaultRetryBase)
	c.RetryMax = cmp.Or(c.RetryMax, DefaultRetryMax)
	c.ConfirmTimeout = cmp.Or(c.ConfirmTimeout, DefaultConfirmTimeout)
	c.SweepInterval = cmp.Or(c.SweepInterval, DefaultSweepInterval)
	c.PollInterval = cmp.Or(c.PollInterval, DefaultPollInterval)
	c.RetentionInterval = cmp.Or(c.RetentionInterval, DefaultRetentionInterval)
	c.PublishedRetention = cmp.Or(c.PublishedRetention, DefaultPublishedRetention)
	c.StopTimeout = cmp.Or(c.StopTimeout, DefaultStopTimeout)
	c.MarkTimeout = cmp.Or(c.MarkTimeout, DefaultMarkTimeout)
	c.StatusInterval = cmp.Or(c.StatusInterval, DefaultStatusInterval)
	c.Observer = cmp.Or[Observer](c.Observer, nopObserver{})
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults.
func (c Config) validate() error {
	return cmp.Or(
		settings.NonNegative("relay", settings.F("BatchSize", c.BatchSize), settings.F("Concurrency", c.Concurrency),
			settings.F("MaxAttempts", c.MaxAttempts), settings.F("RetentionBatch", c.RetentionBatch)),
		settings.NonNegative("relay", settings.F("RetryBase", c.RetryBase), settings.F("RetryMax", c.RetryMax),
			settings.F("ConfirmTimeout", c.ConfirmTimeout), settings.F("SweepInterval", c.SweepInterval),
			settings.F("PollInterval", c.PollInterval), settings.F("RetentionInterval", c.RetentionInterval),
			settings.F("PublishedRetention", c.PublishedRetention), settings.F("StopTimeout", c.StopTimeout),
			settings.F("MarkTimeout", c.MarkTimeout), settings.F("StatusInterval", c.StatusInterval)),
	)
}
