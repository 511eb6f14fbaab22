// Package worldgen generates deterministic game worlds for tests, benchmarks and the
// example programs: rooms spread over planes, zones and sub-zones with the environment mix
// of FLUX.md and exits between them, players placed in them, and a seeded random walk of
// those players between ticks. The same Config always gives the same world.
package worldgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config says what to generate.
type Config struct {
	// Rooms and Players are the counts to generate.
	Rooms   int
	Players int
	// Seed seeds every random choice.
	Seed uint64
	// Now is the time players were last active at (each within the minute before it);
	// characters were created days before.
	Now time.Time
	// ZoneSize is the number of rooms per zone (default 50); sub-zones hold 10 rooms.
	ZoneSize int
}

// weighted is one choice of a weighted pick.
type weighted struct {
	name   string
	weight int
}

// environments is the environment mix: every kind FLUX.md lists, plus one it does not
// ("cavern", which falls to the default profile). Weights are percents.
var environments = []weighted{
	{"indoors", 18}, {"outdoors", 16}, {"street_paved", 12}, {"sanctuary", 3}, {"sun_sanctuary", 1},
	{"temple", 2}, {"safehouse", 2}, {"camp", 6}, {"graveyard", 7}, {"haunted", 5},
	{"eldritch", 5}, {"storm", 6}, {"forsaken", 6}, {"cavern", 11},
}

var planes = []weighted{{"material", 60}, {"ethereal", 25}, {"shadow", 15}}

var subZones = []string{"market", "crypts", "docks", "old_town", "wilds", "ruins", "chapel", "sanitarium"}

var directions = []string{"north", "south", "east", "west", "up", "down"}

func pick(rng *rand.Rand, choices []weighted) string {
	total := 0
	for _, c := range choices {
		total += c.weight
	}
	n := rng.IntN(total)
	for _, c := range choices {
		if n < c.weight {
			return c.name
		}
		n -= c.weight
	}
	return choices[len(choices)-1].name
}

// World is a generated world. Rooms and Players are plain slices the caller may read;
// Wander changes Players.
type World struct {
	Rooms   []roomstore.Room
	Players []flux.Player
	byID    map[string]int
}

// RoomID returns the id of the i-th generated room.
func RoomID(i int) string { return "room-" + strconv.Itoa(i) }

// New generates a world. It costs O(rooms + players) time and memory.
func New(cfg Config) *World {
	if cfg.ZoneSize <= 0 {
		cfg.ZoneSize = 50
	}
	rng := NewRand(cfg.Seed)
	w := &World{Rooms: make([]roomstore.Room, 0, cfg.Rooms), byID: make(map[string]int, cfg.Rooms)}
	plane := ""
	for i := range cfg.Rooms {
		zone := i / cfg.ZoneSize
		if i%cfg.ZoneSize == 0 {
			plane = pick(rng, planes)
		}
		sub := subZones[(i/10)%len(subZones)]
		if sub == "sanitarium" && rng.IntN(2) == 0 {
			sub = "asylum_grounds"
		}
		exits := map[string]string{}
		zoneStart := zone * cfg.ZoneSize
		zoneEnd := min(zoneStart+cfg.ZoneSize, cfg.Rooms)
		if i+1 < zoneEnd {
			exits["north"] = RoomID(i + 1)
		}
		if i > zoneStart {
			exits["south"] = RoomID(i - 1)
		}
		if cfg.Rooms > 1 {
			for k := range 1 + rng.IntN(3) {
				to := rng.IntN(cfg.Rooms)
				if to != i {
					exits[directions[2+k]] = RoomID(to)
				}
			}
		}
		env := pick(rng, environments)
		w.Rooms = append(w.Rooms, roomstore.Room{
			ID:          RoomID(i),
			Name:        env + " " + strconv.Itoa(i),
			Description: "A generated " + env + " room.",
			Plane:       plane,
			Zone:        plane + "_zone_" + strconv.Itoa(zone),
			SubZone:     sub,
			Environment: env,
			Exits:       roomstore.NewExits(exits),
		})
		w.byID[RoomID(i)] = i
	}
	w.Players = make([]flux.Player, 0, cfg.Players)
	for range cfg.Players {
		room := ""
		if cfg.Rooms > 0 {
			room = RoomID(rng.IntN(cfg.Rooms))
		}
		w.Players = append(w.Players, flux.Player{
			ID:         uuidFrom(rng),
			RoomID:     room,
			Lucidity:   rng.IntN(131) - 30,
			LastActive: cfg.Now.Add(-time.Duration(rng.IntN(60)) * time.Second),
			CreatedAt:  cfg.Now.Add(-time.Duration(24+rng.IntN(24*30)) * time.Hour),
		})
	}
	return w
}

// uuidFrom draws a version-4-shaped UUID string from rng (deterministic for a seed), so
// players fit a game schema with uuid ids.
func uuidFrom(rng *rand.Rand) string {
	hi, lo := rng.Uint64(), rng.Uint64()
	hi = hi&^0xf000 | 0x4000
	lo = lo&^(0xc<<60) | 0x8<<60
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", hi>>32, (hi>>16)&0xffff, hi&0xffff, lo>>48, lo&0xffffffffffff)
}

// Wander takes one step of the players' random walk at now: each player, with probability
// move, walks through a random exit of its room and becomes active (LastActive = now); else,
// with probability touch, just acts (LastActive = now); else stays idle. It returns the
// indexes of the players it changed (appended to dst[:0]) so the caller can write the same
// moves to its stores.
func (w *World) Wander(rng *rand.Rand, now time.Time, move, touch float64, dst []int) []int {
	dst = dst[:0]
	for i := range w.Players {
		p := &w.Players[i]
		x := rng.Float64()
		switch {
		case x < move:
			if ri, ok := w.byID[p.RoomID]; ok {
				if ex := w.Rooms[ri].Exits; ex.Len() > 0 {
					k := rng.IntN(ex.Len())
					for _, to := range ex.All() {
						if k == 0 {
							p.RoomID = to
							break
						}
						k--
					}
				}
			}
			p.LastActive = now
			dst = append(dst, i)
		case x < move+touch:
			p.LastActive = now
			dst = append(dst, i)
		}
	}
	return dst
}

// NewRand returns the seeded generator the world uses, for callers' own walks.
func NewRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) //nolint:gosec // a seeded, reproducible world, not a secret
}

// PutRooms writes every room to store (one PutRoom each: this is set-up, not the tick path).
func (w *World) PutRooms(ctx context.Context, store roomstore.RoomStore) error {
	for _, r := range w.Rooms {
		if err := store.PutRoom(ctx, r); err != nil {
			return fmt.Errorf("worldgen: put room %s: %w", r.ID, err)
		}
	}
	return nil
}

// CopyPlayers inserts the players into the player table(s) cfg names — the embedded
// default schema (see flux.PostgresPlayers.Migrate) or a game's own, under cfg.Schema —
// with one COPY into the player table and, when lucidity lives in a separate table, one
// more into that one; tiers follow cfg.Rules (nil: flux.DefaultRules()). Use the config the
// flux.PostgresPlayers is built with. It costs one or two round trips of O(players) rows.
func (w *World) CopyPlayers(ctx context.Context, pool *pgxpool.Pool, cfg flux.PostgresConfig) error {
	cfg = cfg.WithDefaults()
	rules := *cfg.Rules
	table := func(name string) pgx.Identifier {
		if cfg.Schema != "" {
			return pgx.Identifier{cfg.Schema, name}
		}
		return pgx.Identifier{name}
	}
	separate := cfg.LucidityTable != "" && cfg.LucidityTable != cfg.PlayersTable
	cols := []string{cfg.PlayerIDColumn, cfg.RoomColumn, cfg.LastActiveColumn, cfg.CreatedAtColumn}
	if !separate {
		cols = append(cols, cfg.LucidityColumn, cfg.TierColumn)
	}
	rows := make([][]any, 0, len(w.Players))
	for _, p := range w.Players {
		row := []any{p.ID, p.RoomID, p.LastActive, p.CreatedAt}
		if !separate {
			row = append(row, int32(p.Lucidity), string(rules.Tier(p.Lucidity)))
		}
		rows = append(rows, row)
	}
	if _, err := pool.CopyFrom(ctx, table(cfg.PlayersTable), cols, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("worldgen: copy players: %w", err)
	}
	if !separate {
		return nil
	}
	rows = rows[:0]
	for _, p := range w.Players {
		rows = append(rows, []any{p.ID, int32(p.Lucidity), string(rules.Tier(p.Lucidity))})
	}
	if _, err := pool.CopyFrom(ctx, table(cfg.LucidityTable),
		[]string{cfg.LucidityPlayerIDColumn, cfg.LucidityColumn, cfg.TierColumn}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("worldgen: copy lucidity: %w", err)
	}
	return nil
}
