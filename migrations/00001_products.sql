-- +goose Up
-- The products table keeps the seed service's column names so its clients and
-- reports keep working. Prices are numeric, never floats.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE products (
    id                        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id                   bigint         NOT NULL CHECK (user_id > 0),
    product_name              text           NOT NULL CHECK (product_name <> ''),
    product_description       text           NOT NULL DEFAULT '',
    product_price             numeric(12, 2) NOT NULL CHECK (product_price >= 0),
    product_images            text[]         NOT NULL DEFAULT '{}',
    compressed_product_images text[]         NOT NULL DEFAULT '{}',
    image_status              text           NOT NULL DEFAULT 'none'
        CHECK (image_status IN ('none', 'pending', 'processing', 'done', 'failed')),
    image_error               text           NOT NULL DEFAULT '',
    version                   bigint         NOT NULL DEFAULT 1,
    -- The version at which product_images last changed; the image worker writes
    -- its result only while this still matches the event it processed.
    images_version            bigint         NOT NULL DEFAULT 1,
    created_at                timestamptz    NOT NULL DEFAULT now(),
    updated_at                timestamptz    NOT NULL DEFAULT now()
);

-- Lists are keyset-paginated by id; each filter has an index that leads with
-- it and ends with id, so a filtered page is an index range scan.
CREATE INDEX products_user_id_id_idx ON products (user_id, id);
CREATE INDEX products_price_id_idx ON products (product_price, id);
-- A case-insensitive substring search (ILIKE '%term%') uses the trigram index.
CREATE INDEX products_name_trgm_idx ON products USING gin (product_name gin_trgm_ops);

-- The transactional outbox: a row is committed with the change it announces and
-- published by the relay afterwards.
CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    event_type      text        NOT NULL,
    product_id      bigint      NOT NULL,
    payload         jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'published', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz
);

-- What the relay claims: pending rows that are due, oldest first. Partial, so
-- it stays as small as the backlog however many rows were ever published.
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at, id) WHERE status = 'pending';
-- Dead rows for the dashboard, and published rows for retention.
CREATE INDEX outbox_dead_idx ON outbox (id) WHERE status = 'dead';
CREATE INDEX outbox_published_at_idx ON outbox (published_at) WHERE status = 'published';

-- Idempotency keys of POST /products: the first response under a key is kept
-- so a retry gets it back instead of creating a second product.
CREATE TABLE idempotency_keys (
    key          text        PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    request_hash bytea       NOT NULL,
    product_id   bigint,
    -- The exact bytes of the first response: jsonb would reorder its keys.
    response     bytea,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE outbox;
DROP TABLE products;
