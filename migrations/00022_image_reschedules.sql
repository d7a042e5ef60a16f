-- +goose NO TRANSACTION
-- +goose Up
-- Images that waited too long for a result are scheduled again, by a sweep
-- or an operator: image_reschedules counts the times (since the images last
-- changed) and image_reschedule_reason says the last why, for the ops
-- console.
ALTER TABLE products
    ADD COLUMN IF NOT EXISTS image_reschedules       integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS image_reschedule_reason text    NOT NULL DEFAULT '';

-- What the sweep looks for: images waiting for a result, longest idle
-- first. Partial, so it stays as small as the images in flight. Built
-- concurrently so that writers to a live table are not blocked.
CREATE INDEX CONCURRENTLY IF NOT EXISTS products_images_unfinished_idx
    ON products (image_activity_at) WHERE image_status IN ('pending', 'processing');

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS products_images_unfinished_idx;
ALTER TABLE products
    DROP COLUMN IF EXISTS image_reschedule_reason,
    DROP COLUMN IF EXISTS image_reschedules;
