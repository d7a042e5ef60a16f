-- +goose Up
-- A name filter without three letters or digits in a row has no trigram to
-- look up in products_name_trgm_idx: it matches the start of the name,
-- case-insensitively, through this index (text_pattern_ops, so that a
-- LIKE 'prefix%' is a range scan in any collation).
CREATE INDEX products_name_prefix_idx ON products (lower(product_name) text_pattern_ops);

-- +goose Down
DROP INDEX products_name_prefix_idx;
