package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productd/productd"
)

// StageUpload records u as a staged upload, owned by no product yet. Call it before the object is
// stored, so that no stored upload is ever without its row: one that no
// product claims is found and removed.
func StageUpload(ctx context.Context, pool *pgxpool.Pool, u productd.Upload) error {
	if _, err := pool.Exec(ctx, `INSERT INTO uploads (object_key, url) VALUES ($1, $2)`, u.Key, u.URL); err != nil {
		return unavailable(fmt.Sprintf("stage upload %s", u.Key), err)
	}
	return nil
}

// RemoveFunc removes the stored objects of keys; a missing one is no error.
type RemoveFunc func(ctx context.Context, keys []string) error

// ReleaseStagedUploads removes those of keys that are still staged: remove
// deletes their objects, then their rows go, in one transaction that holds
// the rows meanwhile. An upload that a product's transaction claimed, even
// one whose commit its caller never heard of, is left alone.
func ReleaseStagedUploads(ctx context.Context, pool *pgxpool.Pool, keys []string, remove RemoveFunc) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := removeUnowned(ctx, pool, `
		SELECT object_key FROM uploads
		WHERE object_key = ANY($1) AND state = 'staged'
		FOR UPDATE`, remove, keys)
	if err != nil {
		return fmt.Errorf("release staged uploads: %w", err)
	}
	return nil
}

// SweepUnownedUploads removes up to limit uploads that have been staged or
// released since before before, oldest first, and returns how many it
// removed. Rows another sweep holds are skipped.
func SweepUnownedUploads(ctx context.Context, pool *pgxpool.Pool, before time.Time, limit int, remove RemoveFunc) (int, error) {
	n, err := removeUnowned(ctx, pool, `
		SELECT object_key FROM uploads
		WHERE state <> 'owned' AND since < $1
		ORDER BY since
		LIMIT $2
		FOR UPDATE SKIP LOCKED`, remove, before, limit)
	if err != nil {
		return n, fmt.Errorf("sweep unowned uploads: %w", err)
	}
	return n, nil
}

// removeUnowned locks the uploads no product owns that query selects, removes
// their objects, then deletes their rows.
func removeUnowned(ctx context.Context, pool *pgxpool.Pool, query string, remove RemoveFunc, args ...any) (int, error) {
	var n int
	err := InTx(ctx, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return unavailable("lock unowned uploads", err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return unavailable("lock unowned uploads", err)
		} else if len(keys) == 0 {
			return nil
		}
		if err := remove(ctx, keys); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM uploads WHERE object_key = ANY($1)`, keys); err != nil {
			return unavailable("delete upload rows", err)
		}
		n = len(keys)
		return nil
	})
	return n, err
}

// claimUploads makes the product own uploads inside its transaction. Each
// must be staged: a key that is not was never staged by this server, was
// swept away as abandoned, or belongs to a product already.
func claimUploads(ctx context.Context, tx pgx.Tx, productID int64, uploads []productd.Upload) error {
	if len(uploads) == 0 {
		return nil
	}
	keys := make([]string, len(uploads))
	for i, u := range uploads {
		keys[i] = u.Key
	}
	tag, err := tx.Exec(ctx, `
		UPDATE uploads SET state = 'owned', product_id = $1, since = now()
		WHERE object_key = ANY($2) AND state = 'staged'`, productID, keys)
	if err != nil {
		return unavailable(fmt.Sprintf("claim uploads for product %d", productID), err)
	}
	if tag.RowsAffected() != int64(len(keys)) {
		return productd.Errorf(productd.ECONFLICT, "%d of the %d uploaded files are no longer stored; send them again", len(keys)-int(tag.RowsAffected()), len(keys))
	}
	return nil
}

// releaseUploads releases the product's uploads whose URLs are not among
// keep, inside its transaction, and returns their keys: the objects its
// event asks the worker to remove.
func releaseUploads(ctx context.Context, tx pgx.Tx, productID int64, keep []string) ([]string, error) {
	if keep == nil {
		keep = []string{}
	}
	rows, err := tx.Query(ctx, `
		UPDATE uploads SET state = 'released', product_id = NULL, since = now()
		WHERE product_id = $1 AND url <> ALL($2)
		RETURNING object_key`, productID, keep)
	if err != nil {
		return nil, unavailable(fmt.Sprintf("release uploads of product %d", productID), err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, unavailable(fmt.Sprintf("release uploads of product %d", productID), err)
	}
	return keys, nil
}
