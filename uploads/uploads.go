// Package uploads keeps the image files clients upload with a product: each
// is recorded in Postgres, staged, before it is written to storage; the
// product's transaction claims it; and one that no product owns (its
// request failed, died, or was a replay, or its product let it go) is
// removed, at once when that is known and otherwise by Sweep.
//
// Ownership is what the uploads table records, never what a URL suggests:
// a product that lists another product's image URL owns nothing by it, and
// deleting it removes nothing of the other's.
package uploads

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd"
	"github.com/productd/productd/chores"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/settings"
	"github.com/productd/productd/logging"
	"github.com/productd/productd/storage"
)

// Config is the settings of a Store. Zero fields take the default in their
// comment; negative ones are refused.
type Config struct {
	// AbandonAfter is how long an upload may stay staged or released before Sweep
	// removes it: longer than any request between storing a file and
	// committing its product. Zero means DefaultAbandonAfter (1 h).
	AbandonAfter time.Duration
	// SweepBatch bounds the uploads one Sweep removes. Zero means
	// DefaultSweepBatch (500).
	SweepBatch int
	// SweepInterval is how often Sweep runs as a chore. Zero means
	// DefaultSweepInterval (5 min).
	SweepInterval time.Duration
	// ReleaseTimeout bounds the removal of a failed request's uploads,
	// which runs after its client may have gone. Zero means
	// DefaultReleaseTimeout (10 s).
	ReleaseTimeout time.Duration
}

// Defaults of Config.
const (
	DefaultAbandonAfter   = time.Hour
	DefaultSweepBatch     = 500
	DefaultSweepInterval  = 5 * time.Minute
	DefaultReleaseTimeout = 10 * time.Second
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.AbandonAfter = cmp.Or(c.AbandonAfter, DefaultAbandonAfter)
	c.SweepBatch = cmp.Or(c.SweepBatch, DefaultSweepBatch)
	c.SweepInterval = cmp.Or(c.SweepInterval, DefaultSweepInterval)
	c.ReleaseTimeout = cmp.Or(c.ReleaseTimeout, DefaultReleaseTimeout)
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults.
func (c Config) validate() error {
	return cmp.Or(
		settings.NonNegative("uploads", settings.F("AbandonAfter", c.AbandonAfter), settings.F("SweepInterval", c.SweepInterval),
			settings.F("ReleaseTimeout", c.ReleaseTimeout)),
		settings.NonNegative("uploads", settings.F("SweepBatch", c.SweepBatch)),
	)
}

// Store records uploads in pool's database and keeps their files in
// objects. It is safe for concurrent use.
type Store struct {
	cfg     Config
	pool    *pgxpool.Pool
	objects *storage.Store
	log     *logrus.Entry
}

// New returns a Store. It panics when a setting of cfg cannot work (see
// Config): package config refuses such a setting first.
func New(cfg Config, pool *pgxpool.Pool, objects *storage.Store, log *logrus.Logger) *Store {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		panic(err)
	}
	return &Store{cfg: cfg, pool: pool, objects: objects, log: log.WithField(logging.FieldComponent, "uploads")}
}

// PutOriginal records an upload of contentType, one of the accepted image
// types, then stores size bytes read from r as its object, and returns it.
// No product owns it until a product's transaction claims it (see
// productd.Product.Uploads).
func (s *Store) PutOriginal(ctx context.Context, contentType string, r io.Reader, size int64) (productd.Upload, error) {
	key, err := storage.NewOriginalKey(contentType)
	if err != nil {
		return productd.Upload{}, err
	}
	u := productd.Upload{Key: key, URL: s.objects.URL(key)}
	if err := db.StageUpload(ctx, s.pool, u); err != nil {
		return productd.Upload{}, fmt.Errorf("store upload: %w", err)
	}
	if _, err := s.objects.PutStream(ctx, key, r, size, contentType); err != nil {
		if rerr := s.ReleaseOriginals(ctx, []productd.Upload{u}); rerr != nil {
			s.log.WithError(rerr).Warn("uploads: could not remove a failed upload; the sweep will")
		}
		return productd.Upload{}, fmt.Errorf("store upload: %w", err)
	}
	return u, nil
}

// ReleaseOriginals removes the uploads of a request whose product was not
// created or changed (its transaction failed, or it was a replay): those of
// uploads that no product owns. One that a product claimed stays, even when
// the caller never heard that the product's transaction committed. It runs
// on after ctx is cancelled, within Config.ReleaseTimeout; what it cannot
// remove now, Sweep removes later.
func (s *Store) ReleaseOriginals(ctx context.Context, uploads []productd.Upload) error {
	if len(uploads) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ReleaseTimeout)
	defer cancel()
	keys := make([]string, len(uploads))
	for i, u := range uploads {
		keys[i] = u.Key
	}
	return db.ReleaseStagedUploads(ctx, s.pool, keys, s.remove)
}

// Sweep removes up to Config.SweepBatch uploads staged or released for
// longer than Config.AbandonAfter, and returns how many it removed: uploads of requests
// that died before their product committed, and uploads released by a
// change whose removal never ran.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	n, err := db.SweepUnownedUploads(ctx, s.pool, time.Now().Add(-s.cfg.AbandonAfter), s.cfg.SweepBatch, s.remove)
	if n > 0 {
		s.log.WithField("uploads", n).Info("uploads: removed abandoned uploads")
	}
	return n, err
}

func (s *Store) remove(ctx context.Context, keys []string) error {
	return s.objects.Delete(ctx, keys...)
}

// SweepArgs is the chore of Sweep.
type SweepArgs struct{}

// Kind implements river.JobArgs.
func (SweepArgs) Kind() string { return "uploads_sweep" }

// RegisterSweep registers Sweep with sched as a chore that runs every
// Config.SweepInterval. Every process that may lead the chores registers
// it.
func (s *Store) RegisterSweep(sched *chores.Scheduler) error {
	work := func(ctx context.Context, _ *river.Job[SweepArgs]) error {
		_, err := s.Sweep(ctx)
		return err
	}
	if err := chores.Register(sched, SweepArgs{}, river.WorkFunc(work), s.cfg.SweepInterval); err != nil {
		return fmt.Errorf("uploads sweep: %w", err)
	}
	return nil
}
