package db

import (
	"bytes"
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productd/productd"
)

// claimIdempotencyKey inserts userID's key, or returns the response stored
// under it when an earlier request of that user with the same hash used it.
// A different hash is an EUNPROCESSABLE error. Keys are scoped by user, so
// that two clients never meet each other's keys.
func claimIdempotencyKey(ctx context.Context, tx pgx.Tx, userID int64, key *productd.IdempotencyKey) (*productd.Created, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3) ON CONFLICT (user_id, key) DO NOTHING`,
		userID, key.Key, key.RequestHash)
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
	err = tx.QueryRow(ctx, `SELECT request_hash, response, product_id FROM idempotency_keys WHERE user_id = $1 AND key = $2`, userID, key.Key).
		Scan(&hash, &body, &productID)
	if err != nil {
		return nil, unavailable("read idempotency key", err)
	}
	if !bytes.Equal(hash, key.RequestHash) {
		return nil, productd.Errorf(productd.EUNPROCESSABLE, "Idempotency-Key %q was already used with a different request", key.Key)
	}
	return &productd.Created{ProductID: productID, Body: body, Replayed: true}, nil
}

// storeIdempotentResponse keeps the response of the request that claimed
// userID's key, for its retries.
func storeIdempotentResponse(ctx context.Context, tx pgx.Tx, userID int64, key *productd.IdempotencyKey, productID int64, body []byte) error {
	_, err := tx.Exec(ctx, `UPDATE idempotency_keys SET product_id = $3, response = $4 WHERE user_id = $1 AND key = $2`, userID, key.Key, productID, body)
	if err != nil {
		return unavailable("store idempotent response", err)
	}
	return nil
}

// DeleteIdempotencyKeys deletes up to limit idempotency keys created before
// before, oldest first, and returns how many it deleted. A client retrying
// with a deleted key creates a new product, so keys are kept far longer than
// any client retries (a day by default: see RegisterKeyRetention).
func DeleteIdempotencyKeys(ctx context.Context, pool *pgxpool.Pool, before time.Time, limit int) (int64, error) {
	tag, err := pool.Exec(ctx, `
		DELETE FROM idempotency_keys WHERE (user_id, key) IN (
			SELECT user_id, key FROM idempotency_keys
			WHERE created_at < $1
			ORDER BY created_at
			LIMIT $2
			FOR UPDATE SKIP LOCKED)`, before, limit)
	if err != nil {
		return 0, unavailable("delete expired idempotency keys", err)
	}
	return tag.RowsAffected(), nil
}
