package flux

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// LucidityWriter is a PlayerStore that can add to a player's lucidity for the game itself
// (a potion, a curse, a quest reward). PostgresPlayers and MemoryPlayers implement it.
type LucidityWriter interface {
	// AddLucidity adds delta to the player's lucidity, clamped to the rules' bounds with the
	// tier recomputed, and returns the new lucidity. An id the store does not hold returns
	// an error wrapping ErrUnknownPlayer; a delta beyond ±MaxDelta (which would saturate
	// anyway) a *DeltaError, before any write — the same in every store of this package.
	AddLucidity(ctx context.Context, playerID string, delta int) (int, error)
}

var (
	_ LucidityWriter = (*PostgresPlayers)(nil)
	_ LucidityWriter = (*MemoryPlayers)(nil)
)

// buildAddLuciditySQL returns AddLucidity's statement: $1 the player id, $2 the delta.
func (p *PostgresPlayers) buildAddLuciditySQL() string {
	n := p.names
	lucTable, idCol := n.LucidityTable, n.LucidityPlayerID
	if !p.separateLucidity() {
		idCol = n.PlayerID
	}
	return "UPDATE " + lucTable + " t SET " + p.luciditySet("$2::int") +
		"\nWHERE t." + idCol + " = $1::text::" + n.PlayerIDType + "\nRETURNING t." + n.Lucidity + "::int"
}

// AddLucidity implements LucidityWriter with one statement: it updates the player's
// lucidity row only (it takes one row lock, so it cannot deadlock with Apply). It is not
// audited: the audit table records flux's own changes.
func (p *PostgresPlayers) AddLucidity(ctx context.Context, playerID string, delta int) (_ int, err error) {
	defer stripConnectConfig(&err)
	if err := checkDelta(playerID, delta); err != nil {
		return 0, fmt.Errorf("flux: add lucidity: %w", err)
	}
	var lucidity int
	err = p.pool.QueryRow(ctx, p.addSQL, playerID, delta).Scan(&lucidity)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("flux: add lucidity to %q: %w", playerID, ErrUnknownPlayer)
	}
	if err != nil {
		return 0, fmt.Errorf("flux: add lucidity to %q: %w", playerID, schemaHint(err))
	}
	return lucidity, nil
}

// AddLucidity implements LucidityWriter.
func (m *MemoryPlayers) AddLucidity(ctx context.Context, playerID string, delta int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("flux: add lucidity: %w", err)
	}
	if err := checkDelta(playerID, delta); err != nil {
		return 0, fmt.Errorf("flux: add lucidity: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.players[playerID]
	if !ok {
		return 0, fmt.Errorf("flux: add lucidity to %q: %w", playerID, ErrUnknownPlayer)
	}
	s.Lucidity = clampLucidity(s.Lucidity+delta, m.rules.MinLucidity, m.rules.MaxLucidity)
	s.Tier = m.rules.Tier(s.Lucidity)
	m.players[playerID] = s
	return s.Lucidity, nil
}

// gameWrite is a lucidity change the game made through Runner.AddLucidity, kept until a
// background load that includes it is adopted by Step.
type gameWrite struct {
	playerID string
	delta    int
	epoch    uint64    // the number of snapshot loads begun before the write was sent
	on       *snapshot // the snapshot the delta has been added to, if any
}

// AddLucidity adds delta to a player's lucidity through the Runner's PlayerStore (which must
// implement LucidityWriter) and returns the new stored lucidity. It is the game's own write
// (a potion, a curse), made on the caller's goroutine with one statement, and flux sees it
// at once: the next Tick loads it, and in the non-blocking mode the next Step adds it to
// the in-memory state it evaluates, until a background load that includes it replaces
// that state. To make that exact, it waits for a background load in flight, if any (at
// most RunnerConfig.LoadTimeout), and Stop cancels it. A write that fails may or may not have landed; Step then
// sees the database's answer with its next background load. It returns ErrClosed after
// Stop or Close, and an error wrapping ErrClosed (and the store's error) when Stop
// cancelled the write under way; an error wrapping errors.ErrUnsupported when the store is
// not a LucidityWriter.
func (r *Runner) AddLucidity(ctx context.Context, playerID string, delta int) (int, error) {
	if r.closed.Load() {
		return 0, ErrClosed
	}
	w, ok := r.players.(LucidityWriter)
	if !ok {
		return 0, fmt.Errorf("flux: add lucidity: the player store %T is not a LucidityWriter: %w", r.players, errors.ErrUnsupported)
	}
	r.startMu.Lock()
	s := r.step
	r.startMu.Unlock()
	ctx, cancel := r.bound(ctx) // Stop cancels it
	defer cancel()
	if s == nil {
		lucidity, err := w.AddLucidity(ctx, playerID, delta)
		return lucidity, closedCause(ctx, playerID, err)
	}
	s.gate.RLock() // no snapshot load runs while the write does: each load sees all of it or none
	defer s.gate.RUnlock()
	epoch := s.loads.Load()
	lucidity, err := w.AddLucidity(ctx, playerID, delta)
	if err != nil {
		return 0, closedCause(ctx, playerID, err)
	}
	s.mu.Lock()
	s.games = append(s.games, gameWrite{playerID: playerID, delta: delta, epoch: epoch})
	s.mu.Unlock()
	return lucidity, nil
}

// closedCause returns err, wrapped with ErrClosed when Stop or Close cancelled ctx (the
// store then reports only context.Canceled), so that a caller such as a NATS handler can
// tell a Runner shut down under it from a failed write.
func closedCause(ctx context.Context, playerID string, err error) error {
	if err == nil || ctx.Err() == nil || !errors.Is(context.Cause(ctx), ErrClosed) || errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("flux: add lucidity to %q: %w: %w", playerID, ErrClosed, err)
}

// overlayGameWrites adds to cur the game's lucidity writes its load did not include, once
// each, and forgets those it did include. Step calls it before the evaluation.
func (r *Runner) overlayGameWrites(s *stepper, cur *snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.games[:0]
	for _, g := range s.games {
		if cur.epoch > g.epoch { // the load began after the write returned: it is in cur
			continue
		}
		if g.on != cur {
			if k, ok := cur.index[g.playerID]; ok {
				p := &cur.players[k]
				p.Lucidity = clampLucidity(p.Lucidity+g.delta, r.rules.MinLucidity, r.rules.MaxLucidity)
			}
			g.on = cur
		}
		kept = append(kept, g)
	}
	clear(s.games[len(kept):])
	s.games = kept
}
