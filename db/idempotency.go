package db

import (
	"bytes"
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productd/productd"
)

// claimIdempotencyKey inserts key, or returns the response stored under it
// when an earlier request with the same hash used it. A different hash is an
// EUNPROCESSABLE error.
func claimIdempotencyKey(ctx context.Context, tx pgx.Tx, key *productd.IdempotencyKey) (*productd.Created, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (key, request_hash) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key.Key, key.RequestHash)
	if err != nil {
		return nil, unavailable("claim idempotency key", err)
	}
	if tag.RowsAffected() == 1 {
		return nil, nil
	}
	// The insert waited for any transaction holding the key; under read
	// committed this query sees what that transaction committed.
	var hash, body []byte
	var productID int64
	err = tx.QueryRow(ctx, `SELECT request_hash, response, product_id FROM idempotency_keys WHERE key = $1`, key.Key).Scan(&hash, &body, &productID)
	if err != nil {
		return nil, unavailable("read idempotency key", err)
	}
	if !bytes.Equal(hash, key.RequestHash) {
		return nil, productd.Errorf(productd.EUNPROCESSABLE, "Idempotency-Key %q was already used with a different request", key.Key)
	}
	return &productd.Created{ProductID: productID, Body: body, Replayed: true}, nil
}

// DeleteIdempotencyKeys deletes up to limit idempotency keys created before
// before, oldest first, and returns how many it deleted. A client retrying
// with a deleted key creates a new product, so keys are kept far longer than
// any client retries (a day by default: see RegisterKeyRetention).
func DeleteIdempotencyKeys(ctx context.Context, pool *pgxpool.Pool, before time.Time, limit int) (int64, error) {
	tag, err := pool.Exec(ctx, `
		DELETE FROM idempotency_keys WHERE key = ANY(ARRAY(
			SELECT key FROM idempotency_keys
			WHERE created_at < $1
			ORDER BY created_at
			LIMIT $2
			FOR UPDATE SKIP LOCKED))`, before, limit)
	if err != nil {
		return 0, unavailable("delete expired idempotency keys", err)
	}
	return tag.RowsAffected(), nil
}
