-- The default player table of package flux: one row per player, lucidity and tier inline.
-- A game with its own tables points PostgresConfig at them instead and skips this file.
-- last_active and created_at default to the wall clock: a game whose game time runs behind
-- it must write game time (UpsertPlayers, UpdatePresence), or the player counts as active
-- until game time catches up.
CREATE TABLE IF NOT EXISTS {{.Players}} (
    {{.PlayerID}}   {{.PlayerIDType}} PRIMARY KEY,
    {{.Room}}       text        NOT NULL,
    {{.Lucidity}}   integer     NOT NULL DEFAULT {{.MaxLucidity}}
                    CHECK ({{.Lucidity}} BETWEEN {{.MinLucidity}} AND {{.MaxLucidity}}),
    {{.Tier}}       text        NOT NULL DEFAULT 'lucid'
                    CHECK ({{.Tier}} IN ({{.TierList}})),
    {{.LastActive}} timestamptz NOT NULL DEFAULT now(),
    {{.CreatedAt}}  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS {{.LastActiveIndex}} ON {{.Players}} ({{.LastActive}});
CREATE INDEX IF NOT EXISTS {{.CreatedAtIndex}} ON {{.Players}} ({{.CreatedAt}});
