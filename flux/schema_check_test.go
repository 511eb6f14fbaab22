package flux_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/internal/testkit/testlog"
)

// gamePlayersTable is a game's own player table whose last-active column is last_seen.
const gamePlayersTable = `CREATE TABLE players (id text PRIMARY KEY, room text NOT NULL, lucidity int NOT NULL,
  tier text NOT NULL, last_seen timestamptz NOT NULL DEFAULT now(), created_at timestamptz NOT NULL DEFAULT now())`

// TestMigrateNamesAMissingMappedTableOrColumn: on a game's own tables, a misspelled table
// or column makes Migrate fail (not the first tick), with an error wrapping
// ErrMissingSchema that names the table or column, the PostgresConfig field and, for a
// column, the table's actual columns; the right names migrate.
func TestMigrateNamesAMissingMappedTableOrColumn(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	if _, err := pool.Exec(migrateCtx(t), gamePlayersTable); err != nil {
		t.Fatal(err)
	}
	right := flux.PostgresConfig{PlayersTable: "players", RoomColumn: "room", LastActiveColumn: "last_seen",
		ExternalPlayerTables: true}
	wrongColumn := right
	wrongColumn.LastActiveColumn = "last_active"
	wrongTable := right
	wrongTable.PlayersTable = "player"
	for cfg, want := range map[*flux.PostgresConfig][]string{
		&wrongColumn: {`table "players" has no column "last_active" (PostgresConfig.LastActiveColumn)`, "last_seen"},
		&wrongTable:  {`table "player" (PostgresConfig.PlayersTable) does not exist`},
	} {
		store, err := flux.NewPostgresPlayers(pool, *cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = store.Migrate(migrateCtx(t))
		if !errors.Is(err, flux.ErrMissingSchema) {
			t.Fatalf("Migrate with %s: %v, want ErrMissingSchema", want[0], err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Migrate's error %q does not say %q", err, w)
			}
		}
	}
	postgresPlayers(t, pool, right)
}

// TestForgottenMigrateSaysCallMigrate: a store used without Migrate fails with an error
// wrapping ErrMissingSchema that says "call PostgresPlayers.Migrate", the database's
// *pgconn.PgError (42P01) still reachable with errors.As.
func TestForgottenMigrateSaysCallMigrate(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	store, err := flux.NewPostgresPlayers(pool, flux.PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := migrateCtx(t)
	_, loadErr := store.LoadActive(ctx, flux.ActiveQueryFor(flux.DefaultRules(), rtNight), nil)
	_, upsertErr := store.UpsertPlayers(ctx, []flux.Player{{ID: "p", RoomID: "r", Lucidity: 50}})
	_, addErr := store.AddLucidity(ctx, "p", 1)
	for what, err := range map[string]error{"LoadActive": loadErr, "UpsertPlayers": upsertErr, "AddLucidity": addErr} {
		var pgErr *pgconn.PgError
		if !errors.Is(err, flux.ErrMissingSchema) || !strings.Contains(err.Error(), "call PostgresPlayers.Migrate") ||
			!errors.As(err, &pgErr) || pgErr.Code != "42P01" {
			t.Errorf("%s before Migrate: %v; want ErrMissingSchema saying to call Migrate, wrapping the 42P01", what, err)
		}
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.LoadActive(ctx, flux.ActiveQueryFor(flux.DefaultRules(), rtNight), nil); err != nil {
		t.Fatalf("LoadActive after Migrate: %v", err)
	}
}

// TestMigrateWarnsOfALookalikeTable: Migrate with a misspelled PlayersTable
// ("flux_player" beside the existing "flux_players") creates it, but not silently: a warn
// line names both tables.
func TestMigrateWarnsOfALookalikeTable(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	postgresPlayers(t, pool, flux.PostgresConfig{})
	var logs testlog.Buffer
	store, err := flux.NewPostgresPlayers(pool, flux.PostgresConfig{PlayersTable: "flux_player", Logger: logs.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(migrateCtx(t)); err != nil {
		t.Fatal(err)
	}
	for _, l := range logs.Lines(t) {
		if l["level"] == "warn" && l["created"] == "flux_player" && l["existing"] == "flux_players" {
			return
		}
	}
	t.Fatalf("no warn line names the created table and the existing one; log:\n%s", logs.String())
}
