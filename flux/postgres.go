package flux

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/internal/migrate"
)

// schemaFS holds the migrations of the tables flux owns, schema/{players,state,audit}/
// NNN_description.sql: text/template files rendered with schemaNames.
//
//go:embed schema
var schemaFS embed.FS

// PostgresPlayers is a PlayerStore on a caller-owned *pgxpool.Pool (never closed here).
// LoadActive is one query (the active players joined with their stored TickState);
// Apply is one statement (one round trip) that, for each write whose FromTick still
// holds, stores the new TickState, adds the delta to lucidity (clamped in SQL), rewrites
// the tier and the configured bookkeeping columns and, when configured, inserts the audit
// rows. Rows are locked in player-id order, so Apply, UpdatePresence and a game's own
// writes that lock in the same order cannot deadlock; deadlock and serialization failures
// that happen anyway are retried within ctx. UpdatePresence is the game's own batched write
// of rooms and last-active times (one statement). Safe for concurrent use.
type PostgresPlayers struct {
	pool *pgxpool.Pool
	cfg  PostgresConfig

	loadSQL     string
	applySQL    string
	presenceSQL string
	upsertSQL   string
	addSQL      string
	names       schemaNames
	audit       AuditColumns // the audit columns in use (when cfg.Audit)

	unsettledMu sync.Mutex
	unsettled   []uint32 // server processes of broken applies not yet known to be gone
	unsettledN  atomic.Int32

	argsPool     sync.Pool // *applyArgs
	presencePool sync.Pool // *presenceArgs
	retries      atomic.Int64
}

var _ PlayerStore = (*PostgresPlayers)(nil)

// PostgresPlayersStats is a snapshot of a PostgresPlayers' counters.
type PostgresPlayersStats struct {
	// Retries counts statements sent again after a deadlock, serialization failure or
	// lock timeout (see Retryable): 0 while every writer of the same rows locks them in
	// player-id order.
	Retries int64
}

// Stats returns a snapshot of the store's counters. It costs an atomic load.
func (p *PostgresPlayers) Stats() PostgresPlayersStats {
	return PostgresPlayersStats{Retries: p.retries.Load()}
}

// schemaNames are the quoted identifiers and literals the schema templates use.
type schemaNames struct {
	Players, PlayerID, Room, LastActive, CreatedAt, PlayerIDType string
	Lucidity, Tier, LucidityTable, LucidityPlayerID              string
	State, Audit, StateSchema                                    string
	LastActiveIndex, CreatedAtIndex, AuditIndex                  string
	MinLucidity, MaxLucidity, TierList                           string
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
	p := &PostgresPlayers{pool: pool, cfg: cfg, audit: cfg.AuditColumns}
	if p.audit == (AuditColumns{}) {
		p.audit = defaultAuditColumns
	}
	p.argsPool.New = func() any { return new(applyArgs) }
	p.presencePool.New = func() any { return new(presenceArgs) }
	p.names = p.buildNames()
	p.loadSQL = p.buildLoadSQL()
	p.applySQL = p.buildApplySQL()
	p.presenceSQL = p.buildPresenceSQL()
	p.upsertSQL = p.buildUpsertSQL()
	p.addSQL = p.buildAddLuciditySQL()
	return p, nil
}

func qualified(schema, name string) string {
	if schema != "" {
		return pgx.Identifier{schema, name}.Sanitize()
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
	n := schemaNames{
		Players: qualified(c.Schema, c.PlayersTable), PlayerID: ident(c.PlayerIDColumn), Room: ident(c.RoomColumn),
		LastActive: ident(c.LastActiveColumn), CreatedAt: ident(c.CreatedAtColumn), PlayerIDType: c.PlayerIDType,
		Lucidity: ident(c.LucidityColumn), Tier: ident(c.TierColumn), LucidityTable: qualified(c.Schema, lucTable),
		LucidityPlayerID: ident(c.LucidityPlayerIDColumn),
		State:            qualified(c.StateSchema, c.StateTable), Audit: qualified(c.StateSchema, c.AuditTable),
		LastActiveIndex: ident(c.PlayersTable + "_last_active_idx"),
		CreatedAtIndex:  ident(c.PlayersTable + "_created_at_idx"),
		AuditIndex:      ident(c.AuditTable + "_player_idx"),
		MinLucidity:     strconv.Itoa(c.Rules.MinLucidity), MaxLucidity: strconv.Itoa(c.Rules.MaxLucidity),
		TierList: strings.Join(tiers, ", "),
	}
	if c.StateSchema != "" {
		n.StateSchema = ident(c.StateSchema)
	}
	if c.Audit && c.AuditColumns != (AuditColumns{}) {
		n.Audit = qualified(c.Schema, c.AuditTable) // a game's own log table
	}
	return n
}

// separateLucidity reports whether lucidity lives in its own table.
func (p *PostgresPlayers) separateLucidity() bool {
	return p.cfg.LucidityTable != "" && p.cfg.LucidityTable != p.cfg.PlayersTable
}

// buildLoadSQL returns the load query: the active players (joined with the lucidity table
// when separate) with their stored TickState, narrowed by Filter and, with ScopeColumn and
// a scope in $3, to that scope's players and the players of other scopes in the same rooms
// (their companions). The window's bounds are typed timestamptz, so they travel as
// instants even when the game's columns are timestamp without time zone (pgx would
// otherwise send the wall clock of now's location); such columns are then read, compared
// and returned in the session's TimeZone alike, and the query agrees with Rules.IsActive.
func (p *PostgresPlayers) buildLoadSQL() string {
	n := p.names
	from := n.Players + " p"
	luc := "p." + n.Lucidity
	if p.separateLucidity() {
		from += " JOIN " + n.LucidityTable + " l ON l." + n.LucidityPlayerID + " = p." + n.PlayerID
		luc = "l." + n.Lucidity
	}
	from += " LEFT JOIN " + n.State + " s ON s.player_id = p." + n.PlayerID
	where := "(p." + n.LastActive + " >= $1::timestamptz OR p." + n.CreatedAt + " >= $2::timestamptz)"
	if p.cfg.Filter != "" {
		where += " AND (" + p.cfg.Filter + ")"
	}
	scope := "''"
	if p.cfg.ScopeColumn != "" {
		scope = "coalesce(p." + ident(p.cfg.ScopeColumn) + "::text, '')"
	}
	sel := "SELECT p." + n.PlayerID + "::text AS id, coalesce(p." + n.Room + "::text, '') AS room, " +
		luc + "::int, coalesce(p." + n.LastActive + ", 'epoch'::timestamptz), coalesce(p." + n.CreatedAt +
		", 'epoch'::timestamptz),\n  " + scope + " AS scope, coalesce(s.tick, 0), coalesce(s.residual, 0), " +
		"coalesce(s.room_id, ''), coalesce(s.evaluations, 0), coalesce(s.last_delta, 0), coalesce(s.writer, 0)\nFROM " + from +
		"\nWHERE " + where
	if p.cfg.ScopeColumn == "" {
		return sel
	}
	return "WITH active AS MATERIALIZED (\n" + sel + "\n)\nSELECT * FROM active a WHERE $3::text = '' OR a.scope = $3::text" +
		" OR a.room IN (SELECT room FROM active WHERE scope = $3::text)"
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

// SettleTimeout bounds how long settling one broken apply may take (see
// PostgresPlayers.Apply).
const SettleTimeout = 5 * time.Second

// settleNowTimeout bounds Apply's own try at settling the statement it just lost, so that a
// database that cannot be reached does not hold the caller much longer than the apply did.
const settleNowTimeout = 500 * time.Millisecond

// settle terminates the server processes of connections that broke while an apply
// statement ran on them and waits until they have exited: their transactions have then
// committed or rolled back for good, and a load that follows sees the final outcome. It
// costs nothing when none is waiting (an atomic load), else one round trip per process on
// another connection, each within SettleTimeout and ctx. It needs PostgreSQL 14 or later
// and the right to terminate this role's processes. An error means an outcome may still
// change: the process stays listed and the next call tries again.
func (p *PostgresPlayers) settle(ctx context.Context) error {
	if p.unsettledN.Load() == 0 {
		return nil
	}
	p.unsettledMu.Lock()
	defer p.unsettledMu.Unlock()
	for len(p.unsettled) > 0 {
		pid := p.unsettled[0]
		if err := p.settleOne(ctx, pid); err != nil {
			return fmt.Errorf("flux: settle a broken apply (server process %d): %w", pid, err)
		}
		p.unsettled = p.unsettled[1:]
		p.unsettledN.Add(-1)
	}
	return nil
}

// settleOne terminates pid and waits for it to exit, trying again every 20 ms (the
// connection that broke may be followed by others failing for a moment) until
// SettleTimeout or ctx ends.
func (p *PostgresPlayers) settleOne(ctx context.Context, pid uint32) error {
	ctx, cancel := context.WithTimeout(ctx, SettleTimeout)
	defer cancel()
	for {
		var gone bool
		err := p.pool.QueryRow(ctx, `SELECT pg_terminate_backend($1::int, $2::int8)
  OR NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1::int)`, int64(pid), SettleTimeout.Milliseconds()).Scan(&gone)
		if err == nil && !gone {
			err = errors.New("still running")
		}
		if err == nil {
			return nil
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// unsettle records the server process of a connection that broke under an apply.
func (p *PostgresPlayers) unsettle(pid uint32) {
	p.unsettledMu.Lock()
	defer p.unsettledMu.Unlock()
	p.unsettled = append(p.unsettled, pid)
	p.unsettledN.Add(1)
}

// clampedSum returns the expression of the lucidity of the row aliased t plus the integer
// expression delta, clamped to the rules' bounds.
func (p *PostgresPlayers) clampedSum(delta string) string {
	n := p.names
	return "least(" + n.MaxLucidity + ", greatest(" + n.MinLucidity + ", t." + n.Lucidity + " + " + delta + "))"
}

// luciditySet returns the SET list that adds the integer expression delta to the lucidity
// row aliased t: lucidity clamped to the rules' bounds, the tier recomputed, and the
// configured updated-at and tier-entered columns kept.
func (p *PostgresPlayers) luciditySet(delta string) string {
	n := p.names
	clamped := p.clampedSum(delta)
	newTier := p.tierCase(clamped)
	set := n.Lucidity + " = " + clamped + ", " + n.Tier + " = " + newTier
	if c := p.cfg.UpdatedAtColumn; c != "" {
		set += ", " + ident(c) + " = now()"
	}
	if c := p.cfg.TierEnteredColumn; c != "" {
		tier := quoteLiteral(string(p.cfg.TierEntered))
		expr := "CASE WHEN (" + newTier + ") = " + tier + " AND t." + n.Tier + "::text IS DISTINCT FROM " + tier + " THEN now()"
		if p.cfg.ClearTierEntered {
			expr += " WHEN (" + newTier + ") <> " + tier + " THEN NULL"
		}
		set += ", " + ident(c) + " = " + expr + " ELSE t." + ident(c) + " END"
	}
	return set
}

// Apply's parameters, one element per write: $1 player id, $2 from tick, $3 tick, $4
// residual, $5 room, $6 evaluations, $7 last delta, $8 delta, $9 from writer, $10 writer;
// with Audit also $11 ticks, $12 flux. The audit row's lucidity, tiers and delta are read
// from the lucidity row itself, before and after the update: what was applied after the
// clamp, not what the write asked for.
//
// Locks are taken in player-id order, state rows first, then (with Audit and a separate
// lucidity table) the player rows FOR KEY SHARE, which the audit row's foreign key, if
// any, needs, then lucidity rows: each lock set is a sorted locking SELECT (ORDER BY is
// applied before the locking clause), and the updates and inserts touch only rows already
// locked. A write whose from tick no longer matches (re-checked on the locked row) is left
// out, and so is its lucidity change; a lucidity row the clamped delta would not change is
// not updated (its bookkeeping columns stay) and gets no audit row.
func (p *PostgresPlayers) buildApplySQL() string {
	n := p.names
	lucTable, idCol := n.LucidityTable, n.LucidityPlayerID
	if !p.separateLucidity() {
		idCol = n.PlayerID
	}
	typ := n.PlayerIDType
	set := p.luciditySet("f.delta")
	var b strings.Builder
	b.WriteString(`WITH input AS (
  SELECT i.player_id::` + typ + ` AS player_id, i.from_tick, i.tick, i.residual, i.room_id, i.evaluations,
    i.last_delta, i.delta, i.from_writer, i.writer, i.ord
  FROM unnest($1::text[], $2::int8[], $3::int8[], $4::float8[], $5::text[], $6::int4[], $7::int4[], $8::int4[],
      $9::int8[], $10::int8[])
    WITH ORDINALITY AS i(player_id, from_tick, tick, residual, room_id, evaluations, last_delta, delta, from_writer,
      writer, ord)
  WHERE i.tick > i.from_tick
), firsts AS (
  -- A player written twice in one call is written once: its first write.
  SELECT DISTINCT ON (player_id) * FROM input ORDER BY player_id, ord
), state_locked AS MATERIALIZED (
  SELECT s.player_id FROM ` + n.State + ` s
  WHERE s.player_id IN (SELECT player_id FROM firsts WHERE from_tick <> 0)
  ORDER BY s.player_id FOR UPDATE
), moved AS (
  UPDATE ` + n.State + ` s SET tick = f.tick, residual = f.residual, room_id = f.room_id,
    evaluations = f.evaluations, last_delta = f.last_delta, writer = f.writer, updated_at = now()
  FROM firsts f
  WHERE s.player_id = f.player_id AND s.tick = f.from_tick AND s.writer = f.from_writer
    AND s.player_id IN (SELECT player_id FROM state_locked)
  RETURNING s.player_id
), born AS (
  INSERT INTO ` + n.State + ` (player_id, tick, residual, room_id, evaluations, last_delta, writer)
  SELECT f.player_id, f.tick, f.residual, f.room_id, f.evaluations, f.last_delta, f.writer FROM firsts f
  WHERE f.from_tick = 0 AND EXISTS (SELECT 1 FROM ` + lucTable + ` t WHERE t.` + idCol + ` = f.player_id)
  ORDER BY f.player_id
  ON CONFLICT (player_id) DO NOTHING
  RETURNING player_id
), won AS (
  SELECT player_id FROM moved UNION ALL SELECT player_id FROM born
), changing AS (
  SELECT w.player_id FROM won w JOIN firsts f ON f.player_id = w.player_id WHERE f.delta <> 0
)`)
	lucidityFrom := "changing"
	if p.cfg.Audit && p.separateLucidity() {
		// The audit row's foreign key to the player table (a game's log usually has one)
		// takes FOR KEY SHARE on the players' rows as each row is inserted, in no particular
		// order: take those locks here first, in player-id order, before the lucidity rows.
		b.WriteString(`, players_locked AS MATERIALIZED (
  SELECT p.` + n.PlayerID + ` AS player_id FROM ` + n.Players + ` p
  WHERE p.` + n.PlayerID + ` IN (SELECT player_id FROM changing)
  ORDER BY p.` + n.PlayerID + ` FOR KEY SHARE
)`)
		lucidityFrom = "players_locked"
	}
	b.WriteString(`, lucidity_locked AS MATERIALIZED (
  SELECT t.` + idCol + ` AS player_id, t.` + n.Lucidity + `::int AS old, t.` + n.Tier + `::text AS old_tier
  FROM ` + lucTable + ` t
  WHERE t.` + idCol + ` IN (SELECT player_id FROM ` + lucidityFrom + `)
  ORDER BY t.` + idCol + ` FOR UPDATE
), updated AS (
  -- Only the rows whose lucidity the clamped delta changes: a write the clamp cancels
  -- moves no bookkeeping column and logs no audit row.
  UPDATE ` + lucTable + ` t SET ` + set + `
  FROM firsts f JOIN lucidity_locked l ON l.player_id = f.player_id
  WHERE t.` + idCol + ` = f.player_id AND ` + p.clampedSum("f.delta") + ` <> t.` + n.Lucidity + `
  RETURNING t.` + idCol + ` AS player_id, l.old, t.` + n.Lucidity + `::int AS new, l.old_tier, t.` + n.Tier + `::text AS new_tier
)`)
	if p.cfg.Audit {
		a := p.audit
		var cols, vals []string
		add := func(col, val string) {
			if col != "" {
				cols = append(cols, ident(col))
				vals = append(vals, val)
			}
		}
		add(a.PlayerID, "f.player_id")
		add(a.Tick, "f.tick")
		add(a.Ticks, "x.ticks")
		add(a.RoomID, "f.room_id")
		add(a.OldLucidity, "u.old")
		add(a.NewLucidity, "u.new")
		add(a.Delta, "u.new - u.old")
		add(a.OldTier, "u.old_tier")
		add(a.NewTier, "u.new_tier")
		add(a.Flux, "x.flux")
		add(a.Reason, quoteLiteral(p.cfg.AuditReason))
		add(a.At, "now()")
		b.WriteString(`, audit AS (
  INSERT INTO ` + n.Audit + ` (` + strings.Join(cols, ", ") + `)
  SELECT ` + strings.Join(vals, ", ") + `
  FROM updated u JOIN firsts f ON f.player_id = u.player_id
  JOIN unnest($11::int4[], $12::float8[]) WITH ORDINALITY AS x(ticks, flux, ord) ON x.ord = f.ord
  ORDER BY u.player_id
  RETURNING 1
)`)
	}
	b.WriteString("\nSELECT (SELECT count(*) FROM won)::int, (SELECT count(*) FROM updated)::int")
	return b.String()
}

// Migrate brings the tables the store owns (players unless ExternalPlayerTables, state,
// audit with Audit and no AuditColumns) to the latest schema version, creating Schema and
// StateSchema if missing: each embedded step not yet recorded in its schema's
// gamepersist_migrations table runs once, in its own transaction under an advisory lock,
// however many processes migrate at once; tables from a release before versioning are
// recorded as version 1, untouched. Then it checks that every table and column the
// configuration maps exists (on the game's own tables, with ExternalPlayerTables, the
// optional ScopeColumn, UpdatedAtColumn and TierEnteredColumn too) and returns an error
// wrapping ErrMissingSchema naming the first one missing. With nothing to do it costs two
// catalogue reads and a read per schema, and no DDL. It returns ErrInvalidConfig when no
// schema is set or found, or the failed step's error.
func (p *PostgresPlayers) Migrate(ctx context.Context) (err error) {
	defer stripConnectConfig(&err)
	comps, err := p.migrations()
	if err != nil {
		return err
	}
	res, err := migrate.Up(ctx, p.pool, comps...)
	for _, l := range res.Lookalikes {
		p.cfg.Logger.Warn().Str("schema", l.Schema).Str("created", l.Created).Str("existing", l.Existing).
			Msg("flux: Migrate created a new table whose name looks like a typo of an existing table: check PostgresConfig's table names")
	}
	if errors.Is(err, migrate.ErrNoSchema) {
		return fmt.Errorf("flux: migrate: %w: set Schema or StateSchema: %w", ErrInvalidConfig, err)
	}
	if err != nil {
		return fmt.Errorf("flux: migrate: %w", err)
	}
	return p.checkMapped(ctx)
}

// migrations returns the components Migrate applies, rendered with p.names.
func (p *PostgresPlayers) migrations() ([]migrate.Component, error) {
	c := p.cfg
	type part struct{ dir, schema, table string }
	var parts []part
	if !c.ExternalPlayerTables {
		parts = append(parts, part{"players", c.Schema, c.PlayersTable})
	}
	parts = append(parts, part{"state", c.StateSchema, c.StateTable})
	if c.Audit && c.AuditColumns == (AuditColumns{}) {
		parts = append(parts, part{"audit", c.StateSchema, c.AuditTable})
	}
	comps := make([]migrate.Component, 0, len(parts))
	for _, pt := range parts {
		steps, err := migrate.Load(schemaFS, "schema/"+pt.dir, p.names)
		if err != nil {
			return nil, fmt.Errorf("flux: migrate: %w", err)
		}
		comps = append(comps, migrate.Component{Name: "flux " + pt.dir + " " + pt.table, Schema: pt.schema,
			Steps: steps, Baseline: pt.table})
	}
	return comps, nil
}

// LoadActive implements PlayerStore with one query: the active players (player table joined
// with the lucidity table when separate, and with their stored TickState), narrowed by
// Filter and by q.Scope when ScopeColumn is set.
func (p *PostgresPlayers) LoadActive(ctx context.Context, q ActiveQuery, dst []Player) (_ []Player, err error) {
	defer stripConnectConfig(&err)
	if q.Scope != "" && p.ignoresScope() {
		return dst, configErrorf("PostgresConfig.ScopeColumn", "", "empty, but LoadActive was asked for Scope %q: set ScopeColumn", q.Scope)
	}
	sql, args := p.LoadStatement(q)
	dst = dst[:0]
	if err := p.settle(ctx); err != nil { // an apply that broke may still land: not yet
		return dst, fmt.Errorf("flux: load active players: %w", err)
	}
	rows, err := p.pool.Query(ctx, sql, args...)
	if err != nil {
		return dst, fmt.Errorf("flux: load active players: %w", schemaHint(err))
	}
	defer rows.Close()
	var (
		pl              Player
		luc, evals, lst int32
	)
	dest := []any{&pl.ID, &pl.RoomID, &luc, &pl.LastActive, &pl.CreatedAt, &pl.Scope,
		&pl.Flux.Tick, &pl.Flux.Carry.Residual, &pl.Flux.Carry.RoomID, &evals, &lst, &pl.Flux.Writer}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return dst, fmt.Errorf("flux: load active players: %w", err)
		}
		pl.Lucidity, pl.Flux.Carry.Evaluations, pl.Flux.LastDelta = int(luc), int(evals), int(lst)
		dst = append(dst, pl)
	}
	if err := rows.Err(); err != nil {
		return dst, fmt.Errorf("flux: load active players: %w", schemaHint(err))
	}
	return dst, nil
}

// customPlan is the leading argument of the batch statements (apply, presence, upsert):
// pgx then sends them as unnamed statements, which PostgreSQL plans for the arrays at hand
// every time. As named prepared statements, PostgreSQL switches to a generic plan after
// five runs, which cannot know an array's length and joins the batch's CTEs with nested
// loops: measured 10 s instead of 0.15 s for 10,000 writes.
var customPlan = []any{pgx.QueryExecModeCacheDescribe}

// LoadStatement returns the SQL text and arguments LoadActive sends for q, for callers that
// want to issue or measure the very same query themselves (the W1 benchmark's hand-written
// tick does). Its columns: id, room, lucidity, last active, created at, scope, then the stored
// TickState's tick, residual, room, evaluations, last delta and writer.
func (p *PostgresPlayers) LoadStatement(q ActiveQuery) (string, []any) {
	args := []any{q.Now.Add(-q.ActiveWithin), q.Now.Add(-q.CreatedWithin)}
	if p.cfg.ScopeColumn != "" {
		args = append(args, q.Scope)
	}
	return p.loadSQL, args
}

// applyArgs are the reusable parameter arrays of the apply statement.
type applyArgs struct {
	players, rooms                  []string
	from, ticks, fromWriter, writer []int64
	residual, flux                  []float64
	evals, lastDelta, delta, n      []int32
}

func (a *applyArgs) reset() {
	a.players, a.rooms = a.players[:0], a.rooms[:0]
	a.from, a.ticks, a.residual, a.flux = a.from[:0], a.ticks[:0], a.residual[:0], a.flux[:0]
	a.fromWriter, a.writer = a.fromWriter[:0], a.writer[:0]
	a.evals, a.lastDelta, a.delta, a.n = a.evals[:0], a.lastDelta[:0], a.delta[:0], a.n[:0]
}

func (p *PostgresPlayers) fill(a *applyArgs, writes []PlayerWrite) []any {
	a.reset()
	for _, w := range writes {
		a.players = append(a.players, w.PlayerID)
		a.from = append(a.from, w.FromTick)
		a.ticks = append(a.ticks, w.State.Tick)
		a.residual = append(a.residual, w.State.Carry.Residual)
		a.rooms = append(a.rooms, w.State.Carry.RoomID)
		a.evals = append(a.evals, int32(w.State.Carry.Evaluations))
		a.lastDelta = append(a.lastDelta, int32(w.State.LastDelta))
		a.delta = append(a.delta, int32(w.Delta))
		a.fromWriter = append(a.fromWriter, w.FromWriter)
		a.writer = append(a.writer, w.State.Writer)
		if p.cfg.Audit {
			a.n = append(a.n, int32(w.Ticks))
			a.flux = append(a.flux, w.Flux)
		}
	}
	args := []any{a.players, a.from, a.ticks, a.residual, a.rooms, a.evals, a.lastDelta, a.delta, a.fromWriter, a.writer}
	if p.cfg.Audit {
		args = append(args, a.n, a.flux)
	}
	return args
}

// ApplyStatement returns the SQL text and the arguments Apply sends for writes, for callers
// that want to issue or measure the very same statement themselves (the W1 benchmark's
// floor does). The statement returns two integers: writes applied, lucidity rows
// updated. The arguments are freshly allocated; the first is the pgx.QueryExecMode Apply
// uses.
func (p *PostgresPlayers) ApplyStatement(writes []PlayerWrite) (string, []any) {
	return p.applySQL, append(customPlan, p.fill(new(applyArgs), writes)...)
}

// Apply implements PlayerStore with one statement (see PostgresPlayers), sent again after
// a deadlock or serialization failure (nothing was applied) until ctx ends. An empty
// writes slice does nothing and costs no round trip. When the connection breaks under the
// statement (a network cut, ctx ending), the statement may still be running in the server
// and commit later, after the next tick's load. Apply settles that: it terminates the
// connection's server process and waits until it is gone (within SettleTimeout) before it
// returns (trying for at most half a second); when it cannot (the database is
// unreachable), the next LoadActive or Apply does it first and fails while it cannot. So a load never runs while an apply of this store
// may still land.
func (p *PostgresPlayers) Apply(ctx context.Context, writes []PlayerWrite) (_ ApplyResult, err error) {
	defer stripConnectConfig(&err)
	if len(writes) == 0 {
		return ApplyResult{}, nil
	}
	if err := checkWriteDeltas(writes); err != nil {
		return ApplyResult{}, fmt.Errorf("flux: apply %d writes: %w", len(writes), err)
	}
	a, _ := p.argsPool.Get().(*applyArgs)
	defer p.argsPool.Put(a)
	args := p.fill(a, writes)
	if err := p.settle(ctx); err != nil {
		return ApplyResult{}, fmt.Errorf("flux: apply %d writes: %w", len(writes), err)
	}
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("flux: apply %d writes: %w", len(writes), err)
	}
	pid := conn.Conn().PgConn().PID()
	var written, updated int32
	err = retryConflicts(ctx, &p.retries, func() error {
		return conn.QueryRow(ctx, p.applySQL, append(customPlan, args...)...).Scan(&written, &updated)
	})
	cut := conn.Conn().IsClosed()
	conn.Release()
	if err != nil {
		// The statement may still be running in the server. (pgconn.SafeToRetry is not
		// enough to rule that out: it was seen true for a statement that ran.)
		if cut {
			p.unsettle(pid)
			// One short try now; if the database cannot be reached, the next LoadActive
			// or Apply settles it first (within its own deadline).
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleNowTimeout)
			if serr := p.settle(sctx); serr != nil {
				err = errors.Join(err, serr)
			}
			cancel()
		}
		return ApplyResult{}, fmt.Errorf("flux: apply %d writes: %w", len(writes), schemaHint(err))
	}
	return ApplyResult{Written: int(written), Conflicts: len(writes) - int(written), LucidityUpdated: int(updated)}, nil
}
