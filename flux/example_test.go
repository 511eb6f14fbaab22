package flux_test

import (
	"fmt"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

// A lucid player lingers in a graveyard at night: −0.8 lucidity per tick, applied one
// whole point at a time while the fraction is carried in the ledger.
func ExampleEvaluator_Evaluate() {
	ev, err := flux.NewEvaluator(flux.DefaultRules())
	if err != nil {
		fmt.Println(err)
		return
	}
	rooms := map[string]flux.RoomInfo{
		"crypt": {ID: "crypt", Plane: "material", Zone: "old_town", Environment: "graveyard"},
	}
	start := time.Date(2026, 3, 14, 23, 0, 0, 0, time.UTC)
	players := []flux.Player{{ID: "ada", RoomID: "crypt", Lucidity: 71, CreatedAt: start.AddDate(0, -1, 0)}}
	ledger := flux.Ledger{}

	for tick := 1; tick <= 4; tick++ {
		now := start.Add(time.Duration(tick) * time.Minute)
		players[0].LastActive = now
		res := ev.Evaluate(players, rooms, now, ledger)
		for _, c := range res.Changes {
			fmt.Printf("tick %d: %s %d → %d (%s → %s), flux %.1f\n",
				tick, c.PlayerID, c.OldLucidity, c.NewLucidity, c.OldTier, c.NewTier, c.Flux)
			players[0].Lucidity = c.NewLucidity
		}
		fmt.Printf("tick %d: residual %.1f after %d evaluations in %s\n",
			tick, ledger["ada"].Residual, ledger["ada"].Evaluations, ledger["ada"].RoomID)
	}
	// Output:
	// tick 1: residual -0.8 after 1 evaluations in crypt
	// tick 2: ada 71 → 70 (lucid → lucid), flux -0.8
	// tick 2: residual -0.6 after 2 evaluations in crypt
	// tick 3: ada 70 → 69 (lucid → uneasy), flux -0.8
	// tick 3: residual -0.4 after 3 evaluations in crypt
	// tick 4: ada 69 → 68 (uneasy → uneasy), flux -0.8
	// tick 4: residual -0.2 after 4 evaluations in crypt
}
