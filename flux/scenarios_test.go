package flux_test

import (
	"testing"

	"github.com/gamepersist/gamepersist/flux"
)

// FLUX.md: a lucid player alone in a graveyard room at night, 3 evaluations: −0.8 each;
// changes 0, −1 (residual −0.6), −1 (residual −0.4); −2 in total.
func TestScenarioLucidAloneInGraveyardAtNight(t *testing.T) {
	t.Parallel()
	ev := newEvaluator(t, flux.DefaultRules())
	rooms := roomsOf(envRoom("g1", "graveyard"))
	players := []flux.Player{activePlayer("p", "g1", 100, night)}
	ledger := flux.Ledger{}
	wantChange := []int{0, -1, -1}
	wantResidual := []float64{-0.8, -0.6, -0.4}
	for i := range 3 {
		res := ev.Evaluate(players, rooms, night, ledger)
		got := 0
		if c, ok := changeFor(res, "p"); ok {
			got = c.NewLucidity - c.OldLucidity
			if !near(c.Flux, -0.8) || !near(c.Base, -0.8) || c.Companion != 0 || c.Adaptation != 1 {
				t.Errorf("evaluation %d: change parts %+v, want base −0.8, no companion, adaptation 1", i+1, c)
			}
		}
		if got != wantChange[i] {
			t.Errorf("evaluation %d: change %d, want %d", i+1, got, wantChange[i])
		}
		if r := ledger["p"].Residual; !near(r, wantResidual[i]) {
			t.Errorf("evaluation %d: residual %v, want %v", i+1, r, wantResidual[i])
		}
		applyChanges(players, res)
	}
	if players[0].Lucidity != 98 {
		t.Errorf("lucidity after 3 evaluations %d, want 98", players[0].Lucidity)
	}
}

// FLUX.md: the same player's 11th evaluation in the same room has flux −0.6.
func TestScenarioEleventhEvaluationInSameRoom(t *testing.T) {
	t.Parallel()
	ev := newEvaluator(t, flux.DefaultRules())
	rooms := roomsOf(envRoom("g1", "graveyard"))
	players := []flux.Player{activePlayer("p", "g1", 100, night)}
	ledger := flux.Ledger{}
	for i := range 11 {
		before := ledger["p"].Residual
		res := ev.Evaluate(players, rooms, night, ledger)
		step := 0
		if c, ok := changeFor(res, "p"); ok {
			step = c.NewLucidity - c.OldLucidity
		}
		got := ledger["p"].Residual + float64(step) - before
		want := -0.8
		if i == 10 {
			want = -0.6
		}
		if !near(got, want) {
			t.Errorf("evaluation %d: flux %v, want %v", i+1, got, want)
		}
		applyChanges(players, res)
	}
	// 10·(−0.8) + (−0.6) = −8.6: 8 points applied, −0.6 carried.
	if players[0].Lucidity != 92 || !near(ledger["p"].Residual, -0.6) || ledger["p"].Evaluations != 11 {
		t.Errorf("after 11 evaluations: lucidity %d, carry %+v; want 92, residual −0.6, 11 evaluations",
			players[0].Lucidity, ledger["p"])
	}

	// The same 11th evaluation reported in a Change: residual −0.5 + (−0.6) = −1.1.
	ledger = flux.Ledger{"q": {Residual: -0.5, RoomID: "g1", Evaluations: 10}}
	res := newEvaluator(t, flux.DefaultRules()).Evaluate(
		[]flux.Player{activePlayer("q", "g1", 50, night)}, rooms, night, ledger)
	c, ok := changeFor(res, "q")
	if !ok || !near(c.Flux, -0.6) || c.Adaptation != 0.75 || c.NewLucidity != 49 || !near(ledger["q"].Residual, -0.1) {
		t.Errorf("11th evaluation change %+v (found %v), carry %+v; want flux −0.6, adaptation 0.75, 50→49, residual −0.1",
			c, ok, ledger["q"])
	}
}

// FLUX.md: two lucid companions in an eldritch room by day: −1.2 + 0.2 = −1.0.
func TestScenarioTwoLucidCompanionsInEldritchByDay(t *testing.T) {
	t.Parallel()
	rooms := roomsOf(envRoom("e1", "eldritch"))
	players := []flux.Player{
		activePlayer("a", "e1", 90, noon), activePlayer("b", "e1", 80, noon), activePlayer("c", "e1", 75, noon),
	}
	ledger := flux.Ledger{}
	res := newEvaluator(t, flux.DefaultRules()).Evaluate(players, rooms, noon, ledger)
	if len(res.Changes) != 3 {
		t.Fatalf("%d changes, want 3: %+v", len(res.Changes), res.Changes)
	}
	for i, c := range res.Changes {
		if c.PlayerID != players[i].ID || !near(c.Base, -1.2) || !near(c.Companion, 0.2) || !near(c.Flux, -1.0) ||
			c.NewLucidity != players[i].Lucidity-1 || c.OldTier != flux.TierLucid {
			t.Errorf("change %d: %+v; want player %s, base −1.2, companion +0.2, flux −1.0, −1 point",
				i, c, players[i].ID)
		}
		if r := ledger[c.PlayerID].Residual; !near(r, 0) {
			t.Errorf("player %s residual %v, want 0", c.PlayerID, r)
		}
	}
}

// FLUX.md: a deranged companion in a camp room at night: +0.2 − 0.2 = 0, plus +0.1 for
// each other lucid companion.
func TestScenarioDerangedCompanionInCampAtNight(t *testing.T) {
	t.Parallel()
	r := flux.DefaultRules()
	rooms := roomsOf(envRoom("c1", "camp"))
	lucid := activePlayer("lucid", "c1", 80, night)
	deranged := activePlayer("deranged", "c1", 10, night)
	if got := fluxOf(t, r, []flux.Player{lucid, deranged}, rooms, night, "lucid"); !near(got, 0) {
		t.Errorf("lucid player with a deranged companion: flux %v, want 0", got)
	}
	other := activePlayer("other", "c1", 72, night)
	if got := fluxOf(t, r, []flux.Player{lucid, deranged, other}, rooms, night, "lucid"); !near(got, 0.1) {
		t.Errorf("plus one other lucid companion: flux %v, want 0.1", got)
	}
	// The deranged player has two lucid companions and no impaired one: 0.2 + 0.2.
	if got := fluxOf(t, r, []flux.Player{lucid, deranged, other}, rooms, night, "deranged"); !near(got, 0.4) {
		t.Errorf("the deranged player itself: flux %v, want 0.4", got)
	}
}

// FLUX.md: lucidity 100 in a sanctuary by day: the change is computed and subtracted from
// the residual as usual, the clamp turns it into 0, nothing is written.
func TestScenarioLucidity100InSanctuaryByDay(t *testing.T) {
	t.Parallel()
	rooms := roomsOf(envRoom("s1", "sanctuary"))
	ledger := flux.Ledger{"p": {Residual: 0.5, RoomID: "s1", Evaluations: 3}}
	res := newEvaluator(t, flux.DefaultRules()).Evaluate(
		[]flux.Player{activePlayer("p", "s1", 100, noon)}, rooms, noon, ledger)
	if len(res.Changes) != 0 || res.Counts.Changed != 0 || res.Counts.Evaluated != 1 {
		t.Errorf("result %+v; want one evaluation and no change", res)
	}
	// 0.5 + 0.6 = 1.1 → one point computed and subtracted → 0.1 carried.
	if c := ledger["p"]; !near(c.Residual, 0.1) || c.Evaluations != 4 {
		t.Errorf("carry %+v, want residual 0.1 after 4 evaluations", c)
	}
}

// FLUX.md: lucidity −99 with residual −0.9 in eldritch at night: residual −2.4, change −2,
// clamped to −100, so the applied change is −1.
func TestScenarioClampAtMinus100(t *testing.T) {
	t.Parallel()
	rooms := roomsOf(envRoom("e1", "eldritch"))
	ledger := flux.Ledger{"p": {Residual: -0.9, RoomID: "e1", Evaluations: 1}}
	res := newEvaluator(t, flux.DefaultRules()).Evaluate(
		[]flux.Player{activePlayer("p", "e1", -99, night)}, rooms, night, ledger)
	c, ok := changeFor(res, "p")
	if !ok || c.OldLucidity != -99 || c.NewLucidity != -100 || !near(c.Flux, -1.5) ||
		c.OldTier != flux.TierCatatonic || c.NewTier != flux.TierCatatonic {
		t.Fatalf("change %+v (found %v); want −99 → −100 with flux −1.5", c, ok)
	}
	if r := ledger["p"].Residual; !near(r, -0.4) {
		t.Errorf("residual %v, want −0.4 (−2.4 less the computed −2)", r)
	}
}
