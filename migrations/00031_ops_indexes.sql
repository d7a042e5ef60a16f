-- +goose NO TRANSACTION
-- +goose Up
-- The indexes behind the ops console, each as small as what it serves, so
-- that its queries cost the same at ten million outbox rows and a million
-- products as at none. Built concurrently: writers to live tables are not
-- blocked while they build.

-- One product's story: every outbox row of a product.
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_product_id_idx ON outbox (product_id);

-- Rows waiting for a retry, next one first: only pending rows that failed
-- at least once, usually a handful.
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_retry_idx ON outbox (next_attempt_at)
    WHERE status = 'pending' AND attempts > 0;

-- Products whose images are not finished, oldest change first, and the
-- latest failures: the unfinished and the failed products, never the done
-- ones.
CREATE INDEX CONCURRENTLY IF NOT EXISTS products_images_open_idx ON products (updated_at)
    WHERE image_status IN ('pending', 'processing');
CREATE INDEX CONCURRENTLY IF NOT EXISTS products_images_failed_idx ON products (updated_at)
    WHERE image_status = 'failed';

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS products_images_failed_idx;
DROP INDEX CONCURRENTLY IF EXISTS products_images_open_idx;
DROP INDEX CONCURRENTLY IF EXISTS outbox_retry_idx;
DROP INDEX CONCURRENTLY IF EXISTS outbox_product_id_idx;
