-- Change capture for the rooms of a Postgres RoomStore (opt-in: PostgresConfig.NotifyChannel,
-- or ChangeTriggerSQL for a game's own tables). After each statement that inserts, updates,
-- deletes or truncates rows of {{.Table}}, {{.Function}} sends, at commit, pg_notify on the
-- channel {{.Channel}} with the ids of the rows it touched (column {{.IDColumn}}): a JSON
-- array of strings, split over several notices of at most {{.MaxPayload}} bytes each (NOTIFY
-- refuses 8,000), or the payload "*" (every room may have changed) for a TRUNCATE and for a
-- statement whose ids would need more than {{.MaxNotices}} notices. A ChangeListener turns
-- these notices into cache invalidations.
--
-- Statement-level triggers with transition tables: one UPDATE of 10,000 rows costs one
-- pass over its rows and a handful of notices, not 10,000. Re-running this file replaces
-- the function and the triggers, so it is safe for games that run it with their own tool.
CREATE OR REPLACE FUNCTION {{.Function}}() RETURNS trigger
LANGUAGE plpgsql AS $gp$
DECLARE
    channel text := TG_ARGV[0];
    id_col  text := TG_ARGV[1];
    ids     text[];
    piece   text;
    batch   text := '';
    total   bigint;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify(channel, '*');
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        EXECUTE format('SELECT array_agg(DISTINCT k) FROM (SELECT %I::text FROM gp_new_rows) AS c(k) WHERE k IS NOT NULL', id_col) INTO ids;
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE format('SELECT array_agg(DISTINCT k) FROM (SELECT %I::text FROM gp_old_rows) AS c(k) WHERE k IS NOT NULL', id_col) INTO ids;
    ELSE
        EXECUTE format('SELECT array_agg(DISTINCT k) FROM (SELECT %I::text FROM gp_old_rows UNION ALL SELECT %I::text FROM gp_new_rows) AS c(k) WHERE k IS NOT NULL', id_col, id_col) INTO ids;
    END IF;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT sum(octet_length(to_json(i)::text) + 1) INTO total FROM unnest(ids) AS u(i);
    IF total > {{.MaxPayload}} * {{.MaxNotices}} / 2 THEN
        PERFORM pg_notify(channel, '*');
        RETURN NULL;
    END IF;
    FOREACH piece IN ARRAY ids LOOP
        piece := to_json(piece)::text;
        IF batch <> '' AND octet_length(batch) + octet_length(piece) + 2 > {{.MaxPayload}} THEN
            PERFORM pg_notify(channel, '[' || batch || ']');
            batch := '';
        END IF;
        IF batch = '' THEN
            batch := piece;
        ELSE
            batch := batch || ',' || piece;
        END IF;
    END LOOP;
    PERFORM pg_notify(channel, '[' || batch || ']');
    RETURN NULL;
END
$gp$;

DROP TRIGGER IF EXISTS gamepersist_notify_insert ON {{.Table}};
CREATE TRIGGER gamepersist_notify_insert AFTER INSERT ON {{.Table}}
    REFERENCING NEW TABLE AS gp_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {{.Function}}({{.Channel}}, {{.IDColumn}});
DROP TRIGGER IF EXISTS gamepersist_notify_update ON {{.Table}};
CREATE TRIGGER gamepersist_notify_update AFTER UPDATE ON {{.Table}}
    REFERENCING OLD TABLE AS gp_old_rows NEW TABLE AS gp_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {{.Function}}({{.Channel}}, {{.IDColumn}});
DROP TRIGGER IF EXISTS gamepersist_notify_delete ON {{.Table}};
CREATE TRIGGER gamepersist_notify_delete AFTER DELETE ON {{.Table}}
    REFERENCING OLD TABLE AS gp_old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {{.Function}}({{.Channel}}, {{.IDColumn}});
DROP TRIGGER IF EXISTS gamepersist_notify_truncate ON {{.Table}};
CREATE TRIGGER gamepersist_notify_truncate AFTER TRUNCATE ON {{.Table}}
    FOR EACH STATEMENT EXECUTE FUNCTION {{.Function}}({{.Channel}}, {{.IDColumn}});
