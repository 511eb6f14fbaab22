-- One row per applied flux tick: the apply statement inserts the tick id with ON CONFLICT DO
-- NOTHING and writes only the changes of ticks it inserted, so a retried tick applies once.
CREATE TABLE IF NOT EXISTS {{.AppliedTicks}} (
    tick_id    text        PRIMARY KEY,
    changes    integer     NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS {{.AppliedTicksIndex}} ON {{.AppliedTicks}} (applied_at);
