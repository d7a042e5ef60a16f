-- +goose Up
-- The relay's maintenance switch: one row, read by every relay process every
-- second, so that a pause reaches them all and survives their restarts.
CREATE TABLE relay_control (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    paused     boolean     NOT NULL DEFAULT false,
    -- Who flipped the switch last, why, and when.
    changed_by text        NOT NULL DEFAULT '',
    reason     text        NOT NULL DEFAULT '',
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO relay_control DEFAULT VALUES;

-- What each relay process reports about itself every few seconds, so that a
-- dashboard in another process can show it. A row whose updated_at stops
-- moving belongs to a process that is gone.
CREATE TABLE relay_status (
    process              text        PRIMARY KEY,
    -- running, paused (the maintenance switch), broker_down, or stopped.
    state                text        NOT NULL,
    since                timestamptz NOT NULL,
    reason               text        NOT NULL DEFAULT '',
    broker_state         text        NOT NULL DEFAULT '',
    broker_since         timestamptz,
    -- The last batch that had rows: when it finished, its size, what became
    -- of its rows, how long it took and its outcome in a word.
    last_batch_at        timestamptz,
    last_batch_rows      integer     NOT NULL DEFAULT 0,
    last_batch_published integer     NOT NULL DEFAULT 0,
    last_batch_failed    integer     NOT NULL DEFAULT 0,
    last_batch_ms        double precision NOT NULL DEFAULT 0,
    last_batch_outcome   text        NOT NULL DEFAULT '',
    -- The process's counters since it started.
    published            bigint      NOT NULL DEFAULT 0,
    failed               bigint      NOT NULL DEFAULT 0,
    started_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Every action taken through the ops console or `productd ops`: who, what,
-- when, on what, and how it ended.
CREATE TABLE ops_actions (
    id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text        NOT NULL,
    action text        NOT NULL,
    target text        NOT NULL DEFAULT '',
    detail text        NOT NULL DEFAULT '',
    result text        NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE ops_actions;
DROP TABLE relay_status;
DROP TABLE relay_control;
