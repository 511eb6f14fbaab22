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
// same semantics — delta apply clamped to the rules' bounds, tier recomputed, idempotent per
// tick id. It remembers every applied tick id (a few bytes each) until ForgetTicks.
// The zero value is not usable; use NewMemoryPlayers.
type MemoryPlayers struct {
	rules Rules

	mu      sync.RWMutex
	players map[string]PlayerState
	applied map[string]struct{}
}

var _ PlayerStore = (*MemoryPlayers)(nil)

// NewMemoryPlayers returns an empty store whose tiers and lucidity bounds follow rules.
func NewMemoryPlayers(rules Rules) *MemoryPlayers {
	return &MemoryPlayers{
		rules:   rules,
		players: make(map[string]PlayerState),
		applied: make(map[string]struct{}),
	}
}

// Put inserts or replaces players; lucidity is clamped to the rules' bounds and the tier
// is computed from it.
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

// ForgetTicks drops the remembered tick ids (after which a re-sent tick would apply again).
func (m *MemoryPlayers) ForgetTicks() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.applied)
}

// LoadActive implements PlayerStore: the players active at q.Now, sorted by id. It costs a
// pass over every stored player and a sort of the active ones.
func (m *MemoryPlayers) LoadActive(ctx context.Context, q ActiveQuery, dst []Player) (Loaded, error) {
	if err := ctx.Err(); err != nil {
		return Loaded{}, fmt.Errorf("flux: load active players: %w", err)
	}
	activeSince := q.Now.Add(-q.ActiveWithin)
	createdSince := q.Now.Add(-q.CreatedWithin)
	dst = dst[:0]
	var committed []string
	m.mu.RLock()
	for _, s := range m.players {
		if !s.LastActive.Before(activeSince) || !s.CreatedAt.Before(createdSince) {
			dst = append(dst, s.Player)
		}
	}
	for _, id := range q.PendingTicks {
		if _, ok := m.applied[id]; ok {
			committed = append(committed, id)
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(dst, func(a, b Player) int { return cmp.Compare(a.ID, b.ID) })
	return Loaded{Players: dst, CommittedTicks: committed}, nil
}

// Apply implements PlayerStore. The deltas of all newly applied ticks are summed per
// player and the sum is added and clamped once, as PostgresPlayers does. Changes of
// players the store does not hold are ignored.
func (m *MemoryPlayers) Apply(ctx context.Context, ticks []TickChanges) (ApplyResult, error) {
	if err := ctx.Err(); err != nil {
		return ApplyResult{}, fmt.Errorf("flux: apply: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var res ApplyResult
	sums := make(map[string]int)
	for _, t := range ticks {
		if _, done := m.applied[t.TickID]; done {
			continue
		}
		m.applied[t.TickID] = struct{}{}
		res.TicksApplied++
		for _, c := range t.Changes {
			sums[c.PlayerID] += c.NewLucidity - c.OldLucidity
		}
	}
	for id, d := range sums {
		s, ok := m.players[id]
		if !ok || d == 0 {
			continue
		}
		s.Lucidity = clampLucidity(s.Lucidity+d, m.rules.MinLucidity, m.rules.MaxLucidity)
		s.Tier = m.rules.Tier(s.Lucidity)
		m.players[id] = s
		res.PlayersUpdated++
	}
	return res, nil
}
