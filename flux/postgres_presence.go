package flux

import (
	"context"
	"fmt"
	"time"
)

// presenceArgs are the reusable parameter arrays of the presence statement.
type presenceArgs struct {
	ids, rooms []string
	at         []time.Time
}

// buildPresenceSQL returns the presence statement: one UPDATE of the player table from
// three unnested arrays, keeping the last entry of a player listed twice.
func (p *PostgresPlayers) buildPresenceSQL() string {
	n := p.names
	id := "u.player_id::" + n.PlayerIDType
	return `UPDATE ` + n.Players + ` p SET ` + n.Room + ` = v.room_id, ` + n.LastActive + ` = v.last_active
FROM (
  SELECT DISTINCT ON (` + id + `) ` + id + ` AS player_id, u.room_id, u.last_active
  FROM unnest($1::text[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS u(player_id, room_id, last_active, ord)
  ORDER BY ` + id + `, u.ord DESC
) v
WHERE p.` + n.PlayerID + ` = v.player_id`
}

// UpdatePresence implements PresenceUpdater with one UPDATE statement (three array
// parameters, whatever the count) on the configured player table: RoomColumn and
// LastActiveColumn of the rows whose PlayerIDColumn matches (ids are cast to PlayerIDType,
// so a malformed uuid fails the whole statement). The room column must accept text. It
// returns the number of rows updated; an empty batch does nothing and costs no round trip.
func (p *PostgresPlayers) UpdatePresence(ctx context.Context, batch []Presence) (int64, error) {
	if len(batch) == 0 {
		return 0, nil
	}
	a, _ := p.presencePool.Get().(*presenceArgs)
	defer p.presencePool.Put(a)
	a.ids, a.rooms, a.at = a.ids[:0], a.rooms[:0], a.at[:0]
	for _, pr := range batch {
		a.ids = append(a.ids, pr.PlayerID)
		a.rooms = append(a.rooms, pr.RoomID)
		a.at = append(a.at, pr.LastActive)
	}
	tag, err := p.pool.Exec(ctx, p.presenceSQL, a.ids, a.rooms, a.at)
	if err != nil {
		return 0, fmt.Errorf("flux: update presence of %d players: %w", len(batch), err)
	}
	return tag.RowsAffected(), nil
}
