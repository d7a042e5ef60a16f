package cache

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/internal/settings"
	"github.com/productd/productd/logging"
)

// Defaults of Config.
const (
	DefaultPrefix           = "productd:cache:"
	DefaultTTL              = 5 * time.Minute
	DefaultTimeout          = 100 * time.Millisecond
	DefaultLoadTimeout      = 5 * time.Second
	DefaultFailureThreshold = 3
	DefaultProbeInterval    = 500 * time.Millisecond
	DefaultLocalTTL         = time.Second
	DefaultLocalSize        = 10_000
	DefaultLeaseTTL         = time.Second
)

// Config is the cache's configuration. Client is required.
type Config struct {
	// Client talks to Redis. NewClient makes one whose timeouts suit a cache
	// that must never make a request wait long.
	Client *redis.Client

	// Log receives the breaker's state changes and invalidations that could
	// not reach Redis. Nil discards them.
	Log *logrus.Logger

	// Prefix starts every key and channel of the cache, so that several
	// deployments (or tests) can share one Redis. Zero means DefaultPrefix
	// ("productd:cache:").
	Prefix string

	// TTL is how long a product stays in Redis after it was stored. It is the
	// upper bound on staleness should every other mechanism fail, and how
	// long an invalidation's tombstone lives. Zero means DefaultTTL (5 min).
	TTL time.Duration

	// Timeout bounds each Redis call a request makes. A read that takes longer
	// is served from the inner service instead. Zero means DefaultTimeout
	// (100 ms).
	Timeout time.Duration

	// LoadTimeout bounds a load from the inner service. A load that took
	// longer is still returned to its callers but not stored, and it must stay
	// well under TTL so that a tombstone outlives every load that started
	// before it (see fill). Zero means DefaultLoadTimeout (5 s).
	LoadTimeout time.Duration

	// FailureThreshold is how many Redis calls in a row must fail before the
	// breaker opens and reads go straight to the inner service. Zero means
	// DefaultFailureThreshold (3).
	FailureThreshold int

	// ProbeInterval is how often an open breaker tries Redis again. Zero
	// means DefaultProbeInterval (500 ms).
	ProbeInterval time.Duration

	// Local turns on the in-process tier in front of Redis. Every instance
	// that shares a Prefix should set it the same way: a writer whose own
	// tier is off does not wait out other instances' leases when Redis is
	// unreachable.
	Local bool

	// LocalTTL is how long the in-process tier keeps a product, and so how
	// long a write waits at most for another instance's acknowledgement.
	// Zero means DefaultLocalTTL (1 s).
	LocalTTL time.Duration

	// LocalSize caps the number of products in the in-process tier. Zero
	// means DefaultLocalSize (10,000).
	LocalSize int

	// LeaseTTL is how long an instance may serve from its in-process tier
	// without hearing from Redis; a writer that cannot reach an instance
	// waits for its lease to run out before it answers. Zero means
	// DefaultLeaseTTL (1 s).
	LeaseTTL time.Duration
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.Log = cmp.Or(c.Log, logging.Discard())
	c.Prefix = cmp.Or(c.Prefix, DefaultPrefix)
	c.TTL = cmp.Or(c.TTL, DefaultTTL)
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	c.LoadTimeout = cmp.Or(c.LoadTimeout, DefaultLoadTimeout)
	c.FailureThreshold = cmp.Or(c.FailureThreshold, DefaultFailureThreshold)
	c.ProbeInterval = cmp.Or(c.ProbeInterval, DefaultProbeInterval)
	c.LocalTTL = cmp.Or(c.LocalTTL, DefaultLocalTTL)
	c.LocalSize = cmp.Or(c.LocalSize, DefaultLocalSize)
	c.LeaseTTL = cmp.Or(c.LeaseTTL, DefaultLeaseTTL)
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults.
func (c Config) validate() error {
	if c.Client == nil {
		return errors.New("cache: Config.Client is required")
	}
	if err := cmp.Or(
		settings.NonNegative("cache", settings.F("TTL", c.TTL), settings.F("Timeout", c.Timeout), settings.F("LoadTimeout", c.LoadTimeout),
			settings.F("ProbeInterval", c.ProbeInterval), settings.F("LocalTTL", c.LocalTTL), settings.F("LeaseTTL", c.LeaseTTL)),
		settings.NonNegative("cache", settings.F("FailureThreshold", c.FailureThreshold), settings.F("LocalSize", c.LocalSize)),
	); err != nil {
		return err
	}
	// A fill may reach Redis up to LoadTimeout+Timeout after its token was
	// read; the tombstone it is checked against must still be there.
	if c.LoadTimeout+c.Timeout >= c.TTL/2 {
		return fmt.Errorf("cache: Config.LoadTimeout (%s) plus Timeout (%s) must stay under half the TTL (%s)", c.LoadTimeout, c.Timeout, c.TTL)
	}
	return nil
}

// NewClient returns a Redis client for rawURL whose dial, read, write and
// pool timeouts are all timeout and which never retries: a cache that is slow
// to answer is better skipped than waited for.
func NewClient(rawURL string, timeout time.Duration) (*redis.Client, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	opt.DialTimeout = timeout
	opt.ReadTimeout = timeout
	opt.WriteTimeout = timeout
	opt.PoolTimeout = timeout
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	// RESP2: the cache needs no RESP3 feature, and pub/sub messages then
	// always come back through Receive.
	opt.Protocol = 2
	opt.DisableIdentity = true
	return redis.NewClient(opt), nil
}
