package flux_test

import (
	"math"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

func TestLedgerPruneAndClone(t *testing.T) {
	t.Parallel()
	l := flux.Ledger{"a": {Residual: 0.5}, "b": {Residual: -0.5}, "c": {}}
	c := l.Clone()
	if n := l.Prune(func(id string) bool { return id != "b" }); n != 1 {
		t.Errorf("Prune deleted %d, want 1", n)
	}
	if _, ok := l["b"]; ok || len(l) != 2 {
		t.Errorf("after Prune: %v", l)
	}
	if len(c) != 3 || c["b"].Residual != -0.5 {
		t.Errorf("Clone shares state with the original: %v", c)
	}
	if flux.Ledger(nil).Clone() != nil {
		t.Error("Clone of nil ledger is not nil")
	}
}

// Players who are not evaluated keep their ledger entries untouched, and resume from them.
func TestEvaluateKeepsCarryOfUnevaluatedPlayers(t *testing.T) {
	t.Parallel()
	ev := newEvaluator(t, flux.DefaultRules())
	rooms := roomsOf(envRoom("g", "graveyard"))
	p := activePlayer("p", "g", 80, night)
	ledger := flux.Ledger{"p": {Residual: -0.5, RoomID: "g", Evaluations: 10}, "ghost": {Residual: 0.3}}
	idle := p
	idle.LastActive = night.Add(-time.Hour)
	ev.Evaluate([]flux.Player{idle}, rooms, night, ledger)
	if ledger["p"] != (flux.Carry{Residual: -0.5, RoomID: "g", Evaluations: 10}) || ledger["ghost"].Residual != 0.3 {
		t.Fatalf("an unevaluated player's carry changed: %v", ledger)
	}
	res := ev.Evaluate([]flux.Player{p}, rooms, night, ledger)
	if c := ledger["p"]; c.Evaluations != 11 || !near(c.Residual, -0.1) || len(res.Changes) != 1 {
		t.Errorf("resumed carry %+v, changes %+v; want 11th evaluation at 75%%: −0.5−0.6 → −1 and −0.1", c, res.Changes)
	}
}

func TestEvaluateNilLedgerAndBadResidual(t *testing.T) {
	t.Parallel()
	ev := newEvaluator(t, flux.DefaultRules())
	rooms := roomsOf(envRoom("e", "eldritch"))
	players := []flux.Player{activePlayer("p", "e", 50, night)}
	for range 3 { // nothing is remembered: −1.5 from zero each time → −1
		res := ev.Evaluate(players, rooms, night, nil)
		if len(res.Changes) != 1 || res.Changes[0].NewLucidity != 49 {
			t.Fatalf("nil ledger: %+v, want 50 → 49", res.Changes)
		}
	}
	ledger := flux.Ledger{"p": {Residual: math.NaN(), RoomID: "e", Evaluations: 1}}
	ev.Evaluate(players, rooms, night, ledger)
	if r := ledger["p"].Residual; !near(r, -0.5) {
		t.Errorf("NaN residual: now %v, want it treated as 0 (−1.5 → −1, −0.5 carried)", r)
	}
}

// Result.Changes is reused by the next call, as documented.
func TestChangesAreReusedByNextEvaluate(t *testing.T) {
	t.Parallel()
	ev := newEvaluator(t, flux.DefaultRules())
	rooms := roomsOf(envRoom("e", "eldritch"))
	first := ev.Evaluate([]flux.Player{activePlayer("a", "e", 50, night)}, rooms, night, flux.Ledger{})
	kept := first.Changes[0]
	second := ev.Evaluate([]flux.Player{activePlayer("b", "e", 60, night)}, rooms, night, flux.Ledger{})
	if kept.PlayerID != "a" || second.Changes[0].PlayerID != "b" || &first.Changes[0] != &second.Changes[0] {
		t.Errorf("kept %+v, second %+v: want a copy of the first change to survive and the slice reused", kept, second.Changes)
	}
}
