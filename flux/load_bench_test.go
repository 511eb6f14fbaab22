package flux_test

import (
	"context"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/internal/workload/worldgen"
)

// BenchmarkLoadActive is the load phase of a W1 tick on its own: PostgresPlayers.LoadActive
// of 10,000 active players (one query), reusing the players slice as the Runner does.
// Reports ms/load and players/load; allocs/op are the whole load's.
func BenchmarkLoadActive(b *testing.B) {
	ctx := context.Background()
	pool, _, _ := testdb.NewTracedPool(b)
	now := time.Date(2026, 6, 1, 23, 0, 0, 0, time.UTC)
	rules := flux.DefaultRules()
	store := postgresPlayers(b, pool, flux.PostgresConfig{Rules: &rules})
	w := worldgen.New(worldgen.Config{Rooms: w1Rooms, Players: w1Players, Seed: 1, Now: now})
	if err := w.CopyPlayers(ctx, pool, flux.PostgresConfig{Rules: &rules}); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "ANALYZE flux_players"); err != nil {
		b.Fatal(err)
	}
	q := flux.ActiveQueryFor(rules, now)
	var buf []flux.Player
	b.ReportAllocs()
	for b.Loop() {
		got, err := store.LoadActive(ctx, q, buf)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != w1Players {
			b.Fatalf("loaded %d players", len(got))
		}
		buf = got
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/load")
}
