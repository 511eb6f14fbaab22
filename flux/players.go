package flux

import (
	"context"
	"time"
)

// PlayerStore loads the active players of a tick and applies a tick's lucidity changes.
// Implementations in this package: MemoryPlayers and PostgresPlayers. Both are safe for
// concurrent use.
//
// The contract every implementation keeps:
//
//   - LoadActive is one round trip (one query) whatever the number of players.
//   - Apply is one round trip (one statement) whatever the number of ticks and changes, and
//     idempotent per tick id: a tick already applied (by this or an earlier call, whose
//     reply may have been lost) is skipped, so each change is applied exactly once; a
//     tick id listed twice in one call is applied once, from its first occurrence.
//   - Apply adds each change's delta (NewLucidity − OldLucidity) to the stored lucidity,
//     clamped to the rules' bounds, and stores the tier of the result. Deltas, rather than
//     absolute values, keep a game's own concurrent lucidity writes.
type PlayerStore interface {
	// LoadActive returns the players active at q.Now (see ActiveQuery), appended to
	// dst[:0], and which of q.PendingTicks are already applied.
	LoadActive(ctx context.Context, q ActiveQuery, dst []Player) (Loaded, error)
	// Apply applies the changes of every tick not applied before, in one statement.
	Apply(ctx context.Context, ticks []TickChanges) (ApplyResult, error)
}

// ActiveQuery says which players LoadActive returns: those whose LastActive is at or after
// Now−ActiveWithin, or whose CreatedAt is at or after Now−CreatedWithin (Rules.ActiveWindow
// and Rules.NewCharacterWindow; see ActiveQueryFor).
type ActiveQuery struct {
	Now           time.Time
	ActiveWithin  time.Duration
	CreatedWithin time.Duration
	// PendingTicks lists tick ids whose apply the caller could not confirm; LoadActive
	// reports, from the same snapshot as the players, which of them are applied.
	PendingTicks []string
}

// ActiveQueryFor returns the ActiveQuery of rules at now.
func ActiveQueryFor(rules Rules, now time.Time) ActiveQuery {
	return ActiveQuery{Now: now, ActiveWithin: rules.ActiveWindow, CreatedWithin: rules.NewCharacterWindow}
}

// Loaded is what LoadActive returns.
type Loaded struct {
	// Players are the active players, in the order the store returns them.
	Players []Player
	// CommittedTicks are the ids of ActiveQuery.PendingTicks that are already applied.
	CommittedTicks []string
}

// TickChanges is the changes of one tick, under the tick's id. The id must be unique
// across every process that applies to the same store (the Runner uses
// "<runner id>:<start nonce>:<sequence>").
type TickChanges struct {
	TickID  string
	Changes []Change
}

// ApplyResult is what Apply did.
type ApplyResult struct {
	// TicksApplied is the number of ticks applied by this call (ticks applied before
	// are not counted).
	TicksApplied int
	// PlayersUpdated is the number of player rows written.
	PlayersUpdated int
}

// countChanges returns the number of changes in ticks.
func countChanges(ticks []TickChanges) int {
	n := 0
	for _, t := range ticks {
		n += len(t.Changes)
	}
	return n
}

// clampLucidity clamps v to [lo, hi].
func clampLucidity(v, lo, hi int) int {
	return min(max(v, lo), hi)
}
