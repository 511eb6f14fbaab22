package flux

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/gamepersist/gamepersist/internal/redact"
)

// Bounds of the game time Tick, Step and Start accept. Outside them a tick number cannot
// be formed (before the Unix epoch it is negative and reads as already applied; after
// MaxGameTime UnixNano overflows), so the call fails with ErrInvalidGameTime instead of
// ticking nobody.
var (
	// MinGameTime is the earliest game time accepted: the Unix epoch.
	MinGameTime = time.Unix(0, 0).UTC()
	// MaxGameTime is the latest game time accepted: 2262-04-11T23:47:16.854775807Z, the
	// last instant whose UnixNano fits an int64.
	MaxGameTime = time.Unix(0, math.MaxInt64).UTC()
)

// ErrInvalidGameTime is wrapped by the error of Tick, Step and Start for a game time
// before MinGameTime, after MaxGameTime, or within the first tick after the epoch (tick
// number 0, which every never-ticked player already holds). Nothing is loaded or written.
var ErrInvalidGameTime = errors.New("flux: game time out of range")

// checkGameTime returns nil when now gives a tick number of at least 1 with tickLength,
// else an error wrapping ErrInvalidGameTime. It costs a comparison and a division.
func checkGameTime(now time.Time, tickLength time.Duration) error {
	switch {
	case now.Before(MinGameTime):
		return fmt.Errorf("%w: %s is before %s (MinGameTime)", ErrInvalidGameTime, now.Format(time.RFC3339Nano), MinGameTime.Format(time.RFC3339))
	case now.After(MaxGameTime):
		return fmt.Errorf("%w: %s is after %s (MaxGameTime)", ErrInvalidGameTime, now.Format(time.RFC3339Nano), MaxGameTime.Format(time.RFC3339Nano))
	case TickNumber(now, tickLength) < 1:
		return fmt.Errorf("%w: %s is in tick 0 of TickLength %s (the tick of never-ticked players); start the game clock later",
			ErrInvalidGameTime, now.Format(time.RFC3339Nano), tickLength)
	}
	return nil
}

// MaxDelta is the largest lucidity change, in magnitude, that AddLucidity and Apply accept
// (2^30, in every store alike): any stored lucidity lies within ±MaxLucidityBound (2^29),
// so a delta of MaxDelta already saturates at a bound, and lucidity plus delta never
// overflows PostgreSQL's integer. A larger delta is refused with a *DeltaError before
// anything is written, never truncated or wrapped around.
const MaxDelta = 1 << 30

// ErrInvalidDelta is matched (errors.Is) by every *DeltaError.
var ErrInvalidDelta = errors.New("flux: lucidity delta out of range")

// DeltaError reports a lucidity delta beyond ±MaxDelta given to AddLucidity or in a
// PlayerWrite given to Apply. It wraps ErrInvalidDelta.
type DeltaError struct {
	// PlayerID is the player whose delta was refused.
	PlayerID string
	// Delta is the refused delta.
	Delta int
}

// Error returns "flux: lucidity delta out of range: player <id>: <delta> is beyond ±MaxDelta (<n>)".
func (e *DeltaError) Error() string {
	return ErrInvalidDelta.Error() + ": player " + strconv.Quote(e.PlayerID) + ": " + strconv.Itoa(e.Delta) +
		" is beyond ±MaxDelta (" + strconv.Itoa(MaxDelta) + ")"
}

// Unwrap returns ErrInvalidDelta.
func (e *DeltaError) Unwrap() error { return ErrInvalidDelta }

// checkDelta returns a *DeltaError unless |delta| <= MaxDelta.
func checkDelta(playerID string, delta int) error {
	if delta < -MaxDelta || delta > MaxDelta {
		return &DeltaError{PlayerID: playerID, Delta: delta}
	}
	return nil
}

// checkWriteDeltas returns the *DeltaError of the first write whose Delta is out of range,
// so that Apply refuses the whole call before writing any of it. It costs a pass over
// writes.
func checkWriteDeltas(writes []PlayerWrite) error {
	for i := range writes {
		if err := checkDelta(writes[i].PlayerID, writes[i].Delta); err != nil {
			return err
		}
	}
	return nil
}

// scopeIgnorer is implemented by a PlayerStore that cannot place players in scopes
// (PostgresPlayers without PostgresConfig.ScopeColumn): a Runner with a Scope over it
// would evaluate every player and write none.
type scopeIgnorer interface {
	ignoresScope() bool
}

// checkScope refuses RunnerConfig.Scope over a store that ignores scopes.
func checkScope(players PlayerStore, scope string) error {
	if scope == "" {
		return nil
	}
	if s, ok := players.(scopeIgnorer); ok && s.ignoresScope() {
		return configErrorf("RunnerConfig.Scope", scope,
			"the PlayerStore has no scopes (PostgresConfig.ScopeColumn is empty): set ScopeColumn or leave Scope empty")
	}
	return nil
}

// ignoresScope reports whether p has no ScopeColumn (see checkScope).
func (p *PostgresPlayers) ignoresScope() bool { return p.cfg.ScopeColumn == "" }

// stripConnectConfig replaces *errp, when its chain holds a *pgconn.ConnectError (whose
// Config holds the database password), by a copy that errors.As cannot take to it
// (internal/redact, as roomstore does). PostgresPlayers defers it in every method that
// talks to the database.
func stripConnectConfig(errp *error) { *errp = redact.ConnectConfigs(*errp) }
