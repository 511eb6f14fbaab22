package flux

import (
	"context"
	"time"
)

// PlayerStore loads the active players of a tick and writes what ticks did to them.
// Implementations in this package: MemoryPlayers and PostgresPlayers. Both are safe for
// concurrent use, and both pass the same tests.
//
// The contract every implementation keeps:
//
//   - LoadActive is one round trip (one query) whatever the number of players, and returns
//     each player with its stored TickState.
//   - Apply is one round trip (one statement) per call whatever the number of writes. Each
//     PlayerWrite is applied only if the player's stored TickState (Tick and Writer) still
//     equals the write's From (compare-and-set); otherwise it is refused and counted as a
//     conflict. So a write retried after a lost reply, a minute re-run after a restart,
//     and the same minute ticked by two servers are each applied once.
//   - Apply adds each write's Delta to the stored lucidity, clamped to the rules' bounds,
//     stores the tier of the result and the write's TickState. A Delta the clamp cancels
//     leaves the lucidity row untouched (only the TickState moves). Deltas, rather than
//     absolute values, keep a game's own concurrent lucidity writes.
type PlayerStore interface {
	// LoadActive returns the players active at q.Now (see ActiveQuery), appended to
	// dst[:0].
	LoadActive(ctx context.Context, q ActiveQuery, dst []Player) ([]Player, error)
	// Apply applies every write whose FromTick still holds, in one statement.
	Apply(ctx context.Context, writes []PlayerWrite) (ApplyResult, error)
}

// ActiveQuery says which players LoadActive returns: those whose LastActive is at or after
// Now−ActiveWithin, or whose CreatedAt is at or after Now−CreatedWithin (Rules.ActiveWindow
// and Rules.NewCharacterWindow; see ActiveQueryFor). When Scope is not empty, only the
// active players the store places in Scope (the players one game server hosts; see
// RunnerConfig.Scope) and the active players of any scope who stand in the same rooms
// as they do (their companions, whatever server hosts them).
type ActiveQuery struct {
	Now           time.Time
	ActiveWithin  time.Duration
	CreatedWithin time.Duration
	Scope         string
}

// ActiveQueryFor returns the ActiveQuery of rules at now, over every scope.
func ActiveQueryFor(rules Rules, now time.Time) ActiveQuery {
	return ActiveQuery{Now: now, ActiveWithin: rules.ActiveWindow, CreatedWithin: rules.NewCharacterWindow}
}

// PlayerWrite is what one or more consecutive ticks did to one player, summed: the store
// applies it only while the player's stored TickState.Tick is FromTick and its Writer is
// FromWriter.
type PlayerWrite struct {
	PlayerID string
	// FromTick and FromWriter are the stored TickState's Tick and Writer the write was
	// computed from (0 and 0: never ticked).
	FromTick   int64
	FromWriter int64
	// State is the TickState the store keeps after the write; State.Tick > FromTick.
	State TickState
	// Delta is the lucidity change to add (the sum of the ticks' changes); 0 writes the
	// state only. Apply refuses a call holding a Delta beyond ±MaxDelta with a *DeltaError,
	// writing none of it.
	Delta int
	// Ticks is the number of ticks summed in this write (1 in steady state).
	Ticks int
	// OldLucidity and NewLucidity are the lucidity before the first and after the last
	// summed tick, as evaluated; RoomID the room of the last one; Flux the summed flux.
	// RoomID, Ticks and Flux are written to the audit log; the log's lucidity, tiers and
	// delta are those the store applied (after the clamp, and after the game's own
	// writes), not these.
	OldLucidity, NewLucidity int
	RoomID                   string
	Flux                     float64
}

// ApplyResult is what Apply did.
type ApplyResult struct {
	// Written is the number of writes applied (their FromTick held).
	Written int
	// Conflicts is the number of writes refused because the player's stored tick had
	// moved on (applied before, by this or another Runner) or the player is unknown.
	Conflicts int
	// LucidityUpdated is the number of lucidity rows changed: writes whose Delta, clamped
	// to the rules' bounds, changed the stored lucidity.
	LucidityUpdated int
}

// TickNumber returns the number of the tick that contains now, for ticks of length
// tickLength counted from the Unix epoch: floor(now / tickLength). Two servers ticking
// the same game minute get the same number, which is what makes a tick exactly-once
// across servers. tickLength must be positive.
func TickNumber(now time.Time, tickLength time.Duration) int64 {
	n := now.UnixNano()
	l := int64(tickLength)
	q := n / l
	if n%l != 0 && n < 0 {
		q--
	}
	return q
}

// clampLucidity clamps v to [lo, hi].
func clampLucidity(v, lo, hi int) int {
	return min(max(v, lo), hi)
}
