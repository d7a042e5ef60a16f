-- +goose Up
-- The W3C trace context of the transaction that wrote the row (its
-- traceparent and tracestate), so that the relay's publication and the
-- consumers continue the trace of the request that caused the event. NULL
-- when that request was not traced. Written by the row's insert itself, so
-- tracing adds no statement to a write. Adding nullable columns without a
-- default rewrites nothing.
ALTER TABLE outbox ADD COLUMN traceparent text, ADD COLUMN tracestate text;

-- +goose Down
ALTER TABLE outbox DROP COLUMN traceparent, DROP COLUMN tracestate;
