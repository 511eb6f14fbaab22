package flux

import "time"

// Player is what one flux evaluation needs to know about a player. A player store loads
// these (one query per tick); the pure functions never change them.
type Player struct {
	// ID identifies the player; it keys the Ledger and is copied into each Change.
	ID string
	// RoomID is the room the player stands in; it keys the rooms map given to Evaluate.
	RoomID string
	// Lucidity is the player's current lucidity, normally within
	// [Rules.MinLucidity, Rules.MaxLucidity].
	Lucidity int
	// LastActive is the last time the player did something (see Rules.IsActive).
	LastActive time.Time
	// CreatedAt is when the character was created (see Rules.IsActive).
	CreatedAt time.Time
	// Scope names the game server hosting the player, as the store holds it (empty when
	// the store has no scopes). A Runner with a RunnerConfig.Scope writes only its own
	// scope's players; the others it loads are their companions.
	Scope string
	// Flux is the player's flux bookkeeping as the store holds it: the last tick applied
	// to the player and the carry-over it left. The pure functions ignore it; the Runner
	// continues from it, so any Runner can tick any player (see TickState).
	Flux TickState
}

// TickState is what the last flux tick applied to a player left behind, stored beside the
// player's lucidity and written by the same statement: the tick's number (the
// exactly-once fence: a write computed from an older Tick is refused), the carry-over and
// the lucidity change the tick made. The zero value is a player never ticked.
type TickState struct {
	// Tick is the number of the last tick applied (see TickNumber); 0 when none.
	Tick int64
	// Carry is the carry-over (residual, room, consecutive evaluations) after that tick.
	Carry Carry
	// LastDelta is the lucidity change that tick applied, so that a Runner loading the
	// player later in the same tick can read its lucidity as it stood at the tick's start.
	LastDelta int
	// Writer identifies the Runner that wrote the state (random per Runner, never 0), so
	// that the fence also tells apart two Runners' writes of the same tick: a Runner that
	// continues from its own write of a tick another Runner wrote first is refused.
	Writer int64
}

// RoomInfo is what flux needs to know about a room: its place in the world hierarchy and
// its environment. It is a plain value copied from a roomstore.Room (the pure flux files do
// not import roomstore, so callers and the Runner do the copy).
type RoomInfo struct {
	ID          string
	Plane       string
	Zone        string
	SubZone     string
	Environment string
}

// Carry is one player's carry-over state between ticks.
type Carry struct {
	// Residual is the fraction of a lucidity point accumulated but not yet applied. After
	// an evaluation it is within (−1, 1).
	Residual float64
	// RoomID is the room of the player's last evaluation.
	RoomID string
	// Evaluations counts the player's consecutive evaluations in RoomID (it drives
	// adaptation; a move to another room resets it to 1).
	Evaluations int
}

// Ledger is the caller-owned carry-over state of every player, keyed by player id.
// Evaluate reads and updates it in place; it is a plain map, so persisting it at shutdown
// is the caller's choice. A crash that loses it loses at most each player's fractional
// residual (less than one lucidity point) and the adaptation counters.
type Ledger map[string]Carry

// Change is one player's lucidity change produced by one evaluation: enough to apply it,
// to publish a lucidity_change event and to write an audit row.
type Change struct {
	PlayerID    string
	RoomID      string
	OldLucidity int
	NewLucidity int
	OldTier     Tier
	NewTier     Tier
	// Base is the room's base flux (profile or world override) for the tick's period.
	Base float64
	// Companion is the flux from companions in the same room (bonus and penalty).
	Companion float64
	// Adaptation is the factor applied to a negative Base+Companion (1 when none applied).
	Adaptation float64
	// Flux is the total added to the residual: (Base+Companion)·Adaptation.
	Flux float64
}

// Counts summarizes one evaluation.
type Counts struct {
	// Seen is the number of players given.
	Seen int
	// Active is the number of those that are active (Rules.IsActive).
	Active int
	// Evaluated is the number of active players whose room was found and that were
	// evaluated.
	Evaluated int
	// Changed is the number of Changes (players whose lucidity changed).
	Changed int
	// RoomsNeeded is the number of distinct rooms of active players.
	RoomsNeeded int
	// RoomsMissing is the number of those rooms absent from the rooms map.
	RoomsMissing int
	// SkippedMissingRoom is the number of active players skipped because their room was
	// missing.
	SkippedMissingRoom int
}

// Result is the outcome of one evaluation.
type Result struct {
	// Changes lists the players whose lucidity changed, in the order of the players
	// slice. The slice is owned by the Evaluator and reused by its next Evaluate call.
	Changes []Change
	// Counts summarizes the evaluation.
	Counts Counts
}
