package relay

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
)

// SetAfterPublish makes r run fn between a batch's confirmations and the
// marking of its rows; an error aborts the batch as a crash there would.
func SetAfterPublish(r *Relay, fn func(ctx context.Context, rows int) error) { r.afterPublish = fn }

// SetOnConfirmed makes r report the event ids of each batch's confirmed rows
// once they are marked.
func SetOnConfirmed(r *Relay, fn func(eventIDs []string)) { r.onConfirmed = fn }

// Pool returns the pool r publishes the outbox of.
func Pool(r *Relay) *pgxpool.Pool { return r.pool }

// HeldBatches returns how many batches r's maintenance switch held back.
func HeldBatches(r *Relay) int64 { return r.maint.held.Load() }

// SetPipeline turns claiming the next batch ahead on or off (on in New).
func SetPipeline(r *Relay, on bool) { r.pipeline = on }
