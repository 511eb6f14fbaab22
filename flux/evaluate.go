package flux

import (
	"math"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"
)

// Evaluator computes flux ticks under one set of Rules. It keeps scratch space between
// calls, so a steady-state tick (same players, warm ledger) makes no allocation per player.
//
// An Evaluator is not safe for concurrent use: one goroutine (the tick loop) owns it. It
// holds no resources and needs no Close.
type Evaluator struct {
	rules Rules

	roomIndex  map[string]int32 // room id → index in slots, for this tick
	slots      []roomSlot
	playerSlot []int32 // per player of this tick: index in slots, or -1 when inactive
	changes    []Change
	keyBuf     []byte // world-override key being built

	// bases caches each room's base flux for both periods between ticks, valid while
	// the room's RoomInfo is unchanged; cleared when it outgrows the rooms in use.
	bases map[string]roomBase
}

// roomBase is a room's base flux by period, for the RoomInfo it was computed from.
type roomBase struct {
	info  RoomInfo
	byPer [2]float64 // indexed by Period
}

// roomSlot is what one tick knows about one room of an active player.
type roomSlot struct {
	present  bool    // the room is in the rooms map
	base     float64 // base flux for the tick's period (valid when present)
	steady   int32   // active lucid or uneasy players in the room, at the start of the tick
	impaired int32   // active deranged or catatonic players in the room
}

// NewEvaluator validates r and returns an Evaluator that uses its own copy of r (changing
// r's maps afterwards does not affect it). The error wraps ErrInvalidRules.
func NewEvaluator(r Rules) (*Evaluator, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &Evaluator{rules: r.clone(), roomIndex: make(map[string]int32), bases: make(map[string]roomBase)}, nil
}

// Rules returns a copy of the evaluator's rules (with copied maps, so it allocates).
func (e *Evaluator) Rules() Rules { return e.rules.clone() }

// Evaluate computes one flux tick at now for players standing in rooms (FLUX.md), updating
// ledger (the carry-overs; nil: none) in place, and returns the changes in the order of
// players. Active players whose room is absent from rooms are skipped and counted; the
// result does not depend on the order of players or maps. Result.Changes is owned by e
// and overwritten by its next call (like bufio.Scanner.Bytes). Cost: two passes over
// players, a few map look-ups per player, no allocation once the scratch and the ledger
// have grown to the tick's size. The flux package documentation has the full contract.
func (e *Evaluator) Evaluate(players []Player, rooms map[string]RoomInfo, now time.Time, ledger Ledger) Result {
	r := &e.rules
	cut := activeCutoffs(*r, now)
	period := r.Period(now)

	clear(e.roomIndex)
	e.slots = e.slots[:0]
	e.changes = e.changes[:0]
	e.playerSlot = slices.Grow(e.playerSlot[:0], len(players))[:len(players)]
	counts := Counts{Seen: len(players)}

	// Pass 1: who is active, which rooms they need, and the companion tiers at the start
	// of the tick.
	for i := range players {
		p := &players[i]
		if !cut.active(p) {
			e.playerSlot[i] = -1
			continue
		}
		counts.Active++
		idx, ok := e.roomIndex[p.RoomID]
		if !ok {
			idx = int32(len(e.slots))
			e.roomIndex[p.RoomID] = idx
			var slot roomSlot
			if info, found := rooms[p.RoomID]; found {
				slot.present = true
				slot.base = e.cachedBase(p.RoomID, info, period)
			} else {
				counts.RoomsMissing++
			}
			e.slots = append(e.slots, slot)
		}
		switch companionKindOf(r.Tiers.tier(p.Lucidity)) {
		case companionSteady:
			e.slots[idx].steady++
		case companionImpaired:
			e.slots[idx].impaired++
		}
		e.playerSlot[i] = idx
	}
	counts.RoomsNeeded = len(e.slots)
	if len(e.bases) > 2*len(e.slots)+1024 { // rooms no longer in use pile up: start over
		clear(e.bases)
	}
	// At most every active player changes: grow once to that bound rather than while
	// appending, so a tick with more changes than any before it does not allocate either.
	e.changes = slices.Grow(e.changes, counts.Active)

	// Pass 2: evaluate.
	for i := range players {
		idx := e.playerSlot[i]
		if idx < 0 {
			continue
		}
		slot := &e.slots[idx]
		if !slot.present {
			counts.SkippedMissingRoom++
			continue
		}
		counts.Evaluated++
		p := &players[i]
		oldTier := r.Tiers.tier(p.Lucidity)

		steady, impaired := slot.steady, slot.impaired
		switch companionKindOf(oldTier) { // the player is not its own companion
		case companionSteady:
			steady--
		case companionImpaired:
			impaired--
		}
		companion := float64(steady) * r.CompanionBonus
		if companion > r.CompanionBonusCap {
			companion = r.CompanionBonusCap
		}
		if impaired > 0 {
			companion += r.ImpairedCompanionFlux
		}

		carry := ledger[p.ID]
		n := 1
		if carry.RoomID == p.RoomID && carry.Evaluations > 0 {
			n = carry.Evaluations
			if n < math.MaxInt32 {
				n++
			}
		}
		raw := slot.base + companion
		factor := 1.0
		if raw < 0 {
			factor = r.adaptationFactor(n)
		}
		flux := raw * factor

		residual := carry.Residual
		if !finite(residual) {
			residual = 0
		}
		residual += flux
		var step float64
		switch eps := r.CarryEpsilon; {
		case residual >= 1-eps:
			step = math.Floor(residual + eps)
		case residual <= -1+eps:
			step = math.Ceil(residual - eps)
		}
		residual -= step
		newLucidity := r.clampLucidity(p.Lucidity)
		if step != 0 {
			// |step| beyond the whole range clamps the same as the range itself, and
			// keeps the int conversion exact.
			span := float64(r.MaxLucidity - r.MinLucidity)
			newLucidity = r.clampLucidity(newLucidity + int(max(-span, min(span, step))))
		}

		if ledger != nil {
			ledger[p.ID] = Carry{Residual: residual, RoomID: p.RoomID, Evaluations: n}
		}
		if newLucidity == p.Lucidity {
			continue
		}
		e.changes = append(e.changes, Change{
			PlayerID:    p.ID,
			RoomID:      p.RoomID,
			OldLucidity: p.Lucidity,
			NewLucidity: newLucidity,
			OldTier:     oldTier,
			NewTier:     r.Tiers.tier(newLucidity),
			Base:        slot.base,
			Companion:   companion,
			Adaptation:  factor,
			Flux:        flux,
		})
	}
	counts.Changed = len(e.changes)
	return Result{Changes: e.changes, Counts: counts}
}

// adaptationFactor returns the factor applied to a negative flux on the n-th consecutive
// evaluation in one room: max(floor, 1 − perStep·min(maxSteps, (n−1) div step)).
func (r *Rules) adaptationFactor(n int) float64 {
	s := min(r.AdaptationMaxSteps, (n-1)/r.AdaptationStep)
	return max(r.AdaptationFloor, 1-r.AdaptationPerStep*float64(s))
}

// clampLucidity returns l within [MinLucidity, MaxLucidity].
func (r *Rules) clampLucidity(l int) int {
	return max(r.MinLucidity, min(r.MaxLucidity, l))
}

// BaseFlux returns the base flux of room at t under r: the world override if one matches,
// else the first matching profile (room id, sub-zone, zone, environment, default) valued
// for t's period. It allocates only while building a world-override key with a non-ASCII
// or upper-case name.
func (r Rules) BaseFlux(room RoomInfo, t time.Time) float64 {
	v, _ := r.baseFlux(room.ID, room, r.Period(t), nil)
	return v
}

// cachedBase returns the room's base flux for period, from e.bases when the room is
// unchanged since it was computed.
func (e *Evaluator) cachedBase(roomID string, room RoomInfo, period Period) float64 {
	if b, ok := e.bases[roomID]; ok && b.info == room {
		return b.byPer[period]
	}
	b := roomBase{info: room}
	for _, per := range [...]Period{Day, Night} {
		b.byPer[per], e.keyBuf = e.rules.baseFlux(roomID, room, per, e.keyBuf)
	}
	e.bases[roomID] = b
	return b.byPer[period]
}

// baseFlux is BaseFlux with the room id given apart (the rooms map key) and a reusable
// key buffer, returned grown.
func (r *Rules) baseFlux(roomID string, room RoomInfo, period Period, buf []byte) (float64, []byte) {
	if len(r.WorldOverrides) > 0 {
		buf = appendLower(buf[:0], room.Plane)
		buf = append(buf, '|')
		planeEnd := len(buf)
		buf = appendLower(buf, room.Zone)
		buf = append(buf, '|')
		zoneEnd := len(buf)
		buf = appendLower(buf, room.SubZone)
		rate, ok := r.WorldOverrides[string(buf)]
		if !ok {
			buf = append(buf[:zoneEnd], '*')
			rate, ok = r.WorldOverrides[string(buf)]
		}
		if !ok {
			buf = append(buf[:planeEnd], '*', '|', '*')
			rate, ok = r.WorldOverrides[string(buf)]
		}
		if ok {
			return -math.Min(rate, r.WorldRateCap), buf
		}
	}
	return r.profile(roomID, room).Value(period), buf
}

// profile returns the first matching profile: room id, sub-zone, zone, environment,
// default. An empty sub-zone or zone matches no override.
func (r *Rules) profile(roomID string, room RoomInfo) Profile {
	if p, ok := r.RoomOverrides[roomID]; ok {
		return p
	}
	if room.SubZone != "" {
		if p, ok := r.SubZoneOverrides[room.SubZone]; ok {
			return p
		}
	}
	if room.Zone != "" {
		if p, ok := r.ZoneOverrides[room.Zone]; ok {
			return p
		}
	}
	if p, ok := r.Environments[room.Environment]; ok {
		return p
	}
	return r.DefaultProfile
}

// appendLower appends s lower-cased to buf, without allocating beyond buf's growth.
func appendLower(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			for _, r := range s[i:] {
				buf = utf8.AppendRune(buf, unicode.ToLower(r))
			}
			return buf
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf = append(buf, c)
	}
	return buf
}
