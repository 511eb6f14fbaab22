-- The rooms table of the Postgres RoomStore. {{table}} is replaced by the quoted,
-- optionally schema-qualified table name. Every statement is idempotent: Migrate runs the
-- whole file each time, under a transaction-scoped advisory lock.
--
-- attributes is json, not jsonb: json keeps the text as written (the store writes compact
-- JSON), so a room's Attributes read back byte for byte equal to what was put, as
-- Room.Equal requires; jsonb would reorder object keys. Cast it (attributes::jsonb) to
-- query inside it.
CREATE TABLE IF NOT EXISTS {{table}} (
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
