package telemetry

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/logging"
)

// readTimeout bounds one reading of a cached figure, well inside
// Prometheus' default scrape timeout of 10 s.
const readTimeout = 3 * time.Second

// cacheOpts is what every cached reading shares.
type cacheOpts struct {
	ttl    time.Duration
	errors *prometheus.CounterVec
	log    *logrus.Logger
}

// cached is a figure that costs a round trip, read at most once per ttl:
// scrapes in between, and scrapes waiting while it is read, get the last
// reading. A failed reading is counted and logged, and leaves its families
// out of the scrapes until the next reading.
type cached[T any] struct {
	opts   cacheOpts
	source string
	read   func(context.Context) (T, error)
	errs   prometheus.Counter

	mu  sync.Mutex
	at  time.Time
	val T
	ok  bool
}

func newCached[T any](opts cacheOpts, source string, read func(context.Context) (T, error)) *cached[T] {
	return &cached[T]{opts: opts, source: source, read: read, errs: opts.errors.WithLabelValues(source)}
}

// get returns the latest reading, and whether it succeeded.
func (c *cached[T]) get() (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < c.opts.ttl {
		return c.val, c.ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	val, err := c.read(ctx)
	c.at = time.Now()
	if err != nil {
		c.errs.Inc()
		c.opts.log.WithError(err).WithFields(logrus.Fields{logging.FieldComponent: "telemetry", "source": c.source}).
			Warn("telemetry: cannot read figures for /metrics; they are left out until the next reading")
		var zero T
		c.val, c.ok = zero, false
		return zero, false
	}
	c.val, c.ok = val, true
	return val, true
}
