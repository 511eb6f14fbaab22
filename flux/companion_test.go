package flux_test

import (
	"fmt"
	"testing"

	"github.com/gamepersist/gamepersist/flux"
)

func TestCompanionBonusIsCapped(t *testing.T) {
	t.Parallel()
	r := flux.DefaultRules()
	rooms := roomsOf(envRoom("i", "indoors"), envRoom("other", "indoors"))
	want := []float64{0, 0.1, 0.2, 0.3, 0.3, 0.3}
	for n, w := range want {
		players := []flux.Player{activePlayer("me", "i", 50, noon)}
		for k := range n {
			// Alternate lucid and uneasy companions: both give the bonus.
			players = append(players, activePlayer(fmt.Sprint("c", k), "i", 70-30*(k%2), noon))
		}
		// Players elsewhere and inactive players in the room are not companions.
		players = append(players, activePlayer("away", "other", 90, noon))
		idle := activePlayer("idle", "i", 90, noon)
		idle.LastActive = noon.Add(-6 * 60e9)
		players = append(players, idle)
		if got := fluxOf(t, r, players, rooms, noon, "me"); !near(got, w) {
			t.Errorf("%d lucid/uneasy companions: flux %v, want %v", n, got, w)
		}
	}
}

func TestCompanionPenalty(t *testing.T) {
	t.Parallel()
	r := flux.DefaultRules()
	rooms := roomsOf(envRoom("i", "indoors"))
	cases := []struct {
		name       string
		me         int
		companions []int
		want       float64
	}{
		{"one deranged", 50, []int{19}, -0.2},
		{"one catatonic", 50, []int{0}, -0.2},
		{"penalty once for three", 50, []int{1, -50, 5}, -0.2},
		{"fractured is neutral", 50, []int{20, 39}, 0},
		{"bonus and penalty", 50, []int{100, 40, 10}, 0}, // +0.2 − 0.2
		{"deranged alone has no penalty", 10, nil, 0},
		{"two deranged see each other", 10, []int{10}, -0.2},
		{"uneasy boundary counts", 0, []int{40, 69}, 0.2},
	}
	for _, c := range cases {
		players := []flux.Player{activePlayer("me", "i", c.me, noon)}
		for k, l := range c.companions {
			players = append(players, activePlayer(fmt.Sprint("c", k), "i", l, noon))
		}
		if got := fluxOf(t, r, players, rooms, noon, "me"); !near(got, c.want) {
			t.Errorf("%s: flux %v, want %v", c.name, got, c.want)
		}
	}
}

// Companion tiers are read as they stood at the start of the tick: a companion whose
// lucidity drops out of "uneasy" during the tick still gives the bonus in that tick.
func TestCompanionTiersAtStartOfTick(t *testing.T) {
	t.Parallel()
	rooms := roomsOf(envRoom("e", "eldritch"))
	// a: uneasy at 40 and about to fall to fractured; b evaluated after a.
	players := []flux.Player{activePlayer("a", "e", 40, noon), activePlayer("b", "e", 90, noon)}
	res := newEvaluator(t, flux.DefaultRules()).Evaluate(players, rooms, noon, flux.Ledger{})
	a, okA := changeFor(res, "a")
	b, okB := changeFor(res, "b")
	if !okA || !okB || a.NewTier != flux.TierFractured || !near(b.Companion, 0.1) || !near(a.Companion, 0.1) {
		t.Errorf("changes a=%+v b=%+v; want a to fall to fractured and both to keep a +0.1 companion bonus", a, b)
	}
}
