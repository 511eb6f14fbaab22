package flux_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

// TestAddLucidityVisibleToTheNextStep: a lucidity write the game makes through
// Runner.AddLucidity is in the very next Step's evaluation (not one Step later, as a
// write made in SQL is), is counted once when the background load that includes it
// replaces the in-memory state, and lands in the store exactly once — on both stores.
func TestAddLucidityVisibleToTheNextStep(t *testing.T) {
	t.Parallel()
	for name, mk := range backends(t, scenarioPlayers()...) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := mk(t)
			r := newRunner(t, b.store, cachedRooms(t, scenarioRooms()...), flux.RunnerConfig{})
			if err := r.Start(rtNight); err != nil {
				t.Fatal(err)
			}
			mustSync(t, r)
			eld := func(k int) flux.Change { return stepEld(t, r, k) } // eld-1 changes every tick (−1.4 a tick)
			c0 := eld(0)
			mustSync(t, r)
			got, err := r.AddLucidity(context.Background(), "eld-1", -20)
			if err != nil {
				t.Fatal(err)
			}
			if got != c0.NewLucidity-20 {
				t.Fatalf("AddLucidity returned %d, want %d", got, c0.NewLucidity-20)
			}
			c1 := eld(1) // from memory, the write overlaid
			if c1.OldLucidity != c0.NewLucidity-20 {
				t.Fatalf("the next Step evaluated eld-1 from %d, want %d (the game's −20 not seen)", c1.OldLucidity, c0.NewLucidity-20)
			}
			mustSync(t, r)
			c2 := eld(2) // from a load that includes the write: not added twice
			if c2.OldLucidity != c1.NewLucidity {
				t.Fatalf("after the load eld-1 is evaluated from %d, want %d", c2.OldLucidity, c1.NewLucidity)
			}
			mustSync(t, r)
			if got := b.lucidity()["eld-1"].Lucidity; got != c2.NewLucidity {
				t.Fatalf("stored eld-1 = %d, want %d", got, c2.NewLucidity)
			}
			if _, err := r.AddLucidity(context.Background(), "nobody", 1); !errors.Is(err, flux.ErrUnknownPlayer) {
				t.Fatalf("AddLucidity of an unknown player: %v", err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := r.AddLucidity(context.Background(), "eld-1", 1); !errors.Is(err, flux.ErrClosed) {
				t.Fatalf("AddLucidity after Close: %v", err)
			}
		})
	}
}

// TestAddLucidityConcurrentWithSteps: the game writes −1 thirty times from its own goroutine
// while Steps run and the worker loads. Every Step sees each write returned before it
// began and none twice; the store ends at the evaluated value, every write counted once.
// A write may be visible to a Step before its AddLucidity returns (the goroutine that made
// it has not run on yet), so a Step's upper bound is the writes begun by its end.
func TestAddLucidityConcurrentWithSteps(t *testing.T) {
	t.Parallel()
	b, _ := postgresBackend(t, scenarioPlayers()...)
	r := newRunner(t, b.store, cachedRooms(t, scenarioRooms()...), flux.RunnerConfig{})
	if err := r.Start(rtNight); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)
	const writes = 30
	var returned, begun atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for range writes {
			begun.Add(1)
			if _, err := r.AddLucidity(context.Background(), "eld-1", -1); err != nil {
				t.Error(err)
				return
			}
			returned.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	})
	prevNew, seenBefore := b.lucidity()["eld-1"].Lucidity, int64(0) // the state the first Step evaluates
	for k := 0; returned.Load() < writes || k < 5; k++ {
		before := returned.Load()
		rep, err := r.Step(rtNight.Add(time.Duration(k) * time.Minute))
		after := begun.Load()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rep.Changes {
			if c.PlayerID != "eld-1" {
				continue
			}
			game := int64(prevNew - c.OldLucidity)
			// writes seen since the last Step: at least those returned before this Step
			// began, at most those begun by the time it ended
			if game < before-seenBefore || game > after-seenBefore {
				t.Fatalf("step %d saw %d game writes, want between %d and %d", k, game, before-seenBefore, after-seenBefore)
			}
			seenBefore += game
			prevNew = c.NewLucidity
		}
		time.Sleep(3 * time.Millisecond)
	}
	wg.Wait()
	mustSync(t, r)
	if got := b.lucidity()["eld-1"].Lucidity; got != prevNew-int(writes-seenBefore) {
		t.Fatalf("stored eld-1 = %d, want %d (last evaluated %d, %d writes after it)", got, prevNew-int(writes-seenBefore), prevNew, writes-seenBefore)
	}
}

// slowLoads is MemoryPlayers whose loads take delay (set after construction).
type slowLoads struct {
	*flux.MemoryPlayers
	delay atomic.Int64
}

func (s *slowLoads) LoadActive(ctx context.Context, q flux.ActiveQuery, dst []flux.Player) ([]flux.Player, error) {
	time.Sleep(time.Duration(s.delay.Load()))
	return s.MemoryPlayers.LoadActive(ctx, q, dst)
}

// TestAddLucidityDuringABackgroundLoad: a game write made while the worker's load is in
// flight is counted exactly once by the Steps that follow — it waits for the load, so the
// load cannot include it half-known.
func TestAddLucidityDuringABackgroundLoad(t *testing.T) {
	t.Parallel()
	m := flux.NewMemoryPlayers(flux.DefaultRules())
	m.Put(scenarioPlayers()...)
	store := &slowLoads{MemoryPlayers: m}
	r := newRunner(t, store, cachedRooms(t, scenarioRooms()...), flux.RunnerConfig{})
	if err := r.Start(rtNight); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)
	eld := func(k int) flux.Change { return stepEld(t, r, k) }
	prev := eld(0)
	mustSync(t, r)
	store.delay.Store(int64(300 * time.Millisecond))
	for k := 1; k <= 2; k++ { // ticks 1–4: eld-1 is active and changes on each
		loads := r.Stats().BackgroundLoads
		c := eld(2*k - 1) // hands tick 2k−1's writes over: the worker writes them, then starts a slow load
		if c.OldLucidity != prev.NewLucidity {
			t.Fatalf("step %d evaluated eld-1 from %d, want %d", k, c.OldLucidity, prev.NewLucidity)
		}
		prev = c
		time.Sleep(50 * time.Millisecond) // the game writes while that load is in flight
		if _, err := r.AddLucidity(context.Background(), "eld-1", -5); err != nil {
			t.Fatal(err)
		}
		for r.Stats().BackgroundLoads == loads { // the slow load's state is ready; no other load runs
			time.Sleep(time.Millisecond)
		}
		c = eld(2 * k) // evaluates the slow load's state with the write overlaid, or included
		if c.OldLucidity != prev.NewLucidity-5 {
			t.Fatalf("step %d evaluated eld-1 from %d, want %d (the game's −5 counted %d times)",
				k, c.OldLucidity, prev.NewLucidity-5, (prev.NewLucidity-c.OldLucidity)/5)
		}
		prev = c
		mustSync(t, r)
	}
	store.delay.Store(0)
	mustSync(t, r)
	if s, _ := m.Get("eld-1"); s.Lucidity != prev.NewLucidity {
		t.Fatalf("stored eld-1 = %d, want %d", s.Lucidity, prev.NewLucidity)
	}
}

// stepEld Steps r at minute k of the night scenario and returns eld-1's change (eld-1
// changes every tick), failing t when the Step fails or has none.
func stepEld(t *testing.T, r *flux.Runner, k int) flux.Change {
	t.Helper()
	rep, err := r.Step(rtNight.Add(time.Duration(k) * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Changes {
		if c.PlayerID == "eld-1" {
			return c
		}
	}
	t.Fatalf("step %d: no change of eld-1", k)
	return flux.Change{}
}
