package flux

import (
	"errors"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// ErrInvalidConfig is wrapped by every configuration error of PostgresPlayers and Runner.
var ErrInvalidConfig = errors.New("flux: invalid config")

// Default table and column names of PostgresPlayers (the embedded schema uses them).
const (
	DefaultPlayersTable = "flux_players"
	DefaultStateTable   = "flux_state"
	DefaultAuditTable   = "flux_audit"
)

// PostgresConfig names the tables and columns PostgresPlayers reads and writes. The zero
// value, filled by WithDefaults, is the embedded default schema: one table flux_players
// (id text, room_id, lucidity, tier, last_active, created_at). A game points it at its own
// tables instead — players in one table, lucidity and tier in another — and sets
// ExternalPlayerTables so that Migrate leaves them alone. Every name is quoted as an SQL
// identifier, so any name is safe; Filter is the one piece of SQL taken as written.
type PostgresConfig struct {
	// Schema qualifies the player and lucidity tables; empty uses the connection's
	// search_path.
	Schema string
	// StateSchema qualifies the library's own tables (state, audit); empty means Schema.
	// Migrate creates it if it does not exist.
	StateSchema string

	// PlayersTable holds one row per player (flux_players).
	PlayersTable string
	// PlayerIDColumn, RoomColumn, LastActiveColumn and CreatedAtColumn name its columns
	// (id, room_id, last_active, created_at).
	PlayerIDColumn   string
	RoomColumn       string
	LastActiveColumn string
	CreatedAtColumn  string
	// PlayerIDType is the SQL type of the player id columns: "text" (default), "uuid",
	// "bigint" or "integer". Ids travel as text and are cast to it.
	PlayerIDType string

	// LucidityTable holds lucidity and tier; empty means PlayersTable.
	LucidityTable string
	// LucidityPlayerIDColumn is LucidityTable's player id column when it is a separate
	// table (player_id).
	LucidityPlayerIDColumn string
	// LucidityColumn and TierColumn name the integer lucidity and the text tier (lucidity,
	// tier).
	LucidityColumn string
	TierColumn     string

	// ExternalPlayerTables says the player and lucidity tables belong to the game: Migrate
	// creates only the flux tables (state, audit).
	ExternalPlayerTables bool

	// Filter is a trusted SQL predicate ANDed to the load's WHERE clause, to narrow who is
	// ticked (for example "NOT p.is_deleted"). The player table is aliased p, a separate
	// lucidity table l. It is spliced into the query as written: never build it from
	// player input.
	Filter string
	// ScopeColumn names a text column of the player table holding the scope (game server)
	// that hosts the player. When set, LoadActive with a Scope loads only that scope's
	// players, and UpdatePresence writes Presence.Scope into it. Empty: no scopes.
	ScopeColumn string

	// UpdatedAtColumn names a timestamptz column of the lucidity table that Apply sets to
	// now() whenever it changes the player's lucidity. Empty: none.
	UpdatedAtColumn string
	// TierEnteredColumn names a timestamptz column of the lucidity table that Apply sets
	// to now() when a player enters TierEntered (for example catatonia_entered_at), and,
	// with ClearTierEntered, sets to NULL when the player leaves it. Empty: none.
	TierEnteredColumn string
	TierEntered       Tier
	ClearTierEntered  bool

	// StateTable holds each player's TickState — last tick, carry-over, last change —
	// the exactly-once fence of every write (flux_state). Migrate creates it.
	StateTable string
	// Audit makes the apply statement also insert one row per write that changed the
	// stored lucidity (after the clamp; a write the clamp cancels logs nothing) into
	// AuditTable (flux_audit): by default the library's own table, created by Migrate;
	// with AuditColumns set, a game's own log table, whose columns AuditColumns maps. The
	// log may have a foreign key to PlayersTable: with a separate LucidityTable, Apply
	// takes the FOR KEY SHARE locks that key needs itself, in player-id order, before the
	// lucidity rows (one more sorted lock pass over the changed players).
	Audit        bool
	AuditTable   string
	AuditColumns AuditColumns
	// AuditReason is written into AuditColumns.Reason ("passive_flux"): valid UTF-8, no
	// NUL, at most 255 bytes.
	AuditReason string

	// Rules gives the lucidity bounds and tier thresholds written by Apply; nil means
	// DefaultRules().
	Rules *Rules

	// Logger receives Migrate's warnings (a table created next to one with a similar
	// name); the zero value logs nothing.
	Logger zerolog.Logger
}

// WithDefaults returns c with every empty field set to its default.
func (c PostgresConfig) WithDefaults() PostgresConfig {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.PlayersTable, DefaultPlayersTable)
	def(&c.PlayerIDColumn, "id")
	def(&c.RoomColumn, "room_id")
	def(&c.LastActiveColumn, "last_active")
	def(&c.CreatedAtColumn, "created_at")
	def(&c.PlayerIDType, "text")
	def(&c.LucidityPlayerIDColumn, "player_id")
	def(&c.LucidityColumn, "lucidity")
	def(&c.TierColumn, "tier")
	def(&c.StateTable, DefaultStateTable)
	def(&c.AuditTable, DefaultAuditTable)
	def(&c.AuditReason, "passive_flux")
	if c.StateSchema == "" {
		c.StateSchema = c.Schema
	}
	if c.Rules == nil {
		r := DefaultRules()
		c.Rules = &r
	}
	return c
}

// playerIDTypes are the accepted PlayerIDType values (spliced into SQL, so a closed list).
var playerIDTypes = []string{"text", "uuid", "bigint", "integer"}

func (c PostgresConfig) validate() error {
	if !slices.Contains(playerIDTypes, c.PlayerIDType) {
		return configErrorf("PostgresConfig.PlayerIDType", c.PlayerIDType, "not one of %v", playerIDTypes)
	}
	if err := c.Rules.Validate(); err != nil {
		return rulesConfigError("PostgresConfig.Rules", err)
	}
	if c.TierEnteredColumn != "" && !c.TierEntered.Valid() {
		return configError("PostgresConfig.TierEntered", string(c.TierEntered), "not a tier")
	}
	if c.Audit && c.AuditColumns != (AuditColumns{}) && c.AuditColumns.PlayerID == "" {
		return configError("PostgresConfig.AuditColumns.PlayerID", "", "must be set when AuditColumns maps any column")
	}
	if err := checkText("PostgresConfig.AuditReason", c.AuditReason, maxTextLength); err != nil {
		return err
	}
	names := []struct{ field, value string }{
		{"Schema", c.Schema}, {"StateSchema", c.StateSchema}, {"PlayersTable", c.PlayersTable},
		{"PlayerIDColumn", c.PlayerIDColumn}, {"RoomColumn", c.RoomColumn},
		{"LastActiveColumn", c.LastActiveColumn}, {"CreatedAtColumn", c.CreatedAtColumn},
		{"LucidityTable", c.LucidityTable}, {"LucidityPlayerIDColumn", c.LucidityPlayerIDColumn},
		{"LucidityColumn", c.LucidityColumn}, {"TierColumn", c.TierColumn},
		{"ScopeColumn", c.ScopeColumn}, {"UpdatedAtColumn", c.UpdatedAtColumn},
		{"TierEnteredColumn", c.TierEnteredColumn}, {"StateTable", c.StateTable},
		{"AuditTable", c.AuditTable},
	}
	// Index names Migrate derives from the names of the tables it creates (and only
	// those: a game's own tables get no index from flux).
	if !c.ExternalPlayerTables {
		names = append(names,
			struct{ field, value string }{"PlayersTable (index name)", c.PlayersTable + "_last_active_idx"},
			struct{ field, value string }{"PlayersTable (index name)", c.PlayersTable + "_created_at_idx"})
	}
	if c.Audit && c.AuditColumns == (AuditColumns{}) {
		names = append(names, struct{ field, value string }{"AuditTable (index name)", c.AuditTable + "_player_idx"})
	}
	for _, n := range names {
		if n.value == "" {
			continue
		}
		if err := checkIdentifier("PostgresConfig."+n.field, n.value); err != nil {
			return err
		}
	}
	if err := c.AuditColumns.validate(); err != nil {
		return err
	}
	if err := c.validateTables(); err != nil {
		return err
	}
	if !utf8.ValidString(c.Filter) {
		return configError("PostgresConfig.Filter", c.Filter, "is not valid UTF-8")
	}
	if strings.IndexByte(c.Filter, 0) >= 0 {
		return configError("PostgresConfig.Filter", c.Filter, "contains a NUL byte")
	}
	return nil
}

// AuditColumns maps the values of one audit row onto the columns of a game's own log
// table; a value whose column is empty is not written. PlayerID is required.
type AuditColumns struct {
	PlayerID    string // the player id (cast to PostgresConfig.PlayerIDType)
	Tick        string // bigint: the last tick of the write
	Ticks       string // integer: ticks summed in the write
	RoomID      string // text: the room of the last tick
	OldLucidity string // integer: the stored lucidity before the write
	NewLucidity string // integer: the stored lucidity after it (clamped)
	Delta       string // integer: NewLucidity − OldLucidity, as applied (never 0: no row then)
	OldTier     string // text: the stored tier before the write
	NewTier     string // text: the tier after it
	Flux        string // double precision: the summed flux
	Reason      string // text: PostgresConfig.AuditReason
	At          string // timestamptz: now()
}

// validate checks each mapped audit column (an identifier) and that no column is mapped
// twice (the insert would name it twice and fail at the first write).
func (a AuditColumns) validate() error {
	seen := make(map[string]bool)
	for _, col := range a.names() {
		if err := checkIdentifier("PostgresConfig.AuditColumns", col); err != nil {
			return err
		}
		if seen[col] {
			return configError("PostgresConfig.AuditColumns", col, "column mapped twice: each audit value needs its own column")
		}
		seen[col] = true
	}
	return nil
}

// validateTables refuses a state or audit table that is one of the game's tables (or each
// other): Migrate would skip creating it and every write would fail with a raw SQL error.
func (c PostgresConfig) validateTables() error {
	type table struct{ field, schema, name string }
	tables := []table{{"PlayersTable", c.Schema, c.PlayersTable}}
	if c.LucidityTable != "" && c.LucidityTable != c.PlayersTable {
		tables = append(tables, table{"LucidityTable", c.Schema, c.LucidityTable})
	}
	tables = append(tables, table{"StateTable", c.StateSchema, c.StateTable})
	if c.Audit {
		tables = append(tables, table{"AuditTable", c.StateSchema, c.AuditTable})
	}
	for i, t := range tables {
		for _, u := range tables[:i] {
			if t.schema == u.schema && t.name == u.name {
				return configErrorf("PostgresConfig."+t.field, t.name, "names the same table as %s: each needs its own", u.field)
			}
		}
	}
	return nil
}

// names returns the non-empty column names of a.
func (a AuditColumns) names() []string {
	var out []string
	for _, n := range []string{a.PlayerID, a.Tick, a.Ticks, a.RoomID, a.OldLucidity, a.NewLucidity,
		a.Delta, a.OldTier, a.NewTier, a.Flux, a.Reason, a.At} {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// maxTextLength bounds the strings of configs that travel into SQL as values or into logs
// (runner id, scope, audit reason).
const maxTextLength = 255

// defaultAuditColumns are the columns of the library's own audit table (schema/audit.sql).
var defaultAuditColumns = AuditColumns{
	PlayerID: "player_id", Tick: "tick", Ticks: "ticks", RoomID: "room_id", OldLucidity: "old_lucidity",
	NewLucidity: "new_lucidity", Delta: "delta", OldTier: "old_tier", NewTier: "new_tier", Flux: "flux",
	Reason: "reason", At: "applied_at",
}
