package roomstore

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// schemaFiles holds the schema, one idempotent SQL file per step, applied in name order.
//
//go:embed schema/*.sql
var schemaFiles embed.FS

// createSchemaSQL returns a statement that creates schema if it does not exist, checking
// first, so that a role without CREATE on the database can use a schema that exists.
func createSchemaSQL(schema string) string {
	lit := "'" + strings.ReplaceAll(schema, "'", "''") + "'"
	if strings.Contains(schema, "$gp$") {
		return "CREATE SCHEMA IF NOT EXISTS " + pgx.Identifier{schema}.Sanitize() + ";\n"
	}
	return "DO $gp$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = " + lit +
		") THEN EXECUTE format('CREATE SCHEMA %I', " + lit + "); END IF; END $gp$;\n"
}

// tablePlaceholder is replaced in the schema files by the quoted table name.
const tablePlaceholder = "{{table}}"

// Schema returns the SQL that Migrate runs for table ("table" or "schema.table", quoted
// safely; the schema is created when it does not exist), for games that run migrations
// with their own tool. Every statement is idempotent. An invalid table name returns an error wrapping ErrInvalidConfig.
func Schema(table string) (string, error) {
	ident, err := tableIdentifier(table)
	if err != nil {
		return "", err
	}
	var pre string
	if schema, _, ok := strings.Cut(table, "."); ok {
		pre = createSchemaSQL(schema)
	}
	names, err := fs.Glob(schemaFiles, "schema/*.sql")
	if err != nil {
		return "", fmt.Errorf("roomstore: read embedded schema: %w", err)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(pre)
	for _, name := range names {
		text, err := schemaFiles.ReadFile(name)
		if err != nil {
			return "", fmt.Errorf("roomstore: read embedded schema: %w", err)
		}
		b.WriteString(strings.ReplaceAll(string(text), tablePlaceholder, ident))
		b.WriteString("\n")
	}
	return b.String(), nil
}

// migrationLockKey derives the advisory lock key of a table's migration, so that stores
// migrating different tables do not wait for each other.
func migrationLockKey(table string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("gamepersist/roomstore/migrate\x00" + table))
	return int64(h.Sum64()) //nolint:gosec // a hash reinterpreted as a lock key, overflow intended
}

// Migrate creates the store's table if it does not exist. It is idempotent and safe when
// several processes run it at once: it runs in one transaction holding a transaction-scoped
// advisory lock keyed by the table name, so concurrent migrations run one after the other.
// It costs one transaction (a few round trips). A store with a custom SelectSQL returns
// ErrReadOnly: the game owns that schema.
func (s *Postgres) Migrate(ctx context.Context) error {
	if err := s.ready(ctx, "migrate"); err != nil {
		return err
	}
	if s.readOnly {
		return fmt.Errorf("roomstore: migrate: %w", ErrReadOnly)
	}
	sql, err := Schema(s.cfg.qualifiedTable())
	if err != nil {
		return err
	}
	s.stats.roundTrips.Add(1)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey(s.table)); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		// Simple protocol: the schema is several statements and has no parameters.
		if _, err := tx.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			return fmt.Errorf("apply schema: %w", err)
		}
		return nil
	})
	if err != nil {
		return s.fail(ctx, "migrate", err)
	}
	s.log.Info().Msg("roomstore: schema migrated")
	return nil
}
