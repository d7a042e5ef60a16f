package chores

import (
	"cmp"
	"time"

	"github.com/productd/productd/internal/settings"
)

// Config is a Scheduler's settings.
type Config struct {
	// MaxWorkers is how many chores one process runs at once. Zero means
	// DefaultMaxWorkers (4).
	MaxWorkers int

	// JobTimeout bounds one run of a chore whose worker sets no Timeout of
	// its own: River cancels the run's context then. Zero means
	// DefaultJobTimeout (1 min).
	JobTimeout time.Duration

	// CompletedJobRetention, CancelledJobRetention and DiscardedJobRetention
	// are how long River keeps finished jobs before its cleaner deletes
	// them. Zero means DefaultCompletedJobRetention (1 h),
	// DefaultCancelledJobRetention (24 h) and DefaultDiscardedJobRetention
	// (7 days).
	CompletedJobRetention time.Duration
	CancelledJobRetention time.Duration
	DiscardedJobRetention time.Duration

	// StopTimeout bounds how long Run waits, once its context ends, for the
	// chores in flight to finish before it cancels them. Zero means
	// DefaultStopTimeout (30 s).
	StopTimeout time.Duration
}

// Defaults of Config.
const (
	DefaultMaxWorkers            = 4
	DefaultJobTimeout            = time.Minute
	DefaultCompletedJobRetention = time.Hour
	DefaultCancelledJobRetention = 24 * time.Hour
	DefaultDiscardedJobRetention = 7 * 24 * time.Hour
	DefaultStopTimeout           = 30 * time.Second
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.MaxWorkers = cmp.Or(c.MaxWorkers, DefaultMaxWorkers)
	c.JobTimeout = cmp.Or(c.JobTimeout, DefaultJobTimeout)
	c.CompletedJobRetention = cmp.Or(c.CompletedJobRetention, DefaultCompletedJobRetention)
	c.CancelledJobRetention = cmp.Or(c.CancelledJobRetention, DefaultCancelledJobRetention)
	c.DiscardedJobRetention = cmp.Or(c.DiscardedJobRetention, DefaultDiscardedJobRetention)
	c.StopTimeout = cmp.Or(c.StopTimeout, DefaultStopTimeout)
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults. A negative duration would read to River as
// "never" (a negative JobTimeout, for one) or be refused late.
func (c Config) validate() error {
	return cmp.Or(
		settings.NonNegative("chores", settings.F("MaxWorkers", c.MaxWorkers)),
		settings.NonNegative("chores", settings.F("JobTimeout", c.JobTimeout), settings.F("CompletedJobRetention", c.CompletedJobRetention),
			settings.F("CancelledJobRetention", c.CancelledJobRetention), settings.F("DiscardedJobRetention", c.DiscardedJobRetention),
			settings.F("StopTimeout", c.StopTimeout)),
	)
}
