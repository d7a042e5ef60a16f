package relay

import (
	"context"
	"time"

	"github.com/productd/productd/chores"
	"github.com/productd/productd/outbox"
)

// Retain deletes published rows older than Config.PublishedRetention, in
// batches of Config.RetentionBatch, logs how many it deleted, and returns
// that number. The retention chore calls it; it is exported for tests and
// tools.
func (r *Relay) Retain(ctx context.Context) (int64, error) {
	before := time.Now().Add(-r.cfg.PublishedRetention)
	n, err := chores.DeleteInBatches(ctx, r.cfg.RetentionBatch, func(ctx context.Context, limit int) (int64, error) {
		return outbox.DeletePublished(ctx, r.pool, before, limit)
	})
	if n > 0 {
		r.log.WithField("published_rows", n).Info("relay: retention deleted old published rows")
	}
	return n, err
}
