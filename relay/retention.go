package relay

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/productd/productd/db"
	"github.com/productd/productd/outbox"
)

// Retained is what one retention run deleted.
type Retained struct {
	Published       int64
	IdempotencyKeys int64
}

// Retain deletes published rows older than Config.PublishedRetention and
// idempotency keys older than Config.IdempotencyKeyRetention, in batches of
// Config.RetentionBatch, and logs what it deleted. The retention job calls
// it; it is exported for tests and tools.
func (r *Relay) Retain(ctx context.Context) (Retained, error) {
	var out Retained
	now := time.Now()
	var err error
	out.Published, err = r.deleteInBatches(ctx, func(ctx context.Context, limit int) (int64, error) {
		return outbox.DeletePublished(ctx, r.pool, now.Add(-r.cfg.PublishedRetention), limit)
	})
	if err != nil {
		return out, err
	}
	out.IdempotencyKeys, err = r.deleteInBatches(ctx, func(ctx context.Context, limit int) (int64, error) {
		return db.DeleteIdempotencyKeys(ctx, r.pool, now.Add(-r.cfg.IdempotencyKeyRetention), limit)
	})
	if err != nil {
		return out, err
	}
	if out.Published > 0 || out.IdempotencyKeys > 0 {
		r.log.WithFields(logrus.Fields{"published_rows": out.Published, "idempotency_keys": out.IdempotencyKeys}).
			Info("relay: retention deleted old rows")
	}
	return out, nil
}

// deleteInBatches calls del until a batch comes back short.
func (r *Relay) deleteInBatches(ctx context.Context, del func(context.Context, int) (int64, error)) (int64, error) {
	var total int64
	for {
		n, err := del(ctx, r.cfg.RetentionBatch)
		total += n
		if err != nil {
			return total, err
		}
		if n < int64(r.cfg.RetentionBatch) {
			return total, nil
		}
		if ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
}
