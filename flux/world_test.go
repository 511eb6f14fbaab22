package flux_test

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

// environmentMix is every environment FLUX.md lists, plus one it does not (default
// profile); generated worlds cycle through it.
var environmentMix = []string{
	"sanctuary", "sun_sanctuary", "temple", "safehouse", "street_paved", "camp", "graveyard",
	"haunted", "eldritch", "storm", "forsaken", "indoors", "outdoors", "cavern",
}

// world is a generated game world for tests and benchmarks.
type world struct {
	rooms   []flux.RoomInfo
	players []flux.Player
}

// genWorld builds nRooms rooms cycling through environmentMix (every 10th in the
// sanitarium sub-zone, every 7th on the "shadow" plane) and nPlayers players spread over
// them at random, a fraction idleShare of them inactive at now.
func genWorld(seed uint64, nRooms, nPlayers int, idleShare float64, now time.Time) world {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	w := world{rooms: make([]flux.RoomInfo, nRooms), players: make([]flux.Player, nPlayers)}
	for i := range w.rooms {
		r := flux.RoomInfo{
			ID:          fmt.Sprintf("room-%05d", i),
			Plane:       "material",
			Zone:        fmt.Sprintf("zone-%02d", i%20),
			Environment: environmentMix[i%len(environmentMix)],
		}
		if i%10 == 3 {
			r.SubZone = "sanitarium"
		}
		if i%7 == 5 {
			r.Plane = "Shadow"
		}
		w.rooms[i] = r
	}
	for i := range w.players {
		p := flux.Player{
			ID:         fmt.Sprintf("player-%06d", i),
			RoomID:     w.rooms[rng.IntN(nRooms)].ID,
			Lucidity:   rng.IntN(201) - 100,
			LastActive: now.Add(-time.Duration(rng.Int64N(int64(4 * time.Minute)))),
			CreatedAt:  now.Add(-30 * 24 * time.Hour),
		}
		if rng.Float64() < idleShare {
			p.LastActive = now.Add(-time.Hour)
		}
		w.players[i] = p
	}
	return w
}

// worldRules is DefaultRules with a world override for the "shadow" plane.
func worldRules() flux.Rules {
	r := flux.DefaultRules()
	r.WorldOverrides["shadow|*|*"] = 0.7
	r.WorldOverrides["shadow|zone-05|*"] = 12 // capped at 10
	return r
}

func (w world) roomMap() map[string]flux.RoomInfo {
	m := make(map[string]flux.RoomInfo, len(w.rooms))
	for _, r := range w.rooms {
		m[r.ID] = r
	}
	return m
}
