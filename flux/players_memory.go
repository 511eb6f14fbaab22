package flux

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// ErrUnknownPlayer is returned by MemoryPlayers.Touch for a player id it does not hold.
var ErrUnknownPlayer = errors.New("flux: unknown player")

// PlayerState is a stored player with the tier stored alongside its lucidity.
type PlayerState struct {
	Player
	Tier Tier
}

// MemoryPlayers is a PlayerStore held in process memory: the player store of a game that
// runs without a database, and the test double (and oracle) of PostgresPlayers, with the
// same semantics — compare-and-set on each player's stored tick, delta apply clamped to the
// rules' bounds, tier recomputed. The zero value is not usable; use NewMemoryPlayers.
type MemoryPlayers struct {
	rules Rules

	mu      sync.RWMutex
	players map[string]PlayerState
}

var _ PlayerStore = (*MemoryPlayers)(nil)

// NewMemoryPlayers returns an empty store whose tiers and lucidity bounds follow rules.
func NewMemoryPlayers(rules Rules) *MemoryPlayers {
	return &MemoryPlayers{
		rules:   rules,
		players: make(map[string]PlayerState),
	}
}

// Put inserts or replaces players (with their Scope and TickState as given); lucidity is
// clamped to the rules' bounds and the tier is computed from it.
func (m *MemoryPlayers) Put(players ...Player) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range players {
		p.Lucidity = clampLucidity(p.Lucidity, m.rules.MinLucidity, m.rules.MaxLucidity)
		m.players[p.ID] = PlayerState{Player: p, Tier: m.rules.Tier(p.Lucidity)}
	}
}

// Touch moves a player to roomID and sets its LastActive, leaving its lucidity alone (what
// a game does when a player acts). It returns an error wrapping ErrUnknownPlayer for an id
// it does not hold.
func (m *MemoryPlayers) Touch(id, roomID string, lastActive time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.players[id]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownPlayer, id)
	}
	s.RoomID, s.LastActive = roomID, lastActive
	m.players[id] = s
	return nil
}

// UpdatePresence implements PresenceUpdater: it sets RoomID and LastActive of every listed
// player it holds (in order, so the last entry of a player wins), leaving lucidity alone,
// and returns how many players it updated. It costs one map update per entry under one
// lock.
func (m *MemoryPlayers) UpdatePresence(ctx context.Context, batch []Presence) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("flux: update presence: %w", err)
	}
	if len(batch) == 0 {
		return 0, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[string]struct{}, len(batch))
	for _, pr := range batch {
		s, ok := m.players[pr.PlayerID]
		if !ok {
			continue
		}
		s.RoomID, s.LastActive = pr.RoomID, pr.LastActive
		if pr.Scope != "" {
			s.Scope = pr.Scope
		}
		m.players[pr.PlayerID] = s
		seen[pr.PlayerID] = struct{}{}
	}
	return int64(len(seen)), nil
}

// Get returns the stored state of one player.
func (m *MemoryPlayers) Get(id string) (PlayerState, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s, ok := m.players[id]
	return s, ok
}

// Snapshot returns every stored player, sorted by id, in a new slice. It costs a copy and
// a sort of all players.
func (m *MemoryPlayers) Snapshot() []PlayerState {
	m.mu.RLock()
	out := make([]PlayerState, 0, len(m.players))
	for _, s := range m.players {
		out = append(out, s)
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b PlayerState) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// LoadActive implements PlayerStore: the players active at q.Now (with a Scope, those of
// the scope and their companions; see ActiveQuery), sorted by id. It costs a pass over
// every stored player and a sort of the active ones.
func (m *MemoryPlayers) LoadActive(ctx context.Context, q ActiveQuery, dst []Player) ([]Player, error) {
	if err := ctx.Err(); err != nil {
		return dst[:0], fmt.Errorf("flux: load active players: %w", err)
	}
	activeSince := q.Now.Add(-q.ActiveWithin)
	createdSince := q.Now.Add(-q.CreatedWithin)
	dst = dst[:0]
	m.mu.RLock()
	for _, s := range m.players {
		if !s.LastActive.Before(activeSince) || !s.CreatedAt.Before(createdSince) {
			dst = append(dst, s.Player)
		}
	}
	m.mu.RUnlock()
	if q.Scope != "" {
		rooms := make(map[string]struct{})
		for _, p := range dst {
			if p.Scope == q.Scope {
				rooms[p.RoomID] = struct{}{}
			}
		}
		dst = slices.DeleteFunc(dst, func(p Player) bool {
			_, shared := rooms[p.RoomID]
			return p.Scope != q.Scope && !shared
		})
	}
	slices.SortFunc(dst, func(a, b Player) int { return cmp.Compare(a.ID, b.ID) })
	return dst, nil
}

// Apply implements PlayerStore: each write whose FromTick and FromWriter equal the player's
// stored tick and writer
// adds its Delta (clamped), recomputes the tier and stores its State; the others, and
// writes for players the store does not hold, are conflicts. A player written twice in one
// call is written once (the first write; the second is a conflict), as PostgresPlayers does.
func (m *MemoryPlayers) Apply(ctx context.Context, writes []PlayerWrite) (ApplyResult, error) {
	if err := ctx.Err(); err != nil {
		return ApplyResult{}, fmt.Errorf("flux: apply: %w", err)
	}
	if err := checkWriteDeltas(writes); err != nil {
		return ApplyResult{}, fmt.Errorf("flux: apply %d writes: %w", len(writes), err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var res ApplyResult
	for _, w := range writes {
		s, ok := m.players[w.PlayerID]
		if !ok || s.Flux.Tick != w.FromTick || s.Flux.Writer != w.FromWriter || w.State.Tick <= w.FromTick {
			res.Conflicts++
			continue
		}
		res.Written++
		if l := clampLucidity(s.Lucidity+w.Delta, m.rules.MinLucidity, m.rules.MaxLucidity); l != s.Lucidity {
			s.Lucidity = l
			s.Tier = m.rules.Tier(l)
			res.LucidityUpdated++
		}
		s.Flux = w.State
		m.players[w.PlayerID] = s
	}
	return res, nil
}
