package db

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/sirupsen/logrus"

	"github.com/productd/productd/chores"
	"github.com/productd/productd/internal/settings"
	"github.com/productd/productd/logging"
)

// KeyRetentionArgs is the chore that deletes expired idempotency keys.
type KeyRetentionArgs struct{}

// Kind implements river.JobArgs.
func (KeyRetentionArgs) Kind() string { return "idempotency_key_retention" }

// KeyRetentionConfig is the settings of the idempotency-key retention chore.
type KeyRetentionConfig struct {
	// Retention is how long an idempotency key is kept: a client retrying
	// later than this creates a new product. Zero means
	// DefaultKeyRetention (24 h).
	Retention time.Duration

	// Interval is how often the chore runs. Zero means
	// DefaultKeyRetentionInterval (1 min).
	Interval time.Duration

	// Batch bounds the keys one statement deletes. Zero means
	// DefaultKeyRetentionBatch (5000).
	Batch int
}

// Defaults of KeyRetentionConfig.
const (
	DefaultKeyRetention         = 24 * time.Hour
	DefaultKeyRetentionInterval = time.Minute
	DefaultKeyRetentionBatch    = 5000
)

// withDefaults returns c with every zero field set to its default.
func (c KeyRetentionConfig) withDefaults() KeyRetentionConfig {
	c.Retention = cmp.Or(c.Retention, DefaultKeyRetention)
	c.Interval = cmp.Or(c.Interval, DefaultKeyRetentionInterval)
	c.Batch = cmp.Or(c.Batch, DefaultKeyRetentionBatch)
	return c
}

// validate returns an error that names the first setting of c that cannot
// work; c has its defaults.
func (c KeyRetentionConfig) validate() error {
	return cmp.Or(
		settings.NonNegative("idempotency key retention", settings.F("Retention", c.Retention), settings.F("Interval", c.Interval)),
		settings.NonNegative("idempotency key retention", settings.F("Batch", c.Batch)),
	)
}

// RegisterKeyRetention registers with s the chore that deletes the
// idempotency keys of pool's database once they are older than
// cfg.Retention.
func RegisterKeyRetention(s *chores.Scheduler, pool *pgxpool.Pool, cfg KeyRetentionConfig, log *logrus.Logger) error {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	entry := log.WithField(logging.FieldComponent, "db")
	work := func(ctx context.Context, _ *river.Job[KeyRetentionArgs]) error {
		before := time.Now().Add(-cfg.Retention)
		n, err := chores.DeleteInBatches(ctx, cfg.Batch, func(ctx context.Context, limit int) (int64, error) {
			return DeleteIdempotencyKeys(ctx, pool, before, limit)
		})
		if n > 0 {
			entry.WithField("idempotency_keys", n).Info("db: retention deleted expired idempotency keys")
		}
		return err
	}
	if err := chores.Register(s, KeyRetentionArgs{}, river.WorkFunc(work), cfg.Interval); err != nil {
		return fmt.Errorf("idempotency key retention: %w", err)
	}
	return nil
}
