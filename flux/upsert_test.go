package flux_test

import (
	"context"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// playerUpserter is what both stores offer to create players.
type playerUpserter interface {
	flux.PlayerStore
	UpsertPlayers(ctx context.Context, players []flux.Player) (int64, error)
}

// TestUpsertPlayers, on the memory store, the default Postgres table and a game's own
// two-table schema with uuid ids: players are created in one call (the last entry of a
// duplicate wins, lucidity clamped, the tier computed from the rules), updated by the
// next call, and their flux state is the store's: an upsert after a tick leaves it.
func TestUpsertPlayers(t *testing.T) {
	t.Parallel()
	const (
		a = "7d0e4a52-5d2b-4f55-9b0e-3c1f0e000001"
		b = "7d0e4a52-5d2b-4f55-9b0e-3c1f0e000002"
	)
	old := rtNight.Add(-48 * time.Hour)
	stores := map[string]func(t *testing.T) (playerUpserter, func() map[string]flux.PlayerState){
		"memory": func(t *testing.T) (playerUpserter, func() map[string]flux.PlayerState) {
			m := flux.NewMemoryPlayers(flux.DefaultRules())
			return m, func() map[string]flux.PlayerState {
				out := map[string]flux.PlayerState{}
				for _, s := range m.Snapshot() {
					out[s.ID] = s
				}
				return out
			}
		},
		"postgres": func(t *testing.T) (playerUpserter, func() map[string]flux.PlayerState) {
			pool, _ := testdb.NewPool(t)
			return postgresPlayers(t, pool, flux.PostgresConfig{}), func() map[string]flux.PlayerState { return dbLucidity(t, pool) }
		},
		"game schema": func(t *testing.T) (playerUpserter, func() map[string]flux.PlayerState) {
			pool, _ := testdb.NewPool(t)
			if _, err := pool.Exec(context.Background(), gameSchema); err != nil {
				t.Fatal(err)
			}
			return postgresPlayers(t, pool, gameConfig), func() map[string]flux.PlayerState {
				return queryStates(t, pool, `SELECT s.owner::text, p."current-room", s.lcd, s.lcd_tier
					FROM "lucidity""stats" s JOIN "Game Players" p ON p.player_uuid = s.owner`)
			}
		},
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store, read := mk(t)
			n, err := store.UpsertPlayers(ctx, []flux.Player{
				{ID: a, RoomID: "grave", Lucidity: 10, LastActive: rtNight, CreatedAt: old},
				{ID: b, RoomID: "eld", Lucidity: 500, LastActive: rtNight, CreatedAt: old},  // clamped to 100
				{ID: a, RoomID: "grave", Lucidity: 45, LastActive: rtNight, CreatedAt: old}, // the last entry wins
			})
			if err != nil || n != 2 {
				t.Fatalf("create: %d %v; want 2", n, err)
			}
			got := read()
			if got[a].Lucidity != 45 || got[a].Tier != flux.TierUneasy || got[b].Lucidity != 100 || got[b].Tier != flux.TierLucid ||
				got[a].RoomID != "grave" {
				t.Fatalf("created %+v", got)
			}
			r := newRunner(t, store, memoryRooms(t, scenarioRooms()...), flux.RunnerConfig{})
			if _, err := r.Tick(ctx, rtNight); err != nil {
				t.Fatal(err)
			}
			if _, err := store.UpsertPlayers(ctx, []flux.Player{{ID: a, RoomID: "sanct", Lucidity: 5, LastActive: rtNight, CreatedAt: old}}); err != nil {
				t.Fatal(err)
			}
			got = read()
			if got[a].Lucidity != 5 || got[a].Tier != flux.TierDeranged || got[a].RoomID != "sanct" {
				t.Fatalf("updated %+v", got[a])
			}
			loaded, err := store.LoadActive(ctx, flux.ActiveQueryFor(flux.DefaultRules(), rtNight), nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range loaded {
				if p.Flux.Tick != flux.TickNumber(rtNight, time.Minute) {
					t.Errorf("player %s: tick state %+v after an upsert, want the tick's", p.ID, p.Flux)
				}
			}
		})
	}
}

// TestMigrateCreatesItsSchemas: Migrate creates a Schema and a StateSchema that do not
// exist yet (a newcomer's first run), and is idempotent.
func TestMigrateCreatesItsSchemas(t *testing.T) {
	t.Parallel()
	pool, schema := testdb.NewPool(t)
	game, lib := schema+"_game", schema+"_lib"
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+game+", "+lib+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	store := postgresPlayers(t, pool, flux.PostgresConfig{Schema: game, StateSchema: lib})
	if err := store.Migrate(context.Background()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if n, err := store.UpsertPlayers(context.Background(), []flux.Player{{ID: "p", RoomID: "r", Lucidity: 50}}); err != nil || n != 1 {
		t.Fatalf("upsert into the new schema: %d %v", n, err)
	}
	var tables int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM information_schema.tables
		WHERE (table_schema, table_name) IN (($1, 'flux_players'), ($2, 'flux_state'))`, game, lib).Scan(&tables); err != nil || tables != 2 {
		t.Fatalf("%d of the 2 tables in their schemas (%v)", tables, err)
	}
}
