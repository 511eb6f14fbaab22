package flux

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"time"
)

// upsertArgs are the parameter arrays of the upsert statement.
type upsertArgs struct {
	ids, rooms, scopes []string
	lucidity           []int32
	lastActive, born   []time.Time
}

// buildUpsertSQL returns the statement of UpsertPlayers: one INSERT … ON CONFLICT DO UPDATE
// into the player table (and one into the lucidity table when it is separate), the last
// entry of a player listed twice winning, rows taken in player-id order.
func (p *PostgresPlayers) buildUpsertSQL() string {
	n := p.names
	typ := n.PlayerIDType
	clamped := "least(" + n.MaxLucidity + ", greatest(" + n.MinLucidity + ", u.lucidity))"
	input := `WITH u AS (
  SELECT DISTINCT ON (i.id::` + typ + `) i.id::` + typ + ` AS id, i.room, i.lucidity, i.last_active, i.created_at, i.scope
  FROM unnest($1::text[], $2::text[], $3::int4[], $4::timestamptz[], $5::timestamptz[], $6::text[])
    WITH ORDINALITY AS i(id, room, lucidity, last_active, created_at, scope, ord)
  ORDER BY i.id::` + typ + `, i.ord DESC
)`
	cols := []string{n.PlayerID, n.Room, n.LastActive, n.CreatedAt}
	vals := []string{"u.id", "u.room", "u.last_active", "u.created_at"}
	if c := p.cfg.ScopeColumn; c != "" {
		cols = append(cols, ident(c))
		vals = append(vals, "nullif(u.scope, '')")
	}
	lucCols := []string{n.Lucidity, n.Tier}
	lucVals := []string{clamped, p.tierCase(clamped)}
	if !p.separateLucidity() {
		cols, vals = append(cols, lucCols...), append(vals, lucVals...)
	}
	set := func(cols []string) string { // every column but the id
		sets := make([]string, 0, len(cols)-1)
		for _, c := range cols[1:] {
			sets = append(sets, c+" = EXCLUDED."+c)
		}
		return strings.Join(sets, ", ")
	}
	join := func(xs []string) string { return strings.Join(xs, ", ") }
	players := `INSERT INTO ` + n.Players + ` (` + join(cols) + `)
SELECT ` + join(vals) + ` FROM u ORDER BY u.id
ON CONFLICT (` + n.PlayerID + `) DO UPDATE SET ` + set(cols)
	if !p.separateLucidity() {
		return input + "\n" + players
	}
	lc := append([]string{n.LucidityPlayerID}, lucCols...)
	return input + `, players AS (
` + players + `
  RETURNING 1
)
INSERT INTO ` + n.LucidityTable + ` (` + join(lc) + `)
SELECT u.id, ` + join(lucVals) + ` FROM u ORDER BY u.id
ON CONFLICT (` + n.LucidityPlayerID + `) DO UPDATE SET ` + set(lc)
}

// UpsertPlayers creates the given players, or updates those that exist, in one statement
// whatever the count: room, lucidity (clamped to the rules' bounds) and its tier from the
// rules, last active, created at (on the clock the Runner ticks with: game time, see
// Rules.IsActive) and, with ScopeColumn, a non-empty Scope. A player
// listed twice is written once, from its last entry. Their TickState is left alone: a
// new player has never been ticked. On a game's own tables (ExternalPlayerTables) it
// writes only these columns, so any other NOT NULL column needs a default, and the player
// id columns need a unique index. It returns the number of players given (after removing
// duplicates, as the database counted them); an empty batch costs no round trip.
func (p *PostgresPlayers) UpsertPlayers(ctx context.Context, players []Player) (_ int64, err error) {
	defer stripConnectConfig(&err)
	if len(players) == 0 {
		return 0, nil
	}
	var a upsertArgs
	for _, pl := range players {
		a.ids = append(a.ids, pl.ID)
		a.rooms = append(a.rooms, pl.RoomID)
		a.lucidity = append(a.lucidity, int32(clampLucidity(pl.Lucidity, p.cfg.Rules.MinLucidity, p.cfg.Rules.MaxLucidity)))
		a.lastActive = append(a.lastActive, pl.LastActive)
		a.born = append(a.born, pl.CreatedAt)
		a.scopes = append(a.scopes, pl.Scope)
	}
	var n int64
	err = retryConflicts(ctx, &p.retries, func() error {
		tag, err := p.pool.Exec(ctx, p.upsertSQL, pgx.QueryExecModeCacheDescribe, a.ids, a.rooms, a.lucidity, a.lastActive, a.born, a.scopes)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("flux: upsert %d players: %w", len(players), schemaHint(err))
	}
	return n, nil
}

// UpsertPlayers is Put with the signature of PostgresPlayers.UpsertPlayers, so that a game
// creates its players the same way on either store. It returns the number of distinct
// players written.
func (m *MemoryPlayers) UpsertPlayers(ctx context.Context, players []Player) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("flux: upsert players: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[string]struct{}, len(players))
	for _, pl := range players {
		pl.Lucidity = clampLucidity(pl.Lucidity, m.rules.MinLucidity, m.rules.MaxLucidity)
		old, ok := m.players[pl.ID]
		pl.Flux = old.Flux // the tick state is the store's
		if ok && pl.Scope == "" {
			pl.Scope = old.Scope
		}
		m.players[pl.ID] = PlayerState{Player: pl, Tier: m.rules.Tier(pl.Lucidity)}
		seen[pl.ID] = struct{}{}
	}
	return int64(len(seen)), nil
}
