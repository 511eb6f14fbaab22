package flux_test

import (
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

// BenchmarkEvaluate is the pure part of the architecture page's (docs/ARCHITECTURE.md) W1: one tick of 10,000 active players
// over 2,000 rooms with FLUX.md's environment mix (plus sanitarium rooms and a world
// override), warm evaluator and ledger. Reports ns/player and changes/tick; allocs/op is
// the whole tick's allocations (0 in steady state).
func BenchmarkEvaluate(b *testing.B) {
	const nPlayers, nRooms = 10_000, 2_000
	w := genWorld(42, nRooms, nPlayers, 0, night)
	rooms := w.roomMap()
	ev := newEvaluator(b, worldRules())
	ledger := flux.Ledger{}
	for range 3 { // warm the scratch space and the ledger
		ev.Evaluate(w.players, rooms, night, ledger)
	}
	changes := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res := ev.Evaluate(w.players, rooms, night, ledger)
		if res.Counts.Evaluated != nPlayers {
			b.Fatalf("evaluated %d players, want %d", res.Counts.Evaluated, nPlayers)
		}
		changes += res.Counts.Changed
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*nPlayers), "ns/player")
	b.ReportMetric(float64(changes)/float64(b.N), "changes/tick")
}

// BenchmarkEvaluateCold is the same tick with a new Evaluator and an empty ledger each
// time: the first tick after start, for comparison with the steady state.
func BenchmarkEvaluateCold(b *testing.B) {
	const nPlayers, nRooms = 10_000, 2_000
	w := genWorld(42, nRooms, nPlayers, 0, night)
	rooms := w.roomMap()
	rules := worldRules()
	b.ReportAllocs()
	for b.Loop() {
		ev := newEvaluator(b, rules)
		ev.Evaluate(w.players, rooms, night, flux.Ledger{})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*nPlayers), "ns/player")
}

// BenchmarkActiveRoomIDs measures collecting the room ids for the tick's GetRooms call.
func BenchmarkActiveRoomIDs(b *testing.B) {
	w := genWorld(42, 2_000, 10_000, 0, night)
	rules := flux.DefaultRules()
	var ids []string
	b.ReportAllocs()
	for b.Loop() {
		ids = flux.ActiveRoomIDs(rules, w.players, night, ids[:0])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(w.players)), "ns/player")
}

// A steady-state tick makes no allocation at all: the evaluator's scratch and the ledger
// are reused. (Counting allocations is deterministic, unlike timing.)
func TestEvaluateSteadyStateDoesNotAllocate(t *testing.T) {
	w := genWorld(3, 200, 1_000, 0.1, night)
	rooms := w.roomMap()
	ev := newEvaluator(t, worldRules())
	ledger := flux.Ledger{}
	ev.Evaluate(w.players, rooms, night, ledger)
	now := night
	allocs := testing.AllocsPerRun(20, func() {
		now = now.Add(time.Minute)
		ev.Evaluate(w.players, rooms, now, ledger)
	})
	if allocs != 0 {
		t.Errorf("a steady-state tick of %d players allocates %v times", len(w.players), allocs)
	}
}
