-- +goose Up
-- The periodic jobs run in River's productd_chores queue (package chores).
-- Databases migrated from a release that ran them in productd_relay may hold
-- runs of them there that no client works any more; they would stay queued
-- for ever. Delete them; the jobs of productd_chores are not touched.
DELETE FROM river_job
WHERE queue = 'productd_relay'
  AND state IN ('available', 'pending', 'retryable', 'scheduled');

-- +goose Down
-- Nothing to restore: the deleted runs were never going to be worked.
SELECT 1;
