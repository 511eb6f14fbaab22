package flux_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/workload/worldgen"
	"github.com/gamepersist/gamepersist/roomstore"
)

// getRoomsOnly wraps a RoomStore, hiding every optional method (VisitRooms included), and
// counts GetRooms calls.
type getRoomsOnly struct {
	roomstore.RoomStore
	gets atomic.Int64
}

func (s *getRoomsOnly) GetRooms(ctx context.Context, ids []string) (map[string]roomstore.Room, error) {
	s.gets.Add(1)
	return s.RoomStore.GetRooms(ctx, ids)
}

// visiting wraps a RoomStore that implements RoomVisitor, counting GetRooms and VisitRooms
// calls.
type visiting struct {
	getRoomsOnly
	visits atomic.Int64
}

func (s *visiting) VisitRooms(ctx context.Context, ids []string, fn func(roomstore.Room)) error {
	s.visits.Add(1)
	return s.RoomStore.(roomstore.RoomVisitor).VisitRooms(ctx, ids, fn)
}

// TestRunnerSameResultWithOrWithoutVisitRooms runs two Runners tick by tick over the same
// wandering world — one whose RoomStore offers VisitRooms, one whose RoomStore hides it
// (so the Runner falls back to GetRooms) — and checks that every tick reports the same
// counts and the same changes, reads rooms once through the path it should, and that both
// player stores end equal. The world has missing rooms and players with invalid room ids.
func TestRunnerSameResultWithOrWithoutVisitRooms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := rtNight
	w := worldgen.New(worldgen.Config{Rooms: 200, Players: 800, Seed: 7, Now: now})
	w.Players[0].RoomID = ""        // invalid: never read
	w.Players[1].RoomID = "bad\x00" // invalid: never read
	w.Players[2].RoomID = "no-room" // valid, absent
	mem := memoryRooms(t)
	for i, r := range w.Rooms {
		if i%10 == 3 {
			continue // missing rooms
		}
		if err := mem.PutRoom(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	cached, err := roomstore.NewCached(mem, roomstore.CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cached.Close() })

	rules := flux.DefaultRules()
	withVisit := &visiting{getRoomsOnly: getRoomsOnly{RoomStore: cached}}
	withoutVisit := &getRoomsOnly{RoomStore: cached}
	if _, ok := roomstore.RoomStore(withoutVisit).(roomstore.RoomVisitor); ok {
		t.Fatal("the wrapper does not hide VisitRooms")
	}
	playersV, playersG := flux.NewMemoryPlayers(rules), flux.NewMemoryPlayers(rules)
	playersV.Put(w.Players...)
	playersG.Put(w.Players...)
	runV := newRunner(t, playersV, withVisit, flux.RunnerConfig{Rules: &rules})
	runG := newRunner(t, playersG, withoutVisit, flux.RunnerConfig{Rules: &rules})

	rng := worldgen.NewRand(11)
	var moved []int
	const ticks = 40
	changes, missing := 0, 0
	for tick := range ticks {
		repV, errV := runV.Tick(ctx, now)
		repG, errG := runG.Tick(ctx, now)
		if errV != nil || errG != nil {
			t.Fatalf("tick %d: errors %v / %v", tick, errV, errG)
		}
		if repV.Counts != repG.Counts || repV.InvalidRoomIDs != repG.InvalidRoomIDs {
			t.Fatalf("tick %d: counts %+v (invalid %d) with VisitRooms, %+v (invalid %d) without",
				tick, repV.Counts, repV.InvalidRoomIDs, repG.Counts, repG.InvalidRoomIDs)
		}
		if !slices.Equal(repV.Changes, repG.Changes) {
			t.Fatalf("tick %d: %d changes with VisitRooms, %d without, or different ones",
				tick, len(repV.Changes), len(repG.Changes))
		}
		if repV.RoomReads != 1 || repG.RoomReads != 1 || repV.Statements != repG.Statements {
			t.Fatalf("tick %d: room reads %d / %d, statements %d / %d",
				tick, repV.RoomReads, repG.RoomReads, repV.Statements, repG.Statements)
		}
		if repV.InvalidRoomIDs != 2 {
			t.Fatalf("tick %d: %d invalid room ids, want 2", tick, repV.InvalidRoomIDs)
		}
		changes += len(repV.Changes)
		missing += repV.Counts.RoomsMissing
		now = now.Add(time.Minute)
		moved = w.Wander(rng, now, 0.2, 0.3, moved)
		for _, i := range moved {
			p := w.Players[i]
			if err := playersV.Touch(p.ID, p.RoomID, p.LastActive); err != nil {
				t.Fatal(err)
			}
			if err := playersG.Touch(p.ID, p.RoomID, p.LastActive); err != nil {
				t.Fatal(err)
			}
		}
	}
	if changes == 0 || missing == 0 {
		t.Fatalf("the run proves little: %d changes, %d missing rooms over %d ticks", changes, missing, ticks)
	}
	if v, g := withVisit.visits.Load(), withVisit.gets.Load(); v != ticks || g != 0 {
		t.Fatalf("runner over a RoomVisitor: %d VisitRooms and %d GetRooms calls, want %d and 0", v, g, ticks)
	}
	if g := withoutVisit.gets.Load(); g != ticks {
		t.Fatalf("runner over a plain RoomStore: %d GetRooms calls, want %d", g, ticks)
	}
	a, b := playersV.Snapshot(), playersG.Snapshot()
	for i := range a {
		a[i].Flux.Writer, b[i].Flux.Writer = 0, 0 // each Runner signs its own writes
	}
	if !slices.Equal(a, b) {
		t.Fatal("the player stores differ after the same ticks with and without VisitRooms")
	}
}

// TestRunnerRoomReadFailure: when reading the rooms fails, through VisitRooms or GetRooms,
// the tick reports the error (wrapping the store's), one room read, no evaluation and no
// apply, and the next tick over a working store evaluates normally.
func TestRunnerRoomReadFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rules := flux.DefaultRules()
	players := []flux.Player{
		{ID: "p1", RoomID: "yard", Lucidity: 50, LastActive: rtNight, CreatedAt: rtNight.Add(-time.Hour)},
	}
	for name, wrap := range map[string]func(roomstore.RoomStore) roomstore.RoomStore{
		"VisitRooms": func(s roomstore.RoomStore) roomstore.RoomStore {
			return &visiting{getRoomsOnly: getRoomsOnly{RoomStore: s}}
		},
		"GetRooms": func(s roomstore.RoomStore) roomstore.RoomStore { return &getRoomsOnly{RoomStore: s} },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			broken := cachedRooms(t, room("yard", "graveyard"))
			if err := broken.Close(); err != nil {
				t.Fatal(err)
			}
			mp := flux.NewMemoryPlayers(rules)
			mp.Put(players...)
			r := newRunner(t, mp, wrap(broken), flux.RunnerConfig{Rules: &rules})
			rep, err := r.Tick(ctx, rtNight)
			if !errors.Is(err, roomstore.ErrClosed) || rep.RoomReads != 1 || rep.Evaluated || rep.Statements != 1 {
				t.Fatalf("tick over a closed room store: %v, %d room reads, evaluated %v, %d statements",
					err, rep.RoomReads, rep.Evaluated, rep.Statements)
			}
			if s, _ := mp.Get("p1"); s.Lucidity != 50 {
				t.Fatalf("lucidity changed to %d by a failed tick", s.Lucidity)
			}
			working := newRunner(t, mp, wrap(cachedRooms(t, room("yard", "graveyard"))), flux.RunnerConfig{Rules: &rules})
			rep, err = working.Tick(ctx, rtNight)
			if err != nil || !rep.Evaluated || rep.Counts.Evaluated != 1 || rep.Counts.RoomsMissing != 0 {
				t.Fatalf("tick over a working room store: %v, %+v", err, rep.Counts)
			}
		})
	}
}
