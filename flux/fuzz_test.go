package flux_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

// byteSource hands out the fuzz input one byte at a time, then zeros.
type byteSource []byte

func (s *byteSource) next() int {
	if len(*s) == 0 {
		return 0
	}
	b := (*s)[0]
	*s = (*s)[1:]
	return int(b)
}

// FuzzEvaluate builds a small world from the input (rooms of any environment, world
// overrides up to 25.5 (capped at 10), players of any lucidity, activity and carry) and
// runs a few ticks, checking the invariants of FLUX.md on every change and carry.
func FuzzEvaluate(f *testing.F) {
	f.Add([]byte{22, 10, 3, 8, 0, 6, 1, 4, 200, 1, 255, 9, 12, 50, 3, 7})
	f.Add([]byte{12, 255, 5, 8, 8, 8, 8, 8, 30, 0, 200, 1, 0, 255, 2, 0, 200, 0, 1, 2, 3, 4, 5, 6})
	f.Add([]byte{0, 0, 1, 9, 9, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte("the quick brown fox jumps over the lazy dog, twice over the graveyard"))
	f.Fuzz(func(t *testing.T, data []byte) {
		src := byteSource(data)
		rules := flux.DefaultRules()
		rules.WorldOverrides["shadow|*|*"] = float64(src.next()) / 10
		rules.WorldOverrides["shadow|z1|*"] = float64(src.next()) / 10
		ev, err := flux.NewEvaluator(rules)
		if err != nil {
			t.Fatal(err)
		}
		bound := rules.MaxFlux() + 1
		now := time.Date(2026, 3, 14, src.next()%24, 0, 0, 0, time.UTC)

		nRooms := 1 + src.next()%6
		rooms := make(map[string]flux.RoomInfo, nRooms)
		for i := range nRooms {
			r := flux.RoomInfo{ID: fmt.Sprint("r", i), Plane: "material", Zone: fmt.Sprint("z", src.next()%3)}
			r.Environment = environmentMix[src.next()%len(environmentMix)]
			if v := src.next(); v%4 == 0 {
				r.Plane = "shadow"
			} else if v%5 == 1 {
				r.SubZone = "sanitarium"
			}
			rooms[r.ID] = r
		}
		nPlayers := src.next() % 40
		players := make([]flux.Player, nPlayers)
		ledger := flux.Ledger{}
		for i := range players {
			p := flux.Player{
				ID:         fmt.Sprint("p", i),
				RoomID:     fmt.Sprint("r", src.next()%(nRooms+1)), // r<nRooms> is missing
				Lucidity:   src.next()%201 - 100,
				LastActive: now,
				CreatedAt:  now.Add(-48 * time.Hour),
			}
			if src.next()%8 == 0 {
				p.LastActive = now.Add(-time.Hour)
			}
			if v := src.next(); v%3 != 0 {
				room := p.RoomID
				if v%3 == 2 {
					room = "elsewhere"
				}
				ledger[p.ID] = flux.Carry{
					Residual:    (float64(src.next()) - 127.5) / 128, // within (−1, 1)
					RoomID:      room,
					Evaluations: src.next() % 30,
				}
			}
			players[i] = p
		}

		ticks := 1 + src.next()%5
		for tick := range ticks {
			at := now.Add(time.Duration(tick) * time.Minute)
			res := ev.Evaluate(players, rooms, at, ledger)
			c := res.Counts
			if c.Seen != nPlayers || c.Evaluated+c.SkippedMissingRoom != c.Active || c.Changed != len(res.Changes) {
				t.Fatalf("tick %d: inconsistent counts %+v with %d changes", tick, c, len(res.Changes))
			}
			for _, ch := range res.Changes {
				for _, v := range []float64{ch.Base, ch.Companion, ch.Adaptation, ch.Flux} {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						t.Fatalf("tick %d: non-finite part in %+v", tick, ch)
					}
				}
				if ch.NewLucidity < -100 || ch.NewLucidity > 100 || ch.NewLucidity == ch.OldLucidity {
					t.Fatalf("tick %d: bad lucidity in %+v", tick, ch)
				}
				if d := math.Abs(float64(ch.NewLucidity - ch.OldLucidity)); d > bound || math.Abs(ch.Flux) > rules.MaxFlux()+1e-9 {
					t.Fatalf("tick %d: change %v or flux %v beyond bound %v: %+v", tick, d, ch.Flux, bound, ch)
				}
				if ch.NewTier != rules.Tier(ch.NewLucidity) || ch.OldTier != rules.Tier(ch.OldLucidity) {
					t.Fatalf("tick %d: tiers do not match lucidity: %+v", tick, ch)
				}
			}
			for id, carry := range ledger {
				if r := carry.Residual; math.IsNaN(r) || r <= -1 || r >= 1 {
					t.Fatalf("tick %d: residual of %s out of (−1, 1): %v", tick, id, r)
				}
			}
			applyChanges(players, res)
		}
	})
}
