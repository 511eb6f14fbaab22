package flux_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

// closeWorld is a Runner over 50 active players whose writes fail at once (store.down)
// and whose ticks have left each player's write pending, in the blocking (Tick) or the
// non-blocking (Step) mode; tick is the tick they wait to store.
func closeWorld(t *testing.T, stepMode bool, cfg flux.RunnerConfig) (r *flux.Runner, store *downStore, live *flux.MemoryPlayers, tick int64) {
	t.Helper()
	const players = 50
	ctx := context.Background()
	start := time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)
	world := activeWorld(10, players, 41, start)
	rooms := cachedRooms(t)
	if err := world.PutRooms(ctx, rooms); err != nil {
		t.Fatal(err)
	}
	live = flux.NewMemoryPlayers(flux.DefaultRules())
	live.Put(world.Players...)
	store = &downStore{PlayerStore: live}
	r, err := flux.NewRunner(store, rooms, cfg)
	if err != nil {
		t.Fatal(err)
	}
	store.down.Store(true)
	if !stepMode {
		if rep, err := r.Tick(ctx, start); !errors.Is(err, flux.ErrApplyFailed) || rep.PendingPlayers != players {
			t.Fatalf("tick with the writes failing: %v, %d pending", err, rep.PendingPlayers)
		}
		return r, store, live, flux.TickNumber(start, time.Minute)
	}
	if err := r.Start(start); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)
	if _, err := r.Step(start); err != nil {
		t.Fatal(err)
	}
	if err := syncRunner(t, r); !errors.Is(err, flux.ErrApplyFailed) {
		t.Fatalf("sync with the writes failing: %v", err)
	}
	return r, store, live, flux.TickNumber(start, time.Minute)
}

// TestCloseRetriesFlush: in both modes, Close's final flush fails at once (the database
// refuses the write) and the database answers again a second later: Close keeps trying
// within CloseTimeout, returns nil, and every player's write is stored.
func TestCloseRetriesFlush(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"tick", "step"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			r, store, live, tick := closeWorld(t, mode == "step", flux.RunnerConfig{CloseTimeout: 20 * time.Second})
			before := store.applies.Load()
			var back sync.WaitGroup
			back.Go(func() { time.Sleep(time.Second); store.down.Store(false) })
			err := r.Close()
			back.Wait()
			if err != nil {
				t.Fatalf("Close with the database back a second into it: %v", err)
			}
			if n := store.applies.Load() - before; n < 2 {
				t.Fatalf("Close sent %d applies, want a retry", n)
			}
			for _, p := range live.Snapshot() {
				if p.Flux.Tick != tick {
					t.Fatalf("player %s stored at tick %d, want %d: its write was lost", p.ID, p.Flux.Tick, tick)
				}
			}
		})
	}
}

// TestCloseTinyTimeoutCountsPlayers: with CloseTimeout 1 ns and the writes failing, Close
// returns ErrFlushIncomplete saying how many players' writes are left, every time, in both
// modes.
func TestCloseTinyTimeoutCountsPlayers(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"tick", "step"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			for run := range 20 {
				r, _, _, _ := closeWorld(t, mode == "step", flux.RunnerConfig{CloseTimeout: time.Nanosecond})
				err := r.Close()
				if !errors.Is(err, flux.ErrFlushIncomplete) || !strings.Contains(err.Error(), "50 players") {
					t.Fatalf("run %d: Close: %v, want ErrFlushIncomplete with \"50 players\"", run, err)
				}
			}
		})
	}
}
