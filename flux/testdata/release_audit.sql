-- Optional audit log: one row per lucidity-changing write (one tick, or a backlog of ticks
-- summed after an outage), written by the apply statement.
CREATE TABLE IF NOT EXISTS {{.Audit}} (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    player_id    text             NOT NULL,
    tick         bigint           NOT NULL,
    ticks        integer          NOT NULL,
    room_id      text             NOT NULL,
    old_lucidity integer          NOT NULL,
    new_lucidity integer          NOT NULL,
    delta        integer          NOT NULL,
    old_tier     text             NOT NULL,
    new_tier     text             NOT NULL,
    flux         double precision NOT NULL,
    reason       text             NOT NULL,
    applied_at   timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS {{.AuditIndex}} ON {{.Audit}} (player_id, applied_at);
