package flux_test

import (
	"math"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

// Times used by the tests: noon is day, 22:00 is night under the default rules.
var (
	noon  = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	night = time.Date(2026, 3, 14, 22, 0, 0, 0, time.UTC)
)

const tolerance = 1e-9

func newEvaluator(t testing.TB, r flux.Rules) *flux.Evaluator {
	t.Helper()
	ev, err := flux.NewEvaluator(r)
	if err != nil {
		t.Fatalf("NewEvaluator: %v", err)
	}
	return ev
}

// activePlayer returns a player active at now (last active now, created long ago).
func activePlayer(id, room string, lucidity int, now time.Time) flux.Player {
	return flux.Player{ID: id, RoomID: room, Lucidity: lucidity, LastActive: now, CreatedAt: now.Add(-24 * time.Hour)}
}

func roomsOf(infos ...flux.RoomInfo) map[string]flux.RoomInfo {
	m := make(map[string]flux.RoomInfo, len(infos))
	for _, r := range infos {
		m[r.ID] = r
	}
	return m
}

func envRoom(id, env string) flux.RoomInfo {
	return flux.RoomInfo{ID: id, Plane: "material", Zone: "town", Environment: env}
}

// fluxOf evaluates players once from an empty ledger and returns the flux the player id
// received, read back from its residual (valid while |flux| < 1).
func fluxOf(t *testing.T, r flux.Rules, players []flux.Player, rooms map[string]flux.RoomInfo, now time.Time, id string) float64 {
	t.Helper()
	ledger := flux.Ledger{}
	newEvaluator(t, r).Evaluate(players, rooms, now, ledger)
	c, ok := ledger[id]
	if !ok {
		t.Fatalf("player %s was not evaluated", id)
	}
	return c.Residual
}

func near(a, b float64) bool { return math.Abs(a-b) < tolerance }

// changeFor returns the change of player id in res, if any.
func changeFor(res flux.Result, id string) (flux.Change, bool) {
	for _, c := range res.Changes {
		if c.PlayerID == id {
			return c, true
		}
	}
	return flux.Change{}, false
}

// applyChanges writes the new lucidity of every change into players, as a store would.
func applyChanges(players []flux.Player, res flux.Result) {
	byID := make(map[string]int, len(res.Changes))
	for _, c := range res.Changes {
		byID[c.PlayerID] = c.NewLucidity
	}
	for i := range players {
		if l, ok := byID[players[i].ID]; ok {
			players[i].Lucidity = l
		}
	}
}
