package flux

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// presenceArgs are the reusable parameter arrays of the presence statement.
type presenceArgs struct {
	ids, rooms, scopes []string
	at                 []time.Time
}

// buildPresenceSQL returns the presence statement: one UPDATE of the player table from
// unnested arrays, keeping the last entry of a player listed twice, with the rows locked
// in player-id order first (see PostgresPlayers).
func (p *PostgresPlayers) buildPresenceSQL() string {
	n := p.names
	id := "u.player_id::" + n.PlayerIDType
	set := n.Room + " = v.room_id, " + n.LastActive + " = v.last_active"
	if c := p.cfg.ScopeColumn; c != "" {
		set += ", " + ident(c) + " = coalesce(nullif(v.scope, ''), p." + ident(c) + "::text)"
	}
	return `WITH v AS (
  SELECT DISTINCT ON (` + id + `) ` + id + ` AS player_id, u.room_id, u.last_active, u.scope
  FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) WITH ORDINALITY AS u(player_id, room_id, last_active, scope, ord)
  ORDER BY ` + id + `, u.ord DESC
), locked AS MATERIALIZED (
  SELECT p.` + n.PlayerID + ` AS player_id FROM ` + n.Players + ` p
  WHERE p.` + n.PlayerID + ` IN (SELECT player_id FROM v)
  ORDER BY p.` + n.PlayerID + ` FOR UPDATE
)
UPDATE ` + n.Players + ` p SET ` + set + `
FROM v
WHERE p.` + n.PlayerID + ` = v.player_id AND p.` + n.PlayerID + ` IN (SELECT player_id FROM locked)`
}

// UpdatePresence implements PresenceUpdater with one UPDATE statement (three array
// parameters, whatever the count) on the configured player table: RoomColumn and
// LastActiveColumn of the rows whose PlayerIDColumn matches (ids are cast to PlayerIDType,
// so a malformed uuid fails the whole statement), and ScopeColumn when set and Presence.Scope is not
// empty. Rows are locked in player-id order, and a deadlock is retried within ctx. The
// room column must accept text. It
// returns the number of rows updated; an empty batch does nothing and costs no round trip.
func (p *PostgresPlayers) UpdatePresence(ctx context.Context, batch []Presence) (_ int64, err error) {
	defer stripConnectConfig(&err)
	if len(batch) == 0 {
		return 0, nil
	}
	a, _ := p.presencePool.Get().(*presenceArgs)
	defer p.presencePool.Put(a)
	a.ids, a.rooms, a.at, a.scopes = a.ids[:0], a.rooms[:0], a.at[:0], a.scopes[:0]
	for _, pr := range batch {
		a.ids = append(a.ids, pr.PlayerID)
		a.rooms = append(a.rooms, pr.RoomID)
		a.at = append(a.at, pr.LastActive)
		a.scopes = append(a.scopes, pr.Scope)
	}
	var tag pgconn.CommandTag
	err = retryConflicts(ctx, &p.retries, func() error {
		var err error
		tag, err = p.pool.Exec(ctx, p.presenceSQL, pgx.QueryExecModeCacheDescribe, a.ids, a.rooms, a.at, a.scopes)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("flux: update presence of %d players: %w", len(batch), schemaHint(err))
	}
	return tag.RowsAffected(), nil
}
