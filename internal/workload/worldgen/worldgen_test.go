package worldgen_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/internal/workload/worldgen"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var start = time.Date(2026, 4, 2, 21, 0, 0, 0, time.UTC)

// checkCopied reads every player back through a flux.PostgresPlayers configured with cfg
// and the tiers with tierSQL, and compares them with the world's.
func checkCopied(t *testing.T, pool *pgxpool.Pool, cfg flux.PostgresConfig, w *worldgen.World, tierSQL string) {
	t.Helper()
	ctx := context.Background()
	store, err := flux.NewPostgresPlayers(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil { // the flux state table
		t.Fatal(err)
	}
	got, err := store.LoadActive(ctx, flux.ActiveQuery{Now: start, ActiveWithin: 24 * time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(w.Players) {
		t.Fatalf("%d players read back, %d generated", len(got), len(w.Players))
	}
	byID := map[string]flux.Player{}
	for _, p := range got {
		byID[p.ID] = p
	}
	for _, want := range w.Players {
		p := byID[want.ID]
		if p.RoomID != want.RoomID || p.Lucidity != want.Lucidity || !p.LastActive.Equal(want.LastActive) || !p.CreatedAt.Equal(want.CreatedAt) {
			t.Fatalf("player %s: read %+v, generated %+v", want.ID, p, want)
		}
	}
	rows, err := pool.Query(ctx, tierSQL)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	rules := flux.DefaultRules()
	n := 0
	for rows.Next() {
		var luc int
		var tier string
		if err := rows.Scan(&luc, &tier); err != nil {
			t.Fatal(err)
		}
		if flux.Tier(tier) != rules.Tier(luc) {
			t.Fatalf("lucidity %d stored with tier %s", luc, tier)
		}
		n++
	}
	if err := rows.Err(); err != nil || n != len(w.Players) {
		t.Fatalf("%d tiers read (%v)", n, err)
	}
}

// TestCopyPlayersQualifiedDefaultSchema copies into flux's default table in another schema
// than the pool's search_path (PostgresConfig.Schema): every player arrives with its tier.
func TestCopyPlayersQualifiedDefaultSchema(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	other, otherSchema := testdb.NewPool(t)
	cfg := flux.PostgresConfig{Schema: otherSchema}
	store, err := flux.NewPostgresPlayers(other, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	w := worldgen.New(worldgen.Config{Rooms: 20, Players: 60, Seed: 3, Now: start})
	if err := w.CopyPlayers(context.Background(), pool, cfg); err != nil {
		t.Fatal(err)
	}
	checkCopied(t, other, flux.PostgresConfig{}, w, `SELECT lucidity, tier FROM flux_players`)
}

// TestCopyPlayersGameSchema copies into a game's own two tables (uuid ids, quoted names,
// lucidity and tier in a second table with CHECKs): two COPYs, every player in both.
func TestCopyPlayersGameSchema(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `
CREATE TABLE "Game Players" (
    player_uuid    uuid PRIMARY KEY,
    "current-room" text NOT NULL,
    seen_at        timestamptz NOT NULL,
    born_at        timestamptz NOT NULL
);
CREATE TABLE "lucidity""stats" (
    owner    uuid PRIMARY KEY REFERENCES "Game Players" (player_uuid),
    lcd      integer NOT NULL CHECK (lcd BETWEEN -100 AND 100),
    lcd_tier text NOT NULL CHECK (lcd_tier IN ('lucid', 'uneasy', 'fractured', 'deranged', 'catatonic'))
);`); err != nil {
		t.Fatal(err)
	}
	cfg := flux.PostgresConfig{
		PlayersTable: "Game Players", PlayerIDColumn: "player_uuid", RoomColumn: "current-room",
		LastActiveColumn: "seen_at", CreatedAtColumn: "born_at", PlayerIDType: "uuid",
		LucidityTable: `lucidity"stats`, LucidityPlayerIDColumn: "owner", LucidityColumn: "lcd", TierColumn: "lcd_tier",
		ExternalPlayerTables: true,
	}
	w := worldgen.New(worldgen.Config{Rooms: 20, Players: 60, Seed: 4, Now: start})
	if err := w.CopyPlayers(ctx, pool, cfg); err != nil {
		t.Fatal(err)
	}
	checkCopied(t, pool, cfg, w, `SELECT lcd, lcd_tier FROM "lucidity""stats"`)
}
