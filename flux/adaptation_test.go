package flux_test

import (
	"testing"

	"github.com/gamepersist/gamepersist/flux"
)

// stepFlux runs one evaluation of p from a zero residual (keeping the adaptation counter)
// and returns the flux and the carry after it.
func stepFlux(t *testing.T, ev *flux.Evaluator, p flux.Player, rooms map[string]flux.RoomInfo, ledger flux.Ledger, period int) (float64, flux.Carry) {
	t.Helper()
	c := ledger[p.ID]
	c.Residual = 0
	ledger[p.ID] = c
	at := night
	if period == 0 {
		at = noon
	}
	ev.Evaluate([]flux.Player{p}, rooms, at, ledger)
	return ledger[p.ID].Residual, ledger[p.ID]
}

func TestAdaptationSteps(t *testing.T) {
	t.Parallel()
	ev := newEvaluator(t, flux.DefaultRules())
	rooms := roomsOf(envRoom("g1", "graveyard"), envRoom("g2", "graveyard"), envRoom("s", "sanctuary"))
	ledger := flux.Ledger{}
	p := activePlayer("p", "g1", 80, night)
	for n := 1; n <= 25; n++ {
		want := -0.8 // 1st–10th: full drain
		switch {
		case n >= 21:
			want = -0.4 // 50 %
		case n >= 11:
			want = -0.6 // 75 %
		}
		got, c := stepFlux(t, ev, p, rooms, ledger, 1)
		if !near(got, want) || c.Evaluations != n || c.RoomID != "g1" {
			t.Errorf("evaluation %d: flux %v carry %+v; want flux %v, counter %d", n, got, c, want, n)
		}
	}
	// A move resets the counter to 1 and the drain to full.
	p.RoomID = "g2"
	if got, c := stepFlux(t, ev, p, rooms, ledger, 1); !near(got, -0.8) || c.Evaluations != 1 || c.RoomID != "g2" {
		t.Errorf("after moving: flux %v carry %+v; want −0.8, counter 1 in g2", got, c)
	}
	// Positive flux is never adapted.
	p.RoomID = "s"
	for n := 1; n <= 30; n++ {
		if got, _ := stepFlux(t, ev, p, rooms, ledger, 0); !near(got, 0.6) {
			t.Fatalf("sanctuary evaluation %d: flux %v, want 0.6", n, got)
		}
	}
}

func TestAdaptationFloor(t *testing.T) {
	t.Parallel()
	r := flux.DefaultRules()
	r.AdaptationPerStep = 0.4 // 1, 0.6, then max(0.5, 0.2) = 0.5
	ev := newEvaluator(t, r)
	rooms := roomsOf(envRoom("g", "graveyard"))
	for _, c := range []struct {
		before int
		want   float64
	}{{0, -0.8}, {9, -0.8}, {10, -0.48}, {20, -0.4}, {1000, -0.4}} {
		ledger := flux.Ledger{"p": {RoomID: "g", Evaluations: c.before}}
		got, _ := stepFlux(t, ev, activePlayer("p", "g", 80, night), rooms, ledger, 1)
		if !near(got, c.want) {
			t.Errorf("after %d evaluations: flux %v, want %v", c.before, got, c.want)
		}
	}
}
