package flux_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// mudWorld creates mudSchema in a schema of its own (its adjustment log given a foreign key
// to the players, as the real MUD's has) and returns the pool and the game's schema name.
func mudWorld(t testing.TB) (*pgxpool.Pool, string, string) {
	t.Helper()
	pool, schema := testdb.NewPool(t)
	game, lib := schema+"_mud", schema+"_flux"
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+game+", "+lib+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	if _, err := pool.Exec(context.Background(), "CREATE SCHEMA "+game+"; SET search_path = "+game+"; "+mudSchema+
		"; ALTER TABLE lucidity_adjustments ADD FOREIGN KEY (player_id) REFERENCES players (id); RESET search_path"); err != nil {
		t.Fatal(err)
	}
	return pool, game, lib
}

// insertMudPlayer adds one player at lucidity lcd to the game's tables.
func insertMudPlayer(t testing.TB, pool *pgxpool.Pool, game, id string, lcd int) {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO `+game+`.players VALUES ($1::uuid, $1::text, 'r', $2, $2, false)`, id, rtNight); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO `+game+`.player_lucidity VALUES ($1, $2, $3, NULL, NULL)`,
		id, lcd, string(flux.DefaultRules().Tier(lcd))); err != nil {
		t.Fatal(err)
	}
}

// TestAuditRecordsAppliedDelta: on a game's own tables, the adjustment log and the
// bookkeeping columns record what the database applied after clamping lucidity to its
// bounds, not what the write asked for; a write that the clamp turns into no change
// changes no lucidity row (last_updated_at stays unset) and logs nothing, while its tick
// state is still stored (a second send is a conflict).
func TestAuditRecordsAppliedDelta(t *testing.T) {
	t.Parallel()
	pool, game, lib := mudWorld(t)
	ctx := context.Background()
	const (
		high  = "00000000-0000-4000-8000-000000000011" // 60, asks +300: applied +40
		low   = "00000000-0000-4000-8000-000000000012" // 100, asks −300: applied −200
		mid   = "00000000-0000-4000-8000-000000000013" // 10, asks +160: applied +90
		top   = "00000000-0000-4000-8000-000000000014" // 100, asks +2: nothing
		floor = "00000000-0000-4000-8000-000000000015" // −100, asks −1: nothing
	)
	start := map[string]int{high: 60, low: 100, mid: 10, top: 100, floor: -100}
	for id, l := range start {
		insertMudPlayer(t, pool, game, id, l)
	}
	store := postgresPlayers(t, pool, mudConfig(game, lib))
	writes := []flux.PlayerWrite{
		write(high, 0, 1, 300), write(low, 0, 1, -300), write(mid, 0, 1, 160), write(top, 0, 1, 2), write(floor, 0, 1, -1),
	}
	for i := range writes { // the write's own view, as a Runner would have evaluated it
		w := &writes[i]
		w.OldLucidity = start[w.PlayerID]
		w.NewLucidity = w.OldLucidity + w.Delta
	}
	res, err := store.Apply(ctx, writes)
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 5 || res.LucidityUpdated != 3 {
		t.Fatalf("apply: %+v, want 5 written, 3 lucidity rows changed (the clamp leaves two unchanged)", res)
	}
	type logRow struct{ delta, old, new int }
	logged := map[string]logRow{}
	rows, err := pool.Query(ctx, `SELECT player_id::text, delta, old_value, new_value FROM `+game+`.lucidity_adjustments`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var r logRow
		if err := rows.Scan(&id, &r.delta, &r.old, &r.new); err != nil {
			t.Fatal(err)
		}
		if _, dup := logged[id]; dup {
			t.Fatalf("player %s logged twice", id)
		}
		logged[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]logRow{high: {40, 60, 100}, low: {-200, 100, -100}, mid: {90, 10, 100}}
	if len(logged) != len(want) {
		t.Errorf("%d adjustment rows %+v, want %d (none for the writes the clamp cancels)", len(logged), logged, len(want))
	}
	for id, w := range want {
		if logged[id] != w {
			t.Errorf("player %s logged %+v, want %+v (the applied change)", id, logged[id], w)
		}
	}
	for id, l := range start {
		var lcd int
		var updated pgtype.Timestamptz
		if err := pool.QueryRow(ctx, `SELECT lucidity, last_updated_at FROM `+game+`.player_lucidity WHERE player_id = $1`, id).
			Scan(&lcd, &updated); err != nil {
			t.Fatal(err)
		}
		changed := id != top && id != floor
		if updated.Valid != changed {
			t.Errorf("player %s (lucidity %d → %d): last_updated_at set %v, want %v", id, l, lcd, updated.Valid, changed)
		}
	}
	again, err := store.Apply(ctx, writes[3:])
	if err != nil || again.Conflicts != 2 {
		t.Fatalf("the cancelled writes sent again: %+v %v, want 2 conflicts (their tick state was stored)", again, err)
	}
}

// TestAuditDefaultTableRecordsApplied: the library's own audit table records the lucidity
// and tiers before and after as applied, and the applied delta.
func TestAuditDefaultTableRecordsApplied(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	ctx := context.Background()
	store := postgresPlayers(t, pool, flux.PostgresConfig{Audit: true})
	insertPlayers(t, pool, flux.Player{ID: "a", RoomID: "r", Lucidity: 75, LastActive: rtNight, CreatedAt: rtNight},
		flux.Player{ID: "b", RoomID: "r", Lucidity: -100, LastActive: rtNight, CreatedAt: rtNight})
	w := write("a", 0, 1, -500)
	w.OldLucidity, w.NewLucidity = 70, -430 // what the Runner evaluated; the game has moved it since
	if _, err := store.Apply(ctx, []flux.PlayerWrite{w, write("b", 0, 1, -3)}); err != nil {
		t.Fatal(err)
	}
	var n, old, nw, delta int
	var oldTier, newTier string
	if err := pool.QueryRow(ctx, `SELECT count(*) OVER (), old_lucidity, new_lucidity, delta, old_tier, new_tier
		FROM flux_audit`).Scan(&n, &old, &nw, &delta, &oldTier, &newTier); err != nil {
		t.Fatal(err)
	}
	if n != 1 || old != 75 || nw != -100 || delta != -175 || oldTier != "lucid" || newTier != "catatonic" {
		t.Fatalf("audit: %d rows, %d → %d (%d) %s → %s; want 1 row, 75 → −100 (−175) lucid → catatonic", n, old, nw, delta, oldTier, newTier)
	}
}

// TestAuditForeignKeyLocksInIDOrder: a game transaction holds FOR UPDATE on the first
// player (by id) of an audited Apply of 200 players, which waits for it; the game then locks
// the other 199 in id order. Apply must hold none of them while it waits — the audit
// log's foreign key takes FOR KEY SHARE on the players' rows, and those locks must come
// in id order too — so the game's locks are granted at once: no deadlock, no retry, and
// every write lands once the game commits.
func TestAuditForeignKeyLocksInIDOrder(t *testing.T) {
	t.Parallel()
	const players = 200
	pool, game, lib := mudWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids := make([]string, players)
	for i := range ids {
		ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)
		insertMudPlayer(t, pool, game, ids[i], 50)
	}
	store := postgresPlayers(t, pool, mudConfig(game, lib))
	writes := make([]flux.PlayerWrite, players)
	for i, k := range rand.New(rand.NewPCG(3, 4)).Perm(players) { // in no particular order
		writes[i] = write(ids[k], 0, 1, -1)
	}

	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	var gamePID uint32
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&gamePID); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT id FROM `+game+`.players WHERE id = $1::uuid FOR UPDATE`, ids[0]); err != nil {
		t.Fatal(err)
	}
	applied := make(chan error, 1)
	var res flux.ApplyResult
	go func() {
		var err error
		res, err = store.Apply(ctx, writes)
		applied <- err
	}()
	for blocked := 0; blocked == 0; { // until the apply waits for the game's lock
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))`,
			int64(gamePID)).Scan(&blocked); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-applied:
			t.Fatalf("apply returned while the game held a player's row: %+v %v", res, err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if _, err := tx.Exec(ctx, `SELECT id FROM `+game+`.players WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`, ids[1:]); err != nil {
		t.Fatalf("the game's locks in id order, while an apply waits: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-applied; err != nil || res.Written != players {
		t.Fatalf("apply: %+v %v, want %d written", res, err, players)
	}
	var logged int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+game+`.lucidity_adjustments`).Scan(&logged); err != nil {
		t.Fatal(err)
	}
	if r := store.Stats().Retries; r != 0 || logged != players {
		t.Fatalf("%d statements retried, %d adjustment rows; want 0 and %d", r, logged, players)
	}
}
