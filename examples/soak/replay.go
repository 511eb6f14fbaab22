package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/roomstore"
)

// replay runs the same seeded inputs for minutes 0 … minutes-1 with no fault and one
// Runner in the blocking mode over the in-memory stores (flux.MemoryPlayers,
// roomstore.MemoryStore), regenerating the schedule from the seed, and returns every
// player's expected final state.
func replay(ctx context.Context, cfg Config, minutes int) (map[string]flux.PlayerState, error) {
	players := cfg.Servers * cfg.PlayersPerServer
	world := newWorld(cfg)
	store := flux.NewMemoryPlayers(flux.DefaultRules())
	store.Put(world.Players...)
	rooms := roomstore.NewMemoryStore()
	if err := world.PutRooms(ctx, rooms); err != nil {
		return nil, fmt.Errorf("soak: replay rooms: %w", err)
	}
	runner, err := flux.NewRunner(store, rooms, flux.RunnerConfig{RunnerID: "replay"})
	if err != nil {
		return nil, fmt.Errorf("soak: replay runner: %w", err)
	}
	sched := newSchedule(cfg.Seed, cfg.Servers, world, true)
	for k := range minutes {
		in := sched.nextMinute()
		if _, err := store.UpdatePresence(ctx, in.Presence); err != nil {
			return nil, errors.Join(fmt.Errorf("soak: replay presence: %w", err), runner.Close())
		}
		for _, room := range in.Rooms {
			if err := rooms.PutRoom(ctx, room); err != nil {
				return nil, errors.Join(fmt.Errorf("soak: replay room: %w", err), runner.Close())
			}
		}
		if _, err := runner.Tick(ctx, in.Now); err != nil {
			return nil, errors.Join(fmt.Errorf("soak: replay minute %d: %w", k, err), runner.Close())
		}
	}
	if err := runner.Close(); err != nil {
		return nil, fmt.Errorf("soak: replay close: %w", err)
	}
	out := make(map[string]flux.PlayerState, players)
	for _, p := range store.Snapshot() {
		out[p.ID] = p
	}
	return out, nil
}

// testSchedule builds the schedule a run with cfg and seed would follow (tests).
func testSchedule(cfg Config, seed uint64) *schedule {
	cfg.Seed = seed
	return newSchedule(seed, cfg.Servers, newWorld(cfg), false)
}
