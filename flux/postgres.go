package flux

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed schema/*.sql
var schemaFS embed.FS

// migrateLockKey is the advisory lock key Migrate holds ("gp-flux" in ASCII).
const migrateLockKey int64 = 0x67702d666c7578

// PostgresPlayers is a PlayerStore on a caller-owned *pgxpool.Pool (never closed here).
// LoadActive is one query; Apply is one statement (one round trip) that records the tick
// ids in the applied-ticks table with ON CONFLICT DO NOTHING and, only for the ticks it
// inserted, adds the summed deltas to lucidity (clamped in SQL), rewrites the tier and,
// when configured, inserts the audit rows. UpdatePresence is the game's own batched write
// of rooms and last-active times (one statement). Safe for concurrent use.
type PostgresPlayers struct {
	pool *pgxpool.Pool
	cfg  PostgresConfig

	loadSQL        string // active players only
	loadPendingSQL string // active players UNION ALL the applied pending tick ids
	applySQL       string
	presenceSQL    string
	names          schemaNames

	argsPool     sync.Pool // *applyArgs
	presencePool sync.Pool // *presenceArgs
}

var _ PlayerStore = (*PostgresPlayers)(nil)

// schemaNames are the quoted identifiers and literals the schema templates use.
type schemaNames struct {
	Players, PlayerID, Room, LastActive, CreatedAt, PlayerIDType   string
	Lucidity, Tier, LucidityTable, LucidityPlayerID                string
	AppliedTicks, Audit                                            string
	LastActiveIndex, CreatedAtIndex, AppliedTicksIndex, AuditIndex string
	MinLucidity, MaxLucidity, TierList                             string
}

// NewPostgresPlayers returns a store on pool configured by cfg (see PostgresConfig). It does
// no I/O; call Migrate to create the tables. Invalid config returns an error wrapping
// ErrInvalidConfig.
func NewPostgresPlayers(pool *pgxpool.Pool, cfg PostgresConfig) (*PostgresPlayers, error) {
	if pool == nil {
		return nil, fmt.Errorf("%w: nil pool", ErrInvalidConfig)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &PostgresPlayers{pool: pool, cfg: cfg}
	p.argsPool.New = func() any { return new(applyArgs) }
	p.presencePool.New = func() any { return new(presenceArgs) }
	p.names = p.buildNames()
	p.loadSQL, p.loadPendingSQL = p.buildLoadSQL()
	p.applySQL = p.buildApplySQL()
	p.presenceSQL = p.buildPresenceSQL()
	return p, nil
}

func (p *PostgresPlayers) table(name string) string {
	if p.cfg.Schema != "" {
		return pgx.Identifier{p.cfg.Schema, name}.Sanitize()
	}
	return pgx.Identifier{name}.Sanitize()
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (p *PostgresPlayers) buildNames() schemaNames {
	c := p.cfg
	lucTable := c.LucidityTable
	if lucTable == "" {
		lucTable = c.PlayersTable
	}
	tiers := make([]string, 0, 5)
	for _, t := range Tiers() {
		tiers = append(tiers, quoteLiteral(string(t)))
	}
	return schemaNames{
		Players: p.table(c.PlayersTable), PlayerID: ident(c.PlayerIDColumn), Room: ident(c.RoomColumn),
		LastActive: ident(c.LastActiveColumn), CreatedAt: ident(c.CreatedAtColumn), PlayerIDType: c.PlayerIDType,
		Lucidity: ident(c.LucidityColumn), Tier: ident(c.TierColumn), LucidityTable: p.table(lucTable),
		LucidityPlayerID: ident(c.LucidityPlayerIDColumn),
		AppliedTicks:     p.table(c.AppliedTicksTable), Audit: p.table(c.AuditTable),
		LastActiveIndex:   ident(c.PlayersTable + "_last_active_idx"),
		CreatedAtIndex:    ident(c.PlayersTable + "_created_at_idx"),
		AppliedTicksIndex: ident(c.AppliedTicksTable + "_applied_at_idx"),
		AuditIndex:        ident(c.AuditTable + "_player_idx"),
		MinLucidity:       strconv.Itoa(c.Rules.MinLucidity), MaxLucidity: strconv.Itoa(c.Rules.MaxLucidity),
		TierList: strings.Join(tiers, ", "),
	}
}

// separateLucidity reports whether lucidity lives in its own table.
func (p *PostgresPlayers) separateLucidity() bool {
	return p.cfg.LucidityTable != "" && p.cfg.LucidityTable != p.cfg.PlayersTable
}

// buildLoadSQL returns the load query without and with the pending-ticks branch: the
// UNION ALL costs the server about as much again as the scan, so it is sent only while
// ticks are pending. The window's bounds are typed timestamptz, so they travel as instants
// even when the game's columns are timestamp without time zone (pgx would otherwise send
// the wall clock of now's location); such columns are then read, compared and returned in
// the session's TimeZone alike, and the query agrees with Rules.IsActive.
func (p *PostgresPlayers) buildLoadSQL() (plain, withPending string) {
	n := p.names
	from := n.Players + " p"
	luc := "p." + n.Lucidity
	if p.separateLucidity() {
		from += " JOIN " + n.LucidityTable + " l ON l." + n.LucidityPlayerID + " = p." + n.PlayerID
		luc = "l." + n.Lucidity
	}
	cols := "p." + n.PlayerID + "::text, coalesce(p." + n.Room + "::text, ''), " +
		luc + "::int, coalesce(p." + n.LastActive + ", 'epoch'::timestamptz), coalesce(p." + n.CreatedAt +
		", 'epoch'::timestamptz)\nFROM " + from +
		"\nWHERE p." + n.LastActive + " >= $1::timestamptz OR p." + n.CreatedAt + " >= $2::timestamptz"
	plain = "SELECT " + cols
	withPending = "SELECT 0 AS kind, " + cols +
		"\nUNION ALL\nSELECT 1, a.tick_id, '', 0, 'epoch'::timestamptz, 'epoch'::timestamptz FROM " +
		n.AppliedTicks + " a WHERE a.tick_id = ANY($3::text[])"
	return plain, withPending
}

// tierCase returns a CASE expression mapping the integer expression x to its tier name.
func (p *PostgresPlayers) tierCase(x string) string {
	t := p.cfg.Rules.Tiers
	return "CASE WHEN " + x + " >= " + strconv.Itoa(t.LucidMin) + " THEN " + quoteLiteral(string(TierLucid)) +
		" WHEN " + x + " >= " + strconv.Itoa(t.UneasyMin) + " THEN " + quoteLiteral(string(TierUneasy)) +
		" WHEN " + x + " >= " + strconv.Itoa(t.FracturedMin) + " THEN " + quoteLiteral(string(TierFractured)) +
		" WHEN " + x + " >= " + strconv.Itoa(t.DerangedMin) + " THEN " + quoteLiteral(string(TierDeranged)) +
		" ELSE " + quoteLiteral(string(TierCatatonic)) + " END"
}

// Apply's parameters: $1 tick ids, $2 changes per tick, then one element per change:
// $3 tick ordinal (1-based), $4 player id, $5 delta; with Audit also $6 room, $7 old,
// $8 new, $9 old tier, $10 new tier, $11 base, $12 companion, $13 adaptation, $14 flux.
func (p *PostgresPlayers) buildApplySQL() string {
	n := p.names
	lucTable, idCol := n.LucidityTable, n.LucidityPlayerID
	if !p.separateLucidity() {
		idCol = n.PlayerID
	}
	clamped := "least(" + n.MaxLucidity + ", greatest(" + n.MinLucidity + ", t." + n.Lucidity + " + s.delta))"
	var b strings.Builder
	b.WriteString(`WITH batch AS (
  SELECT b.tick_id, b.changes, b.ord::int AS ord
  FROM unnest($1::text[], $2::int[]) WITH ORDINALITY AS b(tick_id, changes, ord)
), fresh AS (
  INSERT INTO ` + n.AppliedTicks + ` (tick_id, changes, applied_at)
  SELECT tick_id, changes, now() FROM batch
  ON CONFLICT (tick_id) DO NOTHING
  RETURNING tick_id
), fresh_ord AS (
  -- A tick id listed twice in one call is applied once: its first occurrence.
  SELECT min(b.ord) AS ord FROM batch b JOIN fresh f ON f.tick_id = b.tick_id GROUP BY b.tick_id
), summed AS (
  SELECT c.player_id::` + n.PlayerIDType + ` AS player_id, sum(c.delta)::int AS delta
  FROM unnest($3::int[], $4::text[], $5::int[]) AS c(tick_ord, player_id, delta)
  WHERE c.tick_ord IN (SELECT ord FROM fresh_ord)
  GROUP BY 1 HAVING sum(c.delta) <> 0
), updated AS (
  UPDATE ` + lucTable + ` t SET ` + n.Lucidity + ` = ` + clamped + `, ` + n.Tier + ` = ` + p.tierCase(clamped) + `
  FROM summed s WHERE t.` + idCol + ` = s.player_id
  RETURNING 1
)`)
	if p.cfg.Audit {
		b.WriteString(`, audit AS (
  INSERT INTO ` + n.Audit + ` (tick_id, player_id, room_id, old_lucidity, new_lucidity, old_tier, new_tier,
    base, companion, adaptation, flux)
  SELECT b.tick_id, c.player_id, c.room_id, c.old, c.new, c.old_tier, c.new_tier, c.base, c.companion,
    c.adaptation, c.flux
  FROM unnest($3::int[], $4::text[], $6::text[], $7::int[], $8::int[], $9::text[], $10::text[],
    $11::float8[], $12::float8[], $13::float8[], $14::float8[])
    AS c(tick_ord, player_id, room_id, old, new, old_tier, new_tier, base, companion, adaptation, flux)
  JOIN batch b ON b.ord = c.tick_ord
  WHERE c.tick_ord IN (SELECT ord FROM fresh_ord)
  RETURNING 1
)`)
	}
	b.WriteString("\nSELECT (SELECT count(*) FROM fresh)::int, (SELECT count(*) FROM updated)::int")
	return b.String()
}

// Migrate creates the tables this store uses if they do not exist: the player table (unless
// ExternalPlayerTables), the applied-ticks table and, with Audit, the audit table. It runs
// in one transaction under an advisory lock, so concurrent calls from several processes are
// safe, and it is idempotent. It costs a few round trips; call it once at start-up.
func (p *PostgresPlayers) Migrate(ctx context.Context) error {
	files := []string{"applied_ticks.sql"}
	if !p.cfg.ExternalPlayerTables {
		files = append([]string{"players.sql"}, files...)
	}
	if p.cfg.Audit {
		files = append(files, "audit.sql")
	}
	var stmts []string
	for _, f := range files {
		raw, err := schemaFS.ReadFile("schema/" + f)
		if err != nil {
			return fmt.Errorf("flux: migrate: %w", err)
		}
		tpl, err := template.New(f).Parse(string(raw))
		if err != nil {
			return fmt.Errorf("flux: migrate: %s: %w", f, err)
		}
		var buf bytes.Buffer
		if err := tpl.Execute(&buf, p.names); err != nil {
			return fmt.Errorf("flux: migrate: %s: %w", f, err)
		}
		stmts = append(stmts, buf.String())
	}
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey); err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("flux: migrate: %w", err)
	}
	return nil
}

// LoadActive implements PlayerStore with one query: the active players (player table joined
// with the lucidity table when separate), UNION ALL the pending tick ids already applied
// when q.PendingTicks is not empty.
func (p *PostgresPlayers) LoadActive(ctx context.Context, q ActiveQuery, dst []Player) (Loaded, error) {
	pending := len(q.PendingTicks) > 0
	var rows pgx.Rows
	var err error
	if pending {
		rows, err = p.pool.Query(ctx, p.loadPendingSQL, q.Now.Add(-q.ActiveWithin), q.Now.Add(-q.CreatedWithin), q.PendingTicks)
	} else {
		rows, err = p.pool.Query(ctx, p.loadSQL, q.Now.Add(-q.ActiveWithin), q.Now.Add(-q.CreatedWithin))
	}
	if err != nil {
		return Loaded{}, fmt.Errorf("flux: load active players: %w", err)
	}
	defer rows.Close()
	dst = dst[:0]
	var committed []string
	var (
		kind int32
		pl   Player
		luc  int32
	)
	dest := []any{&pl.ID, &pl.RoomID, &luc, &pl.LastActive, &pl.CreatedAt}
	if pending {
		dest = append([]any{&kind}, dest...)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return Loaded{}, fmt.Errorf("flux: load active players: %w", err)
		}
		if kind == 1 {
			committed = append(committed, pl.ID)
			continue
		}
		pl.Lucidity = int(luc)
		dst = append(dst, pl)
	}
	if err := rows.Err(); err != nil {
		return Loaded{}, fmt.Errorf("flux: load active players: %w", err)
	}
	return Loaded{Players: dst, CommittedTicks: committed}, nil
}

// applyArgs are the reusable parameter arrays of the apply statement.
type applyArgs struct {
	tickIDs                            []string
	tickChanges, ords, deltas          []int32
	players, rooms, oldTiers, newTiers []string
	olds, news                         []int32
	base, comp, adapt, flux            []float64
}

func (a *applyArgs) reset() {
	a.tickIDs, a.tickChanges, a.ords, a.deltas = a.tickIDs[:0], a.tickChanges[:0], a.ords[:0], a.deltas[:0]
	a.players, a.rooms, a.oldTiers, a.newTiers = a.players[:0], a.rooms[:0], a.oldTiers[:0], a.newTiers[:0]
	a.olds, a.news = a.olds[:0], a.news[:0]
	a.base, a.comp, a.adapt, a.flux = a.base[:0], a.comp[:0], a.adapt[:0], a.flux[:0]
}

func (p *PostgresPlayers) fill(a *applyArgs, ticks []TickChanges) []any {
	a.reset()
	for i, t := range ticks {
		a.tickIDs = append(a.tickIDs, t.TickID)
		a.tickChanges = append(a.tickChanges, int32(len(t.Changes)))
		for _, c := range t.Changes {
			a.ords = append(a.ords, int32(i+1))
			a.players = append(a.players, c.PlayerID)
			a.deltas = append(a.deltas, int32(c.NewLucidity-c.OldLucidity))
			if p.cfg.Audit {
				a.rooms = append(a.rooms, c.RoomID)
				a.olds = append(a.olds, int32(c.OldLucidity))
				a.news = append(a.news, int32(c.NewLucidity))
				a.oldTiers = append(a.oldTiers, string(c.OldTier))
				a.newTiers = append(a.newTiers, string(c.NewTier))
				a.base = append(a.base, c.Base)
				a.comp = append(a.comp, c.Companion)
				a.adapt = append(a.adapt, c.Adaptation)
				a.flux = append(a.flux, c.Flux)
			}
		}
	}
	args := []any{a.tickIDs, a.tickChanges, a.ords, a.players, a.deltas}
	if p.cfg.Audit {
		args = append(args, a.rooms, a.olds, a.news, a.oldTiers, a.newTiers, a.base, a.comp, a.adapt, a.flux)
	}
	return args
}

// ApplyStatement returns the SQL text and the arguments Apply sends for ticks, for callers
// that want to issue or measure the very same statement themselves (the W1 benchmark's
// floor does). The arguments are freshly allocated.
func (p *PostgresPlayers) ApplyStatement(ticks []TickChanges) (string, []any) {
	return p.applySQL, p.fill(new(applyArgs), ticks)
}

// Apply implements PlayerStore with one statement (see PostgresPlayers). Ticks with no
// changes may be passed; they are recorded as applied. An empty ticks slice does nothing
// and costs no round trip.
func (p *PostgresPlayers) Apply(ctx context.Context, ticks []TickChanges) (ApplyResult, error) {
	if len(ticks) == 0 {
		return ApplyResult{}, nil
	}
	a, _ := p.argsPool.Get().(*applyArgs)
	defer p.argsPool.Put(a)
	var res ApplyResult
	var applied, updated int32
	if err := p.pool.QueryRow(ctx, p.applySQL, p.fill(a, ticks)...).Scan(&applied, &updated); err != nil {
		return ApplyResult{}, fmt.Errorf("flux: apply %d ticks: %w", len(ticks), err)
	}
	res.TicksApplied, res.PlayersUpdated = int(applied), int(updated)
	return res, nil
}

// PruneTicks deletes the applied-tick records older than before and returns how many it
// deleted. A tick id pruned and then retried would apply again, so keep well beyond the
// longest time a change can stay pending (hours, not seconds). One statement.
func (p *PostgresPlayers) PruneTicks(ctx context.Context, before time.Time) (int64, error) {
	tag, err := p.pool.Exec(ctx, "DELETE FROM "+p.names.AppliedTicks+" WHERE applied_at < $1", before)
	if err != nil {
		return 0, fmt.Errorf("flux: prune applied ticks: %w", err)
	}
	return tag.RowsAffected(), nil
}
