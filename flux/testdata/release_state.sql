-- One row per ticked player: the last flux tick applied to it and the carry-over it left.
-- Every apply is a compare-and-set on (tick, writer), so a tick is applied to a player once
-- whatever the number of servers, restarts and retries.
CREATE TABLE IF NOT EXISTS {{.State}} (
    player_id   {{.PlayerIDType}}    PRIMARY KEY,
    tick        bigint           NOT NULL,
    residual    double precision NOT NULL,
    room_id     text             NOT NULL,
    evaluations integer          NOT NULL,
    last_delta  integer          NOT NULL,
    writer      bigint           NOT NULL,
    updated_at  timestamptz      NOT NULL DEFAULT now()
) WITH (fillfactor = 50); -- room on every page for HOT updates: each tick rewrites every row
