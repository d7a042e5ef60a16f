-- +goose NO TRANSACTION
-- +goose Up
-- The age of the oldest pending row, for the ops dashboard: the first entry of
-- this index. Partial, so it stays as small as the backlog however many rows
-- were ever published; outbox_due_idx is ordered by due time instead, which a
-- retried row pushes back. Built concurrently so that writers to a live
-- outbox are not blocked while it builds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_pending_id_idx ON outbox (id) WHERE status = 'pending';

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS outbox_pending_id_idx;
