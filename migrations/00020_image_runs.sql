-- +goose Up
-- image_runs counts the image worker's runs on the current images that
-- started and have not ended: a run that never ends is a worker process that
-- died holding them, and a few of those in a row mean the images stop every
-- worker that takes them. Redeliveries of messages that no run ever started
-- (prefetched by a worker that shut down or lost its connection) are not
-- runs, so they do not count.
--
-- image_activity_at is when the images were last scheduled or a run last
-- started on them: the age after which unfinished images count as stuck.
-- now() is evaluated once, by the ALTER, so adding the column does not
-- rewrite the table; existing rows start their age at the migration.
ALTER TABLE products
    ADD COLUMN image_runs        integer     NOT NULL DEFAULT 0,
    ADD COLUMN image_activity_at timestamptz NOT NULL DEFAULT now();

-- +goose Down
ALTER TABLE products
    DROP COLUMN image_activity_at,
    DROP COLUMN image_runs;
