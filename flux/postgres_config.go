package flux

import (
	"errors"
	"fmt"
	"slices"
)

// ErrInvalidConfig is wrapped by every configuration error of PostgresPlayers and Runner.
var ErrInvalidConfig = errors.New("flux: invalid config")

// Default table and column names of PostgresPlayers (the embedded schema uses them).
const (
	DefaultPlayersTable      = "flux_players"
	DefaultAppliedTicksTable = "flux_applied_ticks"
	DefaultAuditTable        = "flux_lucidity_audit"
)

// PostgresConfig names the tables and columns PostgresPlayers reads and writes. The zero
// value, filled by WithDefaults, is the embedded default schema: one table flux_players
// (id text, room_id, lucidity, tier, last_active, created_at). A game points it at its own
// tables instead — players in one table, lucidity and tier in another — and sets
// ExternalPlayerTables so that Migrate leaves them alone. Every name is quoted as an SQL
// identifier, so any name is safe.
type PostgresConfig struct {
	// Schema qualifies every table; empty uses the connection's search_path.
	Schema string

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
	// creates only the flux tables (applied ticks, audit).
	ExternalPlayerTables bool

	// AppliedTicksTable remembers applied tick ids (flux_applied_ticks).
	AppliedTicksTable string
	// Audit makes the apply statement also insert one row per change into AuditTable
	// (flux_lucidity_audit).
	Audit      bool
	AuditTable string

	// Rules gives the lucidity bounds and tier thresholds written by Apply; nil means
	// DefaultRules().
	Rules *Rules
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
	def(&c.AppliedTicksTable, DefaultAppliedTicksTable)
	def(&c.AuditTable, DefaultAuditTable)
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
		return fmt.Errorf("%w: PlayerIDType %q is not one of %v", ErrInvalidConfig, c.PlayerIDType, playerIDTypes)
	}
	if err := c.Rules.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	for _, n := range []string{c.PlayersTable, c.PlayerIDColumn, c.RoomColumn, c.LastActiveColumn,
		c.CreatedAtColumn, c.LucidityPlayerIDColumn, c.LucidityColumn, c.TierColumn,
		c.AppliedTicksTable, c.AuditTable, c.LucidityTable, c.Schema} {
		for _, r := range n {
			if r == 0 {
				return fmt.Errorf("%w: a table or column name contains NUL", ErrInvalidConfig)
			}
		}
	}
	return nil
}
