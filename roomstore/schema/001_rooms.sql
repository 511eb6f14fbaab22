-- Version 1 of the rooms table of the Postgres RoomStore. {{.Table}} is the quoted,
-- optionally schema-qualified table name. Migrate runs it once and records it in
-- gamepersist_migrations; IF NOT EXISTS keeps it safe for games that run Schema's SQL
-- with their own tool.
--
-- attributes is json, not jsonb: json keeps the text as written (the store writes compact
-- JSON), so a room's Attributes read back byte for byte equal to what was put, as
-- Room.Equal requires; jsonb would reorder object keys. Cast it (attributes::jsonb) to
-- query inside it.
CREATE TABLE IF NOT EXISTS {{.Table}} (
    id          text        PRIMARY KEY,
    name        text        NOT NULL DEFAULT '',
    description text        NOT NULL DEFAULT '',
    plane       text        NOT NULL DEFAULT '',
    zone        text        NOT NULL DEFAULT '',
    sub_zone    text        NOT NULL DEFAULT '',
    environment text        NOT NULL DEFAULT '',
    exits       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    attributes  json,
    version     bigint      NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
