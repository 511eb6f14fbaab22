package flux_test

import (
	"slices"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

func TestIsActive(t *testing.T) {
	t.Parallel()
	r := flux.DefaultRules()
	long := noon.Add(-48 * time.Hour)
	cases := []struct {
		name               string
		lastActive, create time.Time
		want               bool
	}{
		{"active now", noon, long, true},
		{"active exactly 5 minutes ago", noon.Add(-5 * time.Minute), long, true},
		{"idle 5 minutes and 1ns", noon.Add(-5*time.Minute - 1), long, false},
		{"idle an hour", noon.Add(-time.Hour), long, false},
		{"last active in the future", noon.Add(time.Minute), long, true},
		{"created 59 minutes ago", long, noon.Add(-59 * time.Minute), true},
		{"created exactly an hour ago", long, noon.Add(-time.Hour), true},
		{"created an hour and 1ns ago", long, noon.Add(-time.Hour - 1), false},
		{"zero times", time.Time{}, time.Time{}, false},
	}
	for _, c := range cases {
		p := flux.Player{ID: "p", RoomID: "r", LastActive: c.lastActive, CreatedAt: c.create}
		if got := r.IsActive(p, noon); got != c.want {
			t.Errorf("%s: IsActive = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestActiveRoomIDs(t *testing.T) {
	t.Parallel()
	r := flux.DefaultRules()
	idle := activePlayer("x", "r-idle", 50, noon)
	idle.LastActive = noon.Add(-time.Hour)
	players := []flux.Player{
		activePlayer("a", "r2", 50, noon), idle, activePlayer("b", "r1", 50, noon),
		activePlayer("c", "r2", 50, noon), activePlayer("d", "r3", 50, noon),
	}
	dst := []string{"keep"}
	got := flux.ActiveRoomIDs(r, players, noon, dst)
	if want := []string{"keep", "r2", "r1", "r3"}; !slices.Equal(got, want) {
		t.Errorf("ActiveRoomIDs = %v, want %v", got, want)
	}
}

func TestEvaluateCounts(t *testing.T) {
	t.Parallel()
	idle := activePlayer("idle", "g", 50, noon)
	idle.LastActive = noon.Add(-time.Hour)
	players := []flux.Player{
		activePlayer("a", "e", 50, noon),     // evaluated, changes (−1.2)
		activePlayer("b", "s", 50, noon),     // evaluated, no change (+0.6)
		activePlayer("c", "gone", 50, noon),  // skipped: room missing
		activePlayer("d", "gone", 50, noon),  // skipped: room missing
		activePlayer("e", "gone2", 50, noon), // skipped: another missing room
		idle,                                 // inactive
	}
	rooms := roomsOf(envRoom("e", "eldritch"), envRoom("s", "sanctuary"), envRoom("g", "graveyard"))
	ledger := flux.Ledger{}
	res := newEvaluator(t, flux.DefaultRules()).Evaluate(players, rooms, noon, ledger)
	want := flux.Counts{Seen: 6, Active: 5, Evaluated: 2, Changed: 1, RoomsNeeded: 4, RoomsMissing: 2, SkippedMissingRoom: 3}
	if res.Counts != want {
		t.Errorf("Counts = %+v, want %+v", res.Counts, want)
	}
	if len(res.Changes) != 1 || res.Changes[0].PlayerID != "a" || res.Changes[0].NewLucidity != 49 {
		t.Errorf("Changes = %+v, want a: 50 → 49", res.Changes)
	}
	if len(ledger) != 2 {
		t.Errorf("ledger has %d entries, want the 2 evaluated players: %v", len(ledger), ledger)
	}
}
