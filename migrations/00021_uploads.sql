-- +goose Up
-- Image files uploaded through the API, and the product that owns each. A
-- row is written before its object, staged; the transaction that creates or
-- changes the product claims it (owned). Only the owner's deletion or a
-- change of its images releases it, and only staged or released objects are
-- ever removed: a product that lists another's URL owns nothing by it.
-- Objects staged or released for longer than any request takes (a request
-- that died between storing and committing, or a release whose removal
-- never ran) are removed by a periodic sweep.
CREATE TABLE uploads (
    object_key text        PRIMARY KEY,
    url        text        NOT NULL,
    state      text        NOT NULL DEFAULT 'staged' CHECK (state IN ('staged', 'owned', 'released')),
    product_id bigint      REFERENCES products (id),
    -- When the upload entered its state.
    since      timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'owned') = (product_id IS NOT NULL))
);
-- A product's uploads, for its changes and its deletion (and the foreign
-- key's check when a product is deleted, which this predicate serves).
CREATE INDEX uploads_product_id_idx ON uploads (product_id) WHERE product_id IS NOT NULL;
-- What the sweep looks at: uploads no product owns, oldest first.
CREATE INDEX uploads_unowned_idx ON uploads (since) WHERE state <> 'owned';

-- +goose Down
DROP TABLE uploads;
