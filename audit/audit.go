// Package audit checks the invariants of a live productd deployment and
// reports what breaks them: products whose images never finished, outbox
// rows that were never published, done products whose compressed images are
// missing from storage, objects that no product owns, messages waiting in
// the parking lot, and cached products that differ from Postgres.
//
// Every check streams: rows and objects are read in order, a page at a
// time, and compared as they come, so an audit of millions of products runs
// in memory that does not grow with them. It reads and never writes.
// `productd audit` runs it from the command line; the chaos suite runs it
// after every scenario.
package audit

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/productd/productd/broker"
	"github.com/productd/productd/internal/settings"
	"github.com/productd/productd/storage"
)

// The checks, as named in a Report.
const (
	CheckStuckProducts  = "stuck_products"
	CheckOutboxPending  = "outbox_pending"
	CheckOutboxDead     = "outbox_dead"
	CheckMissingObjects = "missing_objects"
	CheckOrphanObjects  = "orphan_objects"
	CheckParked         = "parked_messages"
	CheckStaleCache     = "stale_cache"
)

// Config says what to audit and how patient to be. DB is required; a nil
// Store, Redis or empty AMQPURL skips the checks that need it, and the
// report says so.
type Config struct {
	// DB is the deployment's database.
	DB *pgxpool.Pool

	// Store is the bucket of the deployment's images.
	Store *storage.Store

	// Redis and CachePrefix locate the deployment's product cache.
	Redis       *redis.Client
	CachePrefix string

	// AMQPURL is the broker (one URL, or the comma-separated URLs of a
	// cluster's nodes) and ParkingQueue the parking lot's name on it.
	// Zero ParkingQueue means broker.DefaultParkingQueue.
	AMQPURL      string
	ParkingQueue string

	// StuckAfter is how long a product's images may stay pending or
	// processing after the product last changed before they count as
	// stuck. Zero means DefaultStuckAfter (30 min): the image worker's
	// retries of one message span about 13 minutes.
	StuckAfter time.Duration

	// PendingAfter is how long an outbox row may wait to be published.
	// Zero means DefaultPendingAfter (10 min).
	PendingAfter time.Duration

	// ObjectGrace is how old an object must be to count as an orphan:
	// younger ones may belong to a product still being written or
	// processed. Zero means DefaultObjectGrace (10 min).
	ObjectGrace time.Duration

	// RecheckAfter is how long a finding that a concurrent write could
	// explain (a missing object, a stale cached product) waits before it
	// is checked again and reported only if it still holds. Zero means
	// DefaultRecheckAfter (1 s).
	RecheckAfter time.Duration

	// MaxFindings is how many findings a check lists; it counts all of
	// them. Zero means DefaultMaxFindings (20).
	MaxFindings int
}

// Defaults of Config.
const (
	DefaultStuckAfter   = 30 * time.Minute
	DefaultPendingAfter = 10 * time.Minute
	DefaultObjectGrace  = 10 * time.Minute
	DefaultRecheckAfter = time.Second
	DefaultMaxFindings  = 20
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.ParkingQueue = cmp.Or(c.ParkingQueue, broker.DefaultParkingQueue)
	c.StuckAfter = cmp.Or(c.StuckAfter, DefaultStuckAfter)
	c.PendingAfter = cmp.Or(c.PendingAfter, DefaultPendingAfter)
	c.ObjectGrace = cmp.Or(c.ObjectGrace, DefaultObjectGrace)
	c.RecheckAfter = cmp.Or(c.RecheckAfter, DefaultRecheckAfter)
	c.MaxFindings = cmp.Or(c.MaxFindings, DefaultMaxFindings)
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults.
func (c Config) validate() error {
	return cmp.Or(
		settings.NonNegative("audit", settings.F("StuckAfter", c.StuckAfter), settings.F("PendingAfter", c.PendingAfter),
			settings.F("ObjectGrace", c.ObjectGrace), settings.F("RecheckAfter", c.RecheckAfter)),
		settings.NonNegative("audit", settings.F("MaxFindings", c.MaxFindings)),
	)
}

// ErrNoDatabase is returned by Run without Config.DB.
var ErrNoDatabase = errors.New("audit: no database")

// Run runs every check at once and returns their report. A check that
// cannot finish (a service is down) records its error in its result; Run
// itself fails only without a database.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.DB == nil {
		return nil, ErrNoDatabase
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &auditor{cfg: cfg}
	start := time.Now()
	checks := []struct {
		names []string
		run   func(context.Context, ...*Result) error
		skip  string
	}{
		{[]string{CheckStuckProducts}, a.stuckProducts, ""},
		{[]string{CheckOutboxPending, CheckOutboxDead}, a.outbox, ""},
		{[]string{CheckMissingObjects, CheckOrphanObjects}, a.objects, skipUnless(cfg.Store != nil, "no object storage configured")},
		{[]string{CheckParked}, a.parked, skipUnless(cfg.AMQPURL != "", "no broker configured")},
		{[]string{CheckStaleCache}, a.staleCache, skipUnless(cfg.Redis != nil, "no Redis configured")},
	}
	report := &Report{Started: start}
	var wg sync.WaitGroup
	for _, c := range checks {
		results := make([]*Result, len(c.names))
		for i, name := range c.names {
			results[i] = &Result{Check: name, max: cfg.MaxFindings, Skipped: c.skip}
			report.Results = append(report.Results, results[i])
		}
		if c.skip != "" {
			continue
		}
		wg.Go(func() {
			begin := time.Now()
			err := c.run(ctx, results...)
			for _, r := range results {
				r.Duration = time.Since(begin)
				if err != nil {
					r.Error = err.Error()
				}
			}
		})
	}
	wg.Wait()
	report.Duration = time.Since(start)
	return report, nil
}

func skipUnless(ok bool, why string) string {
	if ok {
		return ""
	}
	return why
}

// auditor holds what the checks share.
type auditor struct {
	cfg Config
}
