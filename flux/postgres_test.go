package flux_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// gameSchema is a game's own schema: players in one table (uuid ids) and lucidity in
// another, with CHECKs on the range and the tier names, under names that need quoting.
const gameSchema = `
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
);`

var gameConfig = flux.PostgresConfig{
	PlayersTable: "Game Players", PlayerIDColumn: "player_uuid", RoomColumn: "current-room",
	LastActiveColumn: "seen_at", CreatedAtColumn: "born_at", PlayerIDType: "uuid",
	LucidityTable: `lucidity"stats`, LucidityPlayerIDColumn: "owner", LucidityColumn: "lcd", TierColumn: "lcd_tier",
	ExternalPlayerTables: true, StateTable: "flux state; DROP TABLE x", Audit: true, AuditTable: "lcd-audit",
}

// TestPostgresPlayersGameSchema runs the Runner on a game's own two-table schema with uuid
// ids and audit rows: exact values, tiers written within the CHECKs, a clamp at −100, the
// game's own concurrent lucidity write kept (deltas), and one audit row per change.
func TestPostgresPlayersGameSchema(t *testing.T) {
	t.Parallel()
	pool, counter, _ := testdb.NewTracedPool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, gameSchema); err != nil {
		t.Fatal(err)
	}
	store := postgresPlayers(t, pool, gameConfig)
	const (
		grave = "6f1c28a4-1b7e-4c0e-9a7e-0d5c3f9b1a01"
		eld   = "6f1c28a4-1b7e-4c0e-9a7e-0d5c3f9b1a02"
		brink = "6f1c28a4-1b7e-4c0e-9a7e-0d5c3f9b1a03"
	)
	for _, p := range []struct {
		id, room string
		lcd      int
		tier     string
	}{{grave, "grave", 100, "lucid"}, {eld, "eld", 41, "uneasy"}, {brink, "eld", -99, "catatonic"}} {
		if _, err := pool.Exec(ctx, `INSERT INTO "Game Players" VALUES ($1, $2, $3, $4)`, p.id, p.room, rtNight, rtNight.Add(-time.Hour*48)); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO "lucidity""stats" VALUES ($1, $2, $3)`, p.id, p.lcd, p.tier); err != nil {
			t.Fatal(err)
		}
	}
	r := newRunner(t, store, memoryRooms(t, scenarioRooms()...), flux.RunnerConfig{RunnerID: "game"})
	read := func() map[string]flux.PlayerState {
		return queryStates(t, pool, `SELECT s.owner::text, p."current-room", s.lcd, s.lcd_tier
			FROM "lucidity""stats" s JOIN "Game Players" p ON p.player_uuid = s.owner`)
	}
	// Tick 1 at night: eldritch −1.5 with a fractured-or-worse companion: the uneasy player
	// (41) has a catatonic companion (−0.2) → −1.7 → −1 (41 → 40); the catatonic one has an
	// uneasy companion (+0.1) → −1.4 → −1 (−99 → −100). The graveyard: −0.8, no change.
	before := counter.Statements()
	rep, err := r.Tick(ctx, rtNight)
	if err != nil {
		t.Fatal(err)
	}
	if n := counter.Statements() - before; n != 2 || rep.Statements != 2 {
		t.Fatalf("tick sent %d statements (report %d), want 2", n, rep.Statements)
	}
	checkLucidity(t, read(), map[string]int{grave: 100, eld: 40, brink: -100})

	// The game writes lucidity itself between ticks; flux applies deltas, keeping it.
	if _, err := pool.Exec(ctx, `UPDATE "lucidity""stats" SET lcd = 10, lcd_tier = 'deranged' WHERE owner = $1`, grave); err != nil {
		t.Fatal(err)
	}
	// Tick 2: graveyard −1.6 → −1 applied to the game's 10 → 9. The eldritch pair: 40
	// (uneasy) with a catatonic companion: residual −0.7 − 1.7 = −2.4 → −2 (40 → 38, now
	// fractured); −100 stays clamped.
	if _, err := r.Tick(ctx, rtNight.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	checkLucidity(t, read(), map[string]int{grave: 9, eld: 38, brink: -100})

	var audits, stateRows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM "lcd-audit"`).Scan(&audits); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM "flux state; DROP TABLE x"`).Scan(&stateRows); err != nil {
		t.Fatal(err)
	}
	if want := int(r.Stats().ChangesApplied); audits != 4 || stateRows != 3 || want != 4 {
		t.Fatalf("%d audit rows, %d state rows, %d changes applied; want 4, 3, 4", audits, stateRows, want)
	}
	var oldL, newL int
	var oldT, newT string
	if err := pool.QueryRow(ctx, `SELECT old_lucidity, new_lucidity, old_tier, new_tier FROM "lcd-audit" WHERE player_id = $1 ORDER BY id LIMIT 1`, eld).
		Scan(&oldL, &newL, &oldT, &newT); err != nil {
		t.Fatal(err)
	}
	if oldL != 41 || newL != 40 || oldT != "uneasy" || newT != "uneasy" {
		t.Fatalf("audit row %d→%d %s→%s", oldL, newL, oldT, newT)
	}
}

// TestPostgresMigrateIdempotentConcurrent runs Migrate from several goroutines and again:
// the advisory lock serializes them and nothing fails.
func TestPostgresMigrateIdempotentConcurrent(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	store, err := flux.NewPostgresPlayers(pool, flux.PostgresConfig{Audit: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- store.Migrate(context.Background()) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name IN ('flux_players', 'flux_state', 'flux_audit')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("%d of 3 tables created", n)
	}
	// A lucidity outside the CHECK is refused by the default schema.
	_, err = pool.Exec(context.Background(), `INSERT INTO flux_players (id, room_id, lucidity, last_active) VALUES ('x', 'r', 101, now())`)
	if err == nil {
		t.Fatal("lucidity 101 accepted")
	}
	if _, err := flux.NewPostgresPlayers(pool, flux.PostgresConfig{PlayerIDType: "text; DROP"}); !errors.Is(err, flux.ErrInvalidConfig) {
		t.Fatalf("bad id type: %v", err)
	}
}
