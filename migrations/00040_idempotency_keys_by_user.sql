-- +goose Up
-- An idempotency key belongs to the client that sent it: two clients
-- (user_ids) may pick the same key without one getting the other's product
-- back or being refused for the other's body.
ALTER TABLE idempotency_keys ADD COLUMN user_id bigint;
-- Every committed key holds the response of its request, which names the
-- user; a key without one was never committed and cannot exist.
UPDATE idempotency_keys SET user_id = (convert_from(response, 'UTF8')::jsonb ->> 'user_id')::bigint;
DELETE FROM idempotency_keys WHERE user_id IS NULL;
ALTER TABLE idempotency_keys
    ALTER COLUMN user_id SET NOT NULL,
    DROP CONSTRAINT idempotency_keys_pkey,
    ADD PRIMARY KEY (user_id, key);

-- +goose Down
-- Keys shared by several users keep their oldest use only.
DELETE FROM idempotency_keys k USING idempotency_keys o
WHERE k.key = o.key AND (k.created_at, k.user_id) > (o.created_at, o.user_id);
ALTER TABLE idempotency_keys
    DROP CONSTRAINT idempotency_keys_pkey,
    ADD PRIMARY KEY (key),
    DROP COLUMN user_id;
