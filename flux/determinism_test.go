package flux_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

// Two runs of the same ticks over the same world — one in a fixed order, one with the
// players shuffled, the rooms map rebuilt from a shuffled list and the ledger copied every
// tick — give identical changes, counts and ledgers, compared per player.
func TestEvaluateDeterministicWhateverTheOrder(t *testing.T) {
	t.Parallel()
	const ticks = 40
	w := genWorld(7, 60, 600, 0.1, night)
	missing := map[string]bool{w.rooms[4].ID: true, w.rooms[17].ID: true}
	rooms := w.roomMap()
	for id := range missing {
		delete(rooms, id)
	}
	rng := rand.New(rand.NewPCG(1, 2))

	evA := newEvaluator(t, worldRules())
	evB := newEvaluator(t, worldRules())
	playersA := append([]flux.Player(nil), w.players...)
	playersB := append([]flux.Player(nil), w.players...)
	ledgerA, ledgerB := flux.Ledger{}, flux.Ledger{}
	changedTotal := 0

	start := time.Date(2026, 3, 14, 17, 40, 0, 0, time.UTC) // day, then night from tick 20
	for tick := range ticks {
		now := start.Add(time.Duration(tick) * time.Minute)
		// The same moves in both runs, decided by position in the original order.
		move := func(ps []flux.Player, pos map[string]int) {
			for i := range ps {
				k := pos[ps[i].ID]
				ps[i].LastActive = now
				if (k*7+tick)%13 == 0 {
					ps[i].RoomID = w.rooms[(k+tick)%len(w.rooms)].ID
				}
				if (k+tick)%10 == 0 { // some players idle this tick
					ps[i].LastActive = now.Add(-time.Hour)
				}
			}
		}
		posA := make(map[string]int, len(w.players))
		for i, p := range w.players {
			posA[p.ID] = i
		}
		move(playersA, posA)
		rng.Shuffle(len(playersB), func(i, j int) { playersB[i], playersB[j] = playersB[j], playersB[i] })
		move(playersB, posA)

		shuffled := append([]flux.RoomInfo(nil), w.rooms...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		roomsB := make(map[string]flux.RoomInfo)
		for _, r := range shuffled {
			if !missing[r.ID] {
				roomsB[r.ID] = r
			}
		}
		ledgerB = ledgerB.Clone()

		resA := evA.Evaluate(playersA, rooms, now, ledgerA)
		byA := indexChanges(resA)
		countsA := resA.Counts
		applyChanges(playersA, resA)
		resB := evB.Evaluate(playersB, roomsB, now, ledgerB)

		if resB.Counts != countsA {
			t.Fatalf("tick %d: counts %+v vs %+v", tick, countsA, resB.Counts)
		}
		if len(resB.Changes) != len(byA) {
			t.Fatalf("tick %d: %d changes vs %d", tick, len(byA), len(resB.Changes))
		}
		// B's changes follow B's player order.
		next := 0
		for _, c := range resB.Changes {
			for playersB[next].ID != c.PlayerID {
				next++
			}
			if byA[c.PlayerID] != c {
				t.Fatalf("tick %d: player %s: %+v vs %+v", tick, c.PlayerID, byA[c.PlayerID], c)
			}
		}
		changedTotal += len(resB.Changes)
		applyChanges(playersB, resB)
		if len(ledgerA) != len(ledgerB) {
			t.Fatalf("tick %d: ledger sizes %d vs %d", tick, len(ledgerA), len(ledgerB))
		}
		for id, c := range ledgerA {
			if ledgerB[id] != c {
				t.Fatalf("tick %d: carry of %s: %+v vs %+v", tick, id, c, ledgerB[id])
			}
		}
	}
	if changedTotal < ticks*10 {
		t.Errorf("only %d changes in %d ticks: the world does not exercise the rules", changedTotal, ticks)
	}
}

func indexChanges(res flux.Result) map[string]flux.Change {
	m := make(map[string]flux.Change, len(res.Changes))
	for _, c := range res.Changes {
		m[c.PlayerID] = c
	}
	return m
}
