-- Optional audit log: one row per applied lucidity change, written by the apply statement.
CREATE TABLE IF NOT EXISTS {{.Audit}} (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tick_id      text             NOT NULL,
    player_id    text             NOT NULL,
    room_id      text             NOT NULL,
    old_lucidity integer          NOT NULL,
    new_lucidity integer          NOT NULL,
    old_tier     text             NOT NULL,
    new_tier     text             NOT NULL,
    base         double precision NOT NULL,
    companion    double precision NOT NULL,
    adaptation   double precision NOT NULL,
    flux         double precision NOT NULL,
    applied_at   timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS {{.AuditIndex}} ON {{.Audit}} (player_id, applied_at);
