package flux

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrMissingSchema is wrapped by the errors of PostgresPlayers when the database lacks a
// table, column or schema the store uses: Migrate was not called (call it at start-up),
// or a name in PostgresConfig does not match the game's own tables. Migrate itself returns
// it, naming the missing table or column, when a table it does not own (ExternalPlayerTables,
// AuditColumns) lacks what the configuration maps. The database's *pgconn.PgError stays
// reachable with errors.As.
var ErrMissingSchema = errors.New("flux: a table or column is missing (call PostgresPlayers.Migrate at start-up, or fix the names in PostgresConfig)")

// Error codes of PostgreSQL that say the schema is not what a statement expects.
const (
	codeUndefinedTable  = "42P01"
	codeUndefinedColumn = "42703"
	codeInvalidSchema   = "3F000"
)

// missingSchema reports whether err is the database refusing a statement because a
// table, column or schema it names does not exist.
func missingSchema(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case codeUndefinedTable, codeUndefinedColumn, codeInvalidSchema:
		return true
	}
	return false
}

// schemaHint wraps err with ErrMissingSchema when the database refused a statement for a
// missing table, column or schema; any other error (nil included) is returned as is.
func schemaHint(err error) error {
	if !missingSchema(err) || errors.Is(err, ErrMissingSchema) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrMissingSchema, err)
}

// mappedColumn is one column the store's statements use: its table (schema may be empty:
// the search_path finds it), its name and the PostgresConfig field that names it.
type mappedColumn struct {
	schema, table, column string
	tableField, field     string // the PostgresConfig fields naming the table and the column
}

// mappedColumns lists every table and column the statements of p use, tables in the
// order a reader would check them.
func (p *PostgresPlayers) mappedColumns() []mappedColumn {
	c := p.cfg
	var out []mappedColumn
	add := func(schema, table, tableField, column, field string) {
		if column != "" {
			out = append(out, mappedColumn{schema, table, column, tableField, field})
		}
	}
	add(c.Schema, c.PlayersTable, "PlayersTable", c.PlayerIDColumn, "PlayerIDColumn")
	add(c.Schema, c.PlayersTable, "PlayersTable", c.RoomColumn, "RoomColumn")
	add(c.Schema, c.PlayersTable, "PlayersTable", c.LastActiveColumn, "LastActiveColumn")
	add(c.Schema, c.PlayersTable, "PlayersTable", c.CreatedAtColumn, "CreatedAtColumn")
	lucTable, lucField := c.PlayersTable, "PlayersTable"
	if p.separateLucidity() {
		lucTable, lucField = c.LucidityTable, "LucidityTable"
		add(c.Schema, lucTable, lucField, c.LucidityPlayerIDColumn, "LucidityPlayerIDColumn")
	}
	add(c.Schema, lucTable, lucField, c.LucidityColumn, "LucidityColumn")
	add(c.Schema, lucTable, lucField, c.TierColumn, "TierColumn")
	if c.ExternalPlayerTables {
		// On the library's own player table the game adds these columns itself, maybe
		// after Migrate: they are checked on the game's tables only.
		add(c.Schema, c.PlayersTable, "PlayersTable", c.ScopeColumn, "ScopeColumn")
		add(c.Schema, lucTable, lucField, c.UpdatedAtColumn, "UpdatedAtColumn")
		add(c.Schema, lucTable, lucField, c.TierEnteredColumn, "TierEnteredColumn")
	}
	for _, col := range []string{"player_id", "tick", "residual", "room_id", "evaluations", "last_delta", "writer"} {
		add(c.StateSchema, c.StateTable, "StateTable", col, "StateTable's "+col)
	}
	if c.Audit {
		schema := c.StateSchema
		if c.AuditColumns != (AuditColumns{}) {
			schema = c.Schema // a game's own log table
		}
		for _, col := range p.audit.names() {
			add(schema, c.AuditTable, "AuditTable", col, "AuditColumns")
		}
	}
	return out
}

// checkSQL finds, for each (schema, table, column) of its arrays, whether the table and
// the column exist: an empty schema resolves the table through the search_path, as the
// store's statements do.
const checkSQL = `SELECT i.ord::int, r.oid IS NOT NULL, a.attnum IS NOT NULL
FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS i(sch, tbl, col, ord)
CROSS JOIN LATERAL (SELECT to_regclass(CASE WHEN i.sch = '' THEN quote_ident(i.tbl)
  ELSE quote_ident(i.sch) || '.' || quote_ident(i.tbl) END)::oid AS oid) r
LEFT JOIN pg_attribute a ON a.attrelid = r.oid AND a.attname = i.col AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY i.ord`

// columnsOfSQL lists a table's columns, for the error that names a missing one.
const columnsOfSQL = `SELECT coalesce(string_agg(quote_ident(attname), ', ' ORDER BY attnum), '')
FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`

// checkMapped returns an error wrapping ErrMissingSchema that names the first table or
// column of mappedColumns the database lacks (with the table's columns, to spot the
// typo), or nil. It costs one catalogue query, and one more when something is missing.
func (p *PostgresPlayers) checkMapped(ctx context.Context) error {
	cols := p.mappedColumns()
	schemas, tables, names := make([]string, len(cols)), make([]string, len(cols)), make([]string, len(cols))
	for i, c := range cols {
		schemas[i], tables[i], names[i] = c.schema, c.table, c.column
	}
	rows, err := p.pool.Query(ctx, checkSQL, schemas, tables, names)
	if err != nil {
		return fmt.Errorf("flux: migrate: check the mapped tables: %w", err)
	}
	type found struct {
		Ord           int
		Table, Column bool
	}
	res, err := pgx.CollectRows(rows, pgx.RowToStructByPos[found])
	if err != nil {
		return fmt.Errorf("flux: migrate: check the mapped tables: %w", err)
	}
	for _, f := range res {
		c := cols[f.Ord-1]
		name := qualified(c.schema, c.table)
		if !f.Table {
			return fmt.Errorf("flux: migrate: %w: table %s (PostgresConfig.%s) does not exist", ErrMissingSchema, name, c.tableField)
		}
		if !f.Column {
			var have string
			if err := p.pool.QueryRow(ctx, columnsOfSQL, name).Scan(&have); err != nil {
				have = "unknown: " + err.Error()
			}
			return fmt.Errorf("flux: migrate: %w: table %s has no column %s (PostgresConfig.%s); its columns: %s",
				ErrMissingSchema, name, ident(c.column), c.field, have)
		}
	}
	return nil
}
