-- +goose Up
-- Every outbox row is written twice, by the insert and by the relay's mark,
-- and neither write needs what these two cost it:
--  * the unique index on event_id took an index entry on every insert and
--    every mark. Event ids are fresh UUIDv7s made by outbox.Enqueue; nothing
--    looks rows up by them (the dashboard goes by row id).
--  * jsonb parsed the payload on insert and printed it again on every claim.
--    json keeps the bytes as Enqueue wrote them, which are the bytes the relay
--    publishes, still checked to be JSON.
ALTER TABLE outbox DROP CONSTRAINT outbox_event_id_key;
ALTER TABLE outbox ALTER COLUMN payload TYPE json USING payload::json;

-- +goose Down
ALTER TABLE outbox ALTER COLUMN payload TYPE jsonb USING payload::jsonb;
ALTER TABLE outbox ADD CONSTRAINT outbox_event_id_key UNIQUE (event_id);
