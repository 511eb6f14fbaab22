package flux

import "time"

// IsActive reports whether p is active at now: LastActive is at most ActiveWindow before
// now (a LastActive after now counts as active), or CreatedAt is at most
// NewCharacterWindow before now. Both bounds are inclusive. It costs two time comparisons.
//
// now is the tick's time — game time when the game keeps its own clock — and LastActive
// and CreatedAt must be on the same clock: a player written with the wall clock (the
// default flux_players columns, last_active = now()) while game time runs behind it counts
// as active until game time passes that instant. Write game time (UpsertPlayers,
// UpdatePresence) when the two clocks differ.
func (r Rules) IsActive(p Player, now time.Time) bool {
	return activeCutoffs(r, now).active(&p)
}

// cutoffs holds the earliest LastActive and CreatedAt that count as active at one instant,
// so a tick computes them once.
type cutoffs struct {
	lastActive time.Time
	created    time.Time
}

func activeCutoffs(r Rules, now time.Time) cutoffs {
	return cutoffs{lastActive: now.Add(-r.ActiveWindow), created: now.Add(-r.NewCharacterWindow)}
}

func (c cutoffs) active(p *Player) bool {
	return !p.LastActive.Before(c.lastActive) || !p.CreatedAt.Before(c.created)
}

// ActiveRoomIDs appends to dst the distinct room ids of the players active at now, in the
// order of first appearance, and returns the extended slice: the ids to read with one
// RoomStore.GetRooms call before Evaluate. It allocates a set sized to the number of
// players (pass the previous tick's slice as dst[:0] to reuse the id slice; the Runner
// also reuses the set).
func ActiveRoomIDs(r Rules, players []Player, now time.Time, dst []string) []string {
	return activeRoomIDs(r, players, now, dst, make(map[string]struct{}, len(players)/4+1))
}

// activeRoomIDs is ActiveRoomIDs with the caller's set, which it clears first.
func activeRoomIDs(r Rules, players []Player, now time.Time, dst []string, seen map[string]struct{}) []string {
	clear(seen)
	c := activeCutoffs(r, now)
	for i := range players {
		p := &players[i]
		if !c.active(p) {
			continue
		}
		if _, ok := seen[p.RoomID]; ok {
			continue
		}
		seen[p.RoomID] = struct{}{}
		dst = append(dst, p.RoomID)
	}
	return dst
}
