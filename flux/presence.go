package flux

import (
	"context"
	"time"
)

// Presence is where a player is and when it last acted: what a game writes for the players
// that moved or acted in a tick, so that the next flux tick loads them as active and in
// the right room.
type Presence struct {
	PlayerID   string
	RoomID     string
	LastActive time.Time
	// Scope names the game server that hosts the player now (see RunnerConfig.Scope):
	// written when not empty (PostgresPlayers: only with PostgresConfig.ScopeColumn set),
	// left as it was when empty.
	Scope string
}

// PresenceUpdater writes a batch of presences. MemoryPlayers and PostgresPlayers implement
// it: the game's own per-tick position and activity write, through the same store (and its
// configured table and column names) that the Runner reads.
type PresenceUpdater interface {
	// UpdatePresence sets the room and last-active time of every listed player the store
	// holds, leaving lucidity and tier alone, and returns how many players it updated
	// (players it does not hold are skipped). When a player is listed more than once the
	// last entry wins. It is one round trip whatever the count; an empty batch costs none.
	UpdatePresence(ctx context.Context, batch []Presence) (int64, error)
}

var (
	_ PresenceUpdater = (*MemoryPlayers)(nil)
	_ PresenceUpdater = (*PostgresPlayers)(nil)
)
