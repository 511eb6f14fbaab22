package roomstore

import (
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/tracelog"
	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/internal/ident"
)

// Defaults of PostgresConfig, filled in by WithDefaults.
const (
	// DefaultTable is the table the Postgres store reads and writes.
	DefaultTable = "rooms"
	// DefaultBatchChunk is how many ids one query of GetRooms carries.
	DefaultBatchChunk = 5000
	// MaxBatchChunk bounds BatchChunk: one text[] parameter of that many ids of up to
	// MaxIDLength bytes stays well below PostgreSQL's 1 GB parameter limit.
	MaxBatchChunk = 100_000
	// DefaultApplicationName is the application_name OpenPostgres sets on its connections.
	DefaultApplicationName = "gamepersist-roomstore"
	// DefaultTraceLogLevel is the pgx tracelog level of the pool OpenPostgres owns: failed
	// statements and connects only.
	DefaultTraceLogLevel = tracelog.LogLevelError
)

// PostgresConfig configures the Postgres store (NewPostgres, OpenPostgres). The zero value
// is valid: every field has a default, applied by WithDefaults.
type PostgresConfig struct {
	// Schema qualifies Table, as flux.PostgresConfig.Schema qualifies flux's tables; empty
	// resolves Table through the connection's search_path. Migrate creates it if it does
	// not exist.
	Schema string
	// Table is the rooms table (default DefaultTable): "table", or "schema.table" when
	// Schema is empty. Each part is quoted as an identifier, so any name is safe; a dot
	// always separates schema from table. Migrate creates this table.
	Table string

	// SelectSQL, if set, replaces the store's read query, for games whose rooms are spread
	// over several tables (rooms, zones, sub-zones, exits …). It receives one parameter,
	// $1 text[] of room ids, and must return one row per room found with the columns, in
	// this order: id, name, description, plane, zone, sub_zone, environment (text, NULL
	// read as ""), exits (jsonb object direction → room id, or NULL), attributes (json,
	// jsonb or NULL), version (bigint, NULL read as 0). Ids that match no room return no
	// row; a row whose id was not asked for is ignored by GetRoom and GetRooms.
	//
	// A store with a SelectSQL is read-only: PutRoom, PutRoomVersion, DeleteRoom and
	// Migrate return ErrReadOnly, because the game owns that schema and writes it with its
	// own tools. (Put the Cached decorator in front and call Invalidate after such writes.)
	SelectSQL string

	// NotifyChannel, when set, opts in to change capture: Migrate also installs a trigger
	// on Table that sends the ids of the rooms each statement inserts, updates, deletes or
	// truncates as pg_notify notices on this channel (DefaultNotifyChannel is a fine
	// name), so that a ChangeListener drops them from a Cached however they were written,
	// plain SQL included. Empty (the default) installs nothing. It costs writers one pass
	// over each statement's rows and a notice at commit. Stores with a SelectSQL install
	// the trigger on their own tables with ChangeTriggerSQL. The channel is fixed when the
	// step first runs; to change it later, run ChangeTriggerSQL with the new one (it
	// replaces the triggers).
	NotifyChannel string

	// BatchChunk is the largest number of ids one query of GetRooms carries (default
	// DefaultBatchChunk, at most MaxBatchChunk). Longer lists are split into chunks that
	// are still sent together, as one pgx.Batch: one round trip whatever the count.
	BatchChunk int

	// ApplicationName is the application_name OpenPostgres sets on the connections of the
	// pool it opens (default DefaultApplicationName, unless the connection string sets
	// application_name itself; an explicit ApplicationName wins over both). It is how
	// pg_stat_activity shows this store's connections. Not used by NewPostgres.
	ApplicationName string

	// Logger receives the store's own events and, for the pool OpenPostgres opens, pgx's
	// trace log through the zerolog adapter of github.com/jackc/pgx-zerolog. The zero
	// value, like zerolog.Nop(), writes nothing.
	Logger zerolog.Logger

	// TraceLogLevel is the pgx tracelog level of the pool OpenPostgres opens (default
	// DefaultTraceLogLevel; tracelog.LogLevelNone turns it off). Query tracing costs an
	// allocation or two per statement at the levels that log every statement (Info and
	// above). A pool given to NewPostgres keeps its own tracer.
	TraceLogLevel tracelog.LogLevel
}

// WithDefaults returns c with every unset field set to its default. It is idempotent.
func (c PostgresConfig) WithDefaults() PostgresConfig {
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.BatchChunk == 0 {
		c.BatchChunk = DefaultBatchChunk
	}
	if c.ApplicationName == "" {
		c.ApplicationName = DefaultApplicationName
	}
	if c.TraceLogLevel == 0 {
		c.TraceLogLevel = DefaultTraceLogLevel
	}
	return c
}

// validate reports the first invalid field of a config that went through WithDefaults, as
// a *ConfigError (wrapping ErrInvalidConfig).
func (c PostgresConfig) validate() error {
	bad := func(field string, value any, format string, args ...any) error {
		return configErrorf("PostgresConfig."+field, value, format, args...)
	}
	if c.Schema != "" && strings.Contains(c.Table, ".") {
		return bad("Table", c.Table, "qualified while Schema %q is set: use one", c.Schema)
	}
	if _, err := tableIdentifier(c.qualifiedTable()); err != nil {
		return err
	}
	if c.NotifyChannel != "" {
		if err := validateChannel("PostgresConfig.NotifyChannel", c.NotifyChannel); err != nil {
			return err
		}
	}
	if c.BatchChunk < 1 || c.BatchChunk > MaxBatchChunk {
		return bad("BatchChunk", c.BatchChunk, "not in [1, %d]", MaxBatchChunk)
	}
	if strings.ContainsRune(c.SelectSQL, 0) {
		return bad("SelectSQL", c.SelectSQL, "contains NUL")
	}
	if c.SelectSQL != "" && !strings.Contains(c.SelectSQL, "$1") {
		return bad("SelectSQL", c.SelectSQL, "must use $1 (the text[] of ids)")
	}
	if why, _ := ident.Problem(c.ApplicationName, ident.MaxLength); why != "" {
		return bad("ApplicationName", c.ApplicationName, "%s", why)
	}
	if c.TraceLogLevel < tracelog.LogLevelNone || c.TraceLogLevel > tracelog.LogLevelTrace {
		return bad("TraceLogLevel", int(c.TraceLogLevel), "unknown level")
	}
	return nil
}

// qualifiedTable returns Table, qualified by Schema when it is set.
func (c PostgresConfig) qualifiedTable() string {
	if c.Schema == "" {
		return c.Table
	}
	return c.Schema + "." + c.Table
}

// tableIdentifier splits "table" or "schema.table" and returns it quoted for SQL.
func tableIdentifier(table string) (string, error) {
	parts := strings.Split(table, ".")
	if len(parts) > 2 {
		return "", configError("PostgresConfig.Table", table, "at most one dot (schema.table)")
	}
	for _, p := range parts {
		if why := ident.IdentifierProblem(p); why != "" {
			return "", configErrorf("PostgresConfig.Table", table, "a part %s", why)
		}
	}
	return pgx.Identifier(parts).Sanitize(), nil
}
