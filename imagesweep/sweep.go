// Package imagesweep finds products whose images never got a result and
// schedules them again, so that nothing stays pending for good.
//
// Images can lose their message: the retry ladder ran out while Postgres or
// the image storage was away for longer than it (the worker parks such a
// message without failing the product, since the images are not at fault),
// the message was parked while the product could not be told, or a broker
// dropped it. A Sweeper, run as a periodic chore, looks for pending or
// processing images on which no run has started for Config.StuckAfter and
// re-schedules them through the outbox (productd.ProductService's
// RescheduleImages: a new images version, so that any old message left
// somewhere is stale), recording why. Images that stay stuck through
// Config.MaxReschedules re-schedules fail, with a reason an operator can
// act on.
//
// While the outbox itself is behind by more than the bound (the relay or
// the broker is away), products wait for their events, not for a sweep,
// and the sweep does nothing.
package imagesweep

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd"
	"github.com/productd/productd/chores"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/settings"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/outbox"
)

// Config is the settings of a Sweeper. Zero fields take the default in
// their comment; negative ones are refused.
type Config struct {
	// StuckAfter is how long images may wait for a result with no run
	// starting on them before they count as stuck: longer than the worker's
	// whole retry ladder with every run timing out. Zero means
	// DefaultStuckAfter (1 h).
	StuckAfter time.Duration
	// MaxReschedules bounds the re-schedules of one product's images (the
	// count restarts when its images change); stuck once more, they fail.
	// Zero means DefaultMaxReschedules (3).
	MaxReschedules int
	// Batch bounds the products one sweep handles. Zero means
	// DefaultBatch (100).
	Batch int
	// Interval is how often the sweep runs as a chore. Zero means
	// DefaultInterval (1 min).
	Interval time.Duration
}

// Defaults of Config.
const (
	DefaultStuckAfter     = time.Hour
	DefaultMaxReschedules = 3
	DefaultBatch          = 100
	DefaultInterval       = time.Minute
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.StuckAfter = cmp.Or(c.StuckAfter, DefaultStuckAfter)
	c.MaxReschedules = cmp.Or(c.MaxReschedules, DefaultMaxReschedules)
	c.Batch = cmp.Or(c.Batch, DefaultBatch)
	c.Interval = cmp.Or(c.Interval, DefaultInterval)
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults.
func (c Config) validate() error {
	return cmp.Or(
		settings.NonNegative("imagesweep", settings.F("StuckAfter", c.StuckAfter), settings.F("Interval", c.Interval)),
		settings.NonNegative("imagesweep", settings.F("MaxReschedules", c.MaxReschedules), settings.F("Batch", c.Batch)),
	)
}

// Sweeper re-schedules stuck images. Create it with New.
type Sweeper struct {
	cfg      Config
	pool     *pgxpool.Pool
	find     *db.ProductService
	products productd.ProductService
	log      *logrus.Entry
}

// New returns a Sweeper that finds stuck images in pool's database and
// changes products through products, the service whose writes reach every
// cache (the same the API writes through).
//
// It panics when a setting of cfg cannot work (see Config): package config
// refuses such a setting first.
func New(cfg Config, pool *pgxpool.Pool, products productd.ProductService, log *logrus.Logger) *Sweeper {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		panic(err)
	}
	return &Sweeper{
		cfg:      cfg,
		pool:     pool,
		find:     db.NewProductService(pool),
		products: products,
		log:      log.WithField(logging.FieldComponent, "imagesweep"),
	}
}

// Result is what one sweep did.
type Result struct {
	// Rescheduled counts products whose images were scheduled again.
	Rescheduled int
	// Failed counts products whose images failed after their last
	// re-schedule.
	Failed int
	// Skipped counts products that got a result or changed while the sweep
	// looked at them.
	Skipped int
	// Paused is true when the sweep did nothing because the outbox is
	// behind.
	Paused bool
}

// Sweep handles up to Config.Batch products whose images are stuck,
// longest idle first.
func (s *Sweeper) Sweep(ctx context.Context) (Result, error) {
	var res Result
	behind, err := outbox.OldestPendingAge(ctx, s.pool)
	if err != nil {
		return res, fmt.Errorf("sweep stuck images: %w", err)
	}
	if behind > s.cfg.StuckAfter {
		s.log.WithField("oldest_pending", behind.Round(time.Second).String()).
			Warn("imagesweep: the outbox is behind; products wait for their events, not for a sweep")
		res.Paused = true
		return res, nil
	}
	stuck, err := s.find.FindStuckImages(ctx, time.Now().Add(-s.cfg.StuckAfter), s.cfg.Batch)
	if err != nil {
		return res, fmt.Errorf("sweep stuck images: %w", err)
	}
	for _, st := range stuck {
		ok, err := s.handle(ctx, st, &res)
		if err != nil {
			return res, fmt.Errorf("sweep stuck images: %w", err)
		}
		if !ok {
			res.Skipped++
		}
	}
	if res.Rescheduled+res.Failed > 0 {
		s.log.WithFields(logrus.Fields{"rescheduled": res.Rescheduled, "failed": res.Failed, "skipped": res.Skipped}).
			Info("imagesweep: stuck images handled")
	}
	return res, nil
}

// handle re-schedules or fails one product's stuck images; ok is false
// when they got a result or changed meanwhile.
func (s *Sweeper) handle(ctx context.Context, st productd.StuckImages, res *Result) (ok bool, err error) {
	idle := time.Since(st.Since).Round(time.Second)
	log := s.log.WithFields(logrus.Fields{
		logging.FieldProductID: st.ProductID, "images_version": st.ImagesVersion,
		"image_status": st.Status, "idle": idle.String(), "reschedules": st.Reschedules,
	})
	if st.Reschedules >= s.cfg.MaxReschedules {
		reason := fmt.Sprintf("the images never finished: %s with no run for %s after %d re-schedules; an operator must look at them",
			st.Status, idle, st.Reschedules)
		changed, err := s.products.SetImageResult(ctx, productd.ImageResult{
			ProductID: st.ProductID, ImagesVersion: st.ImagesVersion, Status: productd.ImageStatusFailed, Error: reason,
		})
		if err != nil || !changed {
			return false, err
		}
		log.WithField("reason", reason).Warn("imagesweep: stuck images failed")
		res.Failed++
		return true, nil
	}
	reason := fmt.Sprintf("sweep: %s with no run for %s (re-schedule %d of %d)", st.Status, idle, st.Reschedules+1, s.cfg.MaxReschedules)
	_, err = s.products.RescheduleImages(ctx, productd.Reschedule{
		ProductID: st.ProductID, Reason: reason, ImagesVersion: st.ImagesVersion,
		From: []productd.ImageStatus{productd.ImageStatusPending, productd.ImageStatusProcessing},
	})
	switch productd.ErrorCode(err) {
	case "":
	case productd.ECONFLICT, productd.ENOTFOUND:
		return false, nil
	default:
		return false, err
	}
	log.WithField("reason", reason).Info("imagesweep: stuck images scheduled again")
	res.Rescheduled++
	return true, nil
}

// SweepArgs is the chore of a Sweeper.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "images_sweep" }

// Register registers the sweep with sched as a chore that runs every
// Config.Interval. Every process that may lead the chores registers it.
func (s *Sweeper) Register(sched *chores.Scheduler) error {
	work := func(ctx context.Context, _ *river.Job[SweepArgs]) error {
		_, err := s.Sweep(ctx)
		return err
	}
	if err := chores.Register(sched, SweepArgs{}, river.WorkFunc(work), s.cfg.Interval); err != nil {
		return fmt.Errorf("images sweep: %w", err)
	}
	return nil
}
