package flux_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// TestScopedLoadAndTick, on both stores: a Runner with a Scope loads the players its server
// hosts and, as companions only, the players of other servers in the same rooms; it writes
// only its own; a player moved to it by a presence write is its own from the next tick,
// with the carry-over the other server left.
func TestScopedLoadAndTick(t *testing.T) {
	t.Parallel()
	old := rtNight.Add(-48 * time.Hour)
	p := func(id, room, scope string) flux.Player {
		return flux.Player{ID: id, RoomID: room, Lucidity: 100, LastActive: rtNight, CreatedAt: old, Scope: scope}
	}
	players := []flux.Player{p("a", "eld", "s1"), p("b", "eld", "s2"), p("c", "grave", "s2")}
	stores := map[string]func(t *testing.T) (flux.PlayerStore, flux.PresenceUpdater){
		"memory": func(t *testing.T) (flux.PlayerStore, flux.PresenceUpdater) {
			m := flux.NewMemoryPlayers(flux.DefaultRules())
			m.Put(players...)
			return m, m
		},
		"postgres": func(t *testing.T) (flux.PlayerStore, flux.PresenceUpdater) {
			pool, _ := testdb.NewPool(t)
			s := postgresPlayers(t, pool, flux.PostgresConfig{ScopeColumn: "server"})
			if _, err := pool.Exec(context.Background(), `ALTER TABLE flux_players ADD COLUMN server text`); err != nil {
				t.Fatal(err)
			}
			insertPlayers(t, pool, players...)
			for _, pl := range players {
				if _, err := pool.Exec(context.Background(), `UPDATE flux_players SET server = $2 WHERE id = $1`, pl.ID, pl.Scope); err != nil {
					t.Fatal(err)
				}
			}
			return s, s
		},
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store, presence := mk(t)
			loaded, err := store.LoadActive(ctx, flux.ActiveQuery{Now: rtNight, ActiveWithin: time.Hour, Scope: "s1"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, pl := range loaded {
				ids = append(ids, pl.ID+"@"+pl.Scope)
			}
			if !slices.Equal(ids, []string{"a@s1", "b@s2"}) {
				t.Fatalf("scope s1 loaded %v, want a (its own) and b (a companion in the same room)", ids)
			}
			s1 := newRunner(t, store, memoryRooms(t, scenarioRooms()...), flux.RunnerConfig{Scope: "s1"})
			s2 := newRunner(t, store, memoryRooms(t, scenarioRooms()...), flux.RunnerConfig{Scope: "s2"})
			rep, err := s1.Tick(ctx, rtNight)
			if err != nil {
				t.Fatal(err)
			}
			// a: eldritch −1.5 with a lucid companion +0.1 → −1.
			if rep.Applied.Written != 1 || len(rep.Changes) != 1 || rep.Changes[0].PlayerID != "a" {
				t.Fatalf("s1 wrote %+v, changes %+v; want a alone", rep.Applied, rep.Changes)
			}
			if _, err := s2.Tick(ctx, rtNight); err != nil {
				t.Fatal(err)
			}
			// b moves to s1 (same room): s1 ticks it next, continuing from s2's carry-over.
			if _, err := presence.UpdatePresence(ctx, []flux.Presence{{PlayerID: "b", RoomID: "eld", LastActive: rtNight, Scope: "s1"}}); err != nil {
				t.Fatal(err)
			}
			rep, err = s1.Tick(ctx, rtNight.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Applied.Written != 2 {
				t.Fatalf("s1 after the move wrote %+v, want a and b", rep.Applied)
			}
			if rep, err = s2.Tick(ctx, rtNight.Add(time.Minute)); err != nil || rep.Applied.Written != 1 {
				t.Fatalf("s2 after the move: %+v %v; want c alone", rep.Applied, err)
			}
			final, err := store.LoadActive(ctx, flux.ActiveQuery{Now: rtNight, ActiveWithin: time.Hour}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, pl := range final {
				// Two ticks each: a and b −1.4 twice → 98 with −0.8 carried; c −0.8 twice → 99.
				want := map[string]int{"a": 98, "b": 98, "c": 99}[pl.ID]
				if pl.Lucidity != want || pl.Flux.Tick != flux.TickNumber(rtNight.Add(time.Minute), time.Minute) || pl.Flux.Carry.Evaluations != 2 {
					t.Errorf("player %s: %d %+v, want %d after two ticks", pl.ID, pl.Lucidity, pl.Flux, want)
				}
			}
		})
	}
}

// TestRunnerStopCancelsSlowLoad: Stop during a tick stuck in a slow load returns at once
// (the load is cancelled) and still flushes what earlier ticks left pending.
func TestRunnerStopCancelsSlowLoad(t *testing.T) {
	t.Parallel()
	b := memoryBackend(t, scenarioPlayers()...)
	store := &flakyStore{PlayerStore: b.store}
	store.setFailApply(1)
	r := newRunner(t, store, memoryRooms(t, scenarioRooms()...), flux.RunnerConfig{})
	ctx := context.Background()
	if _, err := r.Tick(ctx, rtNight); !errors.Is(err, flux.ErrApplyFailed) {
		t.Fatalf("tick: %v", err)
	}
	store.setLoadDelay(time.Hour)
	loads := store.loadCount()
	ticked := make(chan error, 1)
	go func() {
		_, err := r.Tick(ctx, rtNight.Add(time.Minute))
		ticked <- err
	}()
	for store.loadCount() == loads {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Stop waited %v for the slow load", d)
	}
	if err := <-ticked; !errors.Is(err, context.Canceled) {
		t.Fatalf("the stuck tick: %v", err)
	}
	checkLucidity(t, b.lucidity(), scenarioExpect[0])
}
