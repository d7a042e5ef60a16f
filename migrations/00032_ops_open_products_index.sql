-- +goose NO TRANSACTION
-- +goose Up
-- The unfinished products' index carries their status, so that the console
-- counts pending and processing products from the index alone instead of
-- visiting each row.
DROP INDEX CONCURRENTLY IF EXISTS products_images_open_idx;
CREATE INDEX CONCURRENTLY IF NOT EXISTS products_images_open_idx ON products (updated_at) INCLUDE (image_status)
    WHERE image_status IN ('pending', 'processing');

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS products_images_open_idx;
CREATE INDEX CONCURRENTLY IF NOT EXISTS products_images_open_idx ON products (updated_at)
    WHERE image_status IN ('pending', 'processing');
