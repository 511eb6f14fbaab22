package flux_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

func migrateCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func scanInt(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(migrateCtx(t), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// releaseSchema runs the release's Migrate (before versioned migrations, its SQL kept in
// testdata) for the default config with Audit, tables qualified by schema.
func releaseSchema(t *testing.T, pool *pgxpool.Pool, schema string) {
	t.Helper()
	q := func(name string) string { return pgx.Identifier{schema, name}.Sanitize() }
	id := func(name string) string { return pgx.Identifier{name}.Sanitize() }
	names := map[string]string{
		"Players": q("flux_players"), "PlayerID": id("id"), "Room": id("room_id"), "PlayerIDType": "text",
		"Lucidity": id("lucidity"), "Tier": id("tier"), "LastActive": id("last_active"), "CreatedAt": id("created_at"),
		"MinLucidity": "0", "MaxLucidity": "100",
		"TierList":        "'lucid', 'uneasy', 'fractured', 'delirious', 'catatonic'",
		"LastActiveIndex": id("flux_players_last_active_idx"), "CreatedAtIndex": id("flux_players_created_at_idx"),
		"State": q("flux_state"), "Audit": q("flux_audit"), "AuditIndex": id("flux_audit_player_idx"),
	}
	for _, f := range []string{"players", "state", "audit"} {
		raw, err := os.ReadFile("testdata/release_" + f + ".sql")
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := template.Must(template.New(f).Option("missingkey=error").Parse(string(raw))).Execute(&b, names); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(migrateCtx(t), b.String()); err != nil {
			t.Fatalf("release %s.sql: %v", f, err)
		}
	}
}

// TestMigrateUpgradesReleaseSchema: the tables the release before versioned migrations
// created keep every row through Migrate, which records each as version 1 (baseline)
// without running its DDL; the earlier release's flux_applied_ticks is left alone; the store
// works on the upgraded tables.
func TestMigrateUpgradesReleaseSchema(t *testing.T) {
	t.Parallel()
	pool, schema := testdb.NewPool(t)
	releaseSchema(t, pool, schema)
	if _, err := pool.Exec(migrateCtx(t), `CREATE TABLE flux_applied_ticks (tick_id text PRIMARY KEY, changes integer NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i := range n {
		for _, sql := range []string{
			`INSERT INTO flux_players (id, room_id, lucidity) VALUES ($1, 'hall', 70)`,
			`INSERT INTO flux_state (player_id, tick, residual, room_id, evaluations, last_delta, writer) VALUES ($1, 9, 0.5, 'hall', 1, -1, 1)`,
			`INSERT INTO flux_audit (player_id, tick, ticks, room_id, old_lucidity, new_lucidity, delta, old_tier, new_tier, flux, reason)
VALUES ($1, 9, 1, 'hall', 71, 70, -1, 'uneasy', 'uneasy', -1, 'passive_flux')`,
		} {
			if _, err := pool.Exec(migrateCtx(t), sql, fmt.Sprint("p", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	store, err := flux.NewPostgresPlayers(pool, flux.PostgresConfig{Audit: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(migrateCtx(t)); err != nil {
		t.Fatalf("Migrate over the release's tables: %v", err)
	}
	for _, table := range []string{"flux_players", "flux_state", "flux_audit"} {
		if got := scanInt(t, pool, "SELECT count(*) FROM "+table); got != n {
			t.Errorf("%s: %d of %d rows after Migrate", table, got, n)
		}
	}
	if got := scanInt(t, pool, "SELECT count(*) FROM gamepersist_migrations WHERE version = 1 AND baseline"); got != 3 {
		t.Errorf("%d of 3 components recorded as baseline", got)
	}
	if got := scanInt(t, pool, "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'flux_applied_ticks'", schema); got != 1 {
		t.Error("the earlier release's flux_applied_ticks was dropped")
	}
	players, err := store.LoadActive(migrateCtx(t), flux.ActiveQueryFor(flux.DefaultRules(), time.Now()), nil)
	if err != nil || len(players) != n || players[0].Flux.Tick != 9 {
		t.Fatalf("LoadActive after the upgrade: %d players, %v", len(players), err)
	}
}

// TestMigrateEightProcessesEachStepOnce: eight stores on their own pools migrate a fresh
// schema at once (Schema and StateSchema apart, both new): no error, each component's step
// recorded once, not as a baseline; the next Migrate sends only reads (no DDL).
func TestMigrateEightProcessesEachStepOnce(t *testing.T) {
	t.Parallel()
	cs, schema := testdb.NewSchema(t)
	game, lib := schema+"_game", schema+"_lib"
	cfg := flux.PostgresConfig{Schema: game, StateSchema: lib, Audit: true}
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			pool, err := pgxpool.New(migrateCtx(t), cs)
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			store, err := flux.NewPostgresPlayers(pool, cfg)
			if err != nil {
				errs <- err
				return
			}
			errs <- store.Migrate(migrateCtx(t))
		})
	}
	wg.Wait()
	close(errs)
	pool, counter, _ := testdb.NewTracedPool(t)
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+game+", "+lib+" CASCADE")
	})
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	for schema, want := range map[string]int{game: 1, lib: 2} {
		if got := scanInt(t, pool, "SELECT count(*) FROM "+schema+".gamepersist_migrations WHERE version = 1 AND NOT baseline"); got != want {
			t.Errorf("schema %s: %d steps recorded, want %d", schema, got, want)
		}
	}
	store := postgresPlayers(t, pool, cfg)
	before := counter.Statements()
	if err := store.Migrate(migrateCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := counter.Statements() - before; got != 4 {
		t.Fatalf("second Migrate sent %d statements, want 4 reads (the catalogue, one per schema, the mapped columns)", got)
	}
	if n, err := store.UpsertPlayers(migrateCtx(t), []flux.Player{{ID: "p", RoomID: "r", Lucidity: 50}}); err != nil || n != 1 {
		t.Fatalf("upsert after Migrate: %d, %v", n, err)
	}
}

// TestMigrateExternalTablesCreatesOnlyFluxTables: with ExternalPlayerTables, Migrate
// creates StateSchema and flux's own tables, never the game's schema; the game's missing
// player table is then an error wrapping ErrMissingSchema that names it.
func TestMigrateExternalTablesCreatesOnlyFluxTables(t *testing.T) {
	t.Parallel()
	pool, schema := testdb.NewPool(t)
	game, lib := schema+"_nogame", schema+"_flux"
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+game+", "+lib+" CASCADE")
	})
	store, err := flux.NewPostgresPlayers(pool, flux.PostgresConfig{Schema: game, StateSchema: lib, ExternalPlayerTables: true})
	if err != nil {
		t.Fatal(err)
	}
	err = store.Migrate(migrateCtx(t))
	if !errors.Is(err, flux.ErrMissingSchema) || !strings.Contains(err.Error(), `table "`+game+`"."flux_players" (PostgresConfig.PlayersTable) does not exist`) {
		t.Fatalf("Migrate without the game's tables = %v, want ErrMissingSchema naming the player table", err)
	}
	if got := scanInt(t, pool, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", game); got != 0 {
		t.Error("Migrate created the game's schema")
	}
	if got := scanInt(t, pool, "SELECT count(*) FROM pg_tables WHERE schemaname = $1", lib); got != 2 {
		t.Errorf("%d tables in StateSchema, want flux_state and gamepersist_migrations", got)
	}
}
