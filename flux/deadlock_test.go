package flux_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// gameAdjustSQL is a game's own multi-row lucidity write, taking its row locks the way the
// package documents (a sorted FOR UPDATE first), whatever the order of its input.
const gameAdjustSQL = `WITH d AS (
  SELECT * FROM unnest($1::text[], $2::int[]) AS d(id, delta)
), locked AS MATERIALIZED (
  SELECT p.id FROM flux_players p WHERE p.id IN (SELECT id FROM d) ORDER BY p.id FOR UPDATE
)
UPDATE flux_players p SET lucidity = p.lucidity + d.delta
FROM d WHERE p.id = d.id AND p.id IN (SELECT id FROM locked)`

// deadlockWorld is the set-up of a deadlock test: a store over players whose ids are ids,
// the game's own lucidity UPDATE (gameAdjustSQL's shape: $1 ids as text, $2 deltas) and a
// reader of every player's lucidity.
type deadlockWorld struct {
	store    *flux.PostgresPlayers
	pool     *pgxpool.Pool
	ids      []string
	gameSQL  string
	vacuum   string // VACUUM of the tables the rounds update
	lucidity func() map[string]int
}

// TestNoDeadlockWithGameWrites runs 200 rounds of three statements at once over the same
// 3,000 players, each writing 600 of them listed in a random order (so every pair of
// statements shares about 120 rows): a flux Apply, the game's
// UpdatePresence, and a game-style multi-row lucidity UPDATE. Every statement must succeed
// without a single deadlock (none retried by the store, none returned to the game), and
// every delta of both writers must be kept.
func TestNoDeadlockWithGameWrites(t *testing.T) {
	t.Parallel()
	const players = 3000
	pool, _, _ := testdb.NewTracedPool(t)
	ctx := context.Background()
	store := postgresPlayers(t, pool, flux.PostgresConfig{})
	if _, err := pool.Exec(ctx, `INSERT INTO flux_players (id, room_id, lucidity, tier)
		SELECT 'p' || lpad(i::text, 5, '0'), 'r', 50, 'uneasy' FROM generate_series(1, $1) AS i`, players); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, players)
	for i := range ids {
		ids[i] = fmt.Sprintf("p%05d", i+1)
	}
	runDeadlockRounds(t, deadlockWorld{store: store, pool: pool, ids: ids, gameSQL: gameAdjustSQL,
		vacuum: `VACUUM flux_players, flux_state`,
		lucidity: func() map[string]int {
			out := map[string]int{}
			for id, s := range dbLucidity(t, pool) {
				out[id] = s.Lucidity
			}
			return out
		}}, 200, 600)
}

// TestNoDeadlockWithGameWritesAudited is TestNoDeadlockWithGameWrites on a game's own
// tables (mudSchema: players, lucidity in a table of its own, uuid ids; 100 rounds of 400
// of 1,000 players) with Audit on and the game's adjustment log holding a foreign key to
// the players, which takes FOR KEY SHARE on their rows: the game's UPDATE locks
// player_lucidity in id order, UpdatePresence the players. 0 deadlocks, 0 retries.
// (Before the fix, 1–4 retried deadlocks in 300 rounds, 2 runs in 3;
// TestAuditForeignKeyLocksInIDOrder is the deterministic check.)
func TestNoDeadlockWithGameWritesAudited(t *testing.T) {
	t.Parallel()
	const players, rounds, batch = 1000, 100, 400
	pool, game, lib := mudWorld(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO `+game+`.players
		SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, i::text, 'r', $2, $2, false
		FROM generate_series(1, $1) AS i`, players, rtNight); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO `+game+`.player_lucidity SELECT id, 50, 'uneasy', NULL, NULL FROM `+game+`.players`); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, players)
	for i := range ids {
		ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)
	}
	store := postgresPlayers(t, pool, mudConfig(game, lib))
	gameSQL := `WITH d AS (
  SELECT d.id::uuid AS id, d.delta FROM unnest($1::text[], $2::int[]) AS d(id, delta)
), locked AS MATERIALIZED (
  SELECT l.player_id FROM ` + game + `.player_lucidity l WHERE l.player_id IN (SELECT id FROM d) ORDER BY l.player_id FOR UPDATE
)
UPDATE ` + game + `.player_lucidity l SET lucidity = l.lucidity + d.delta
FROM d WHERE l.player_id = d.id AND l.player_id IN (SELECT player_id FROM locked)`
	runDeadlockRounds(t, deadlockWorld{store: store, pool: pool, ids: ids, gameSQL: gameSQL,
		vacuum: `VACUUM ` + game + `.players, ` + game + `.player_lucidity, ` + lib + `.flux_state`,
		lucidity: func() map[string]int {
			rows, err := pool.Query(ctx, `SELECT player_id::text, lucidity FROM `+game+`.player_lucidity`)
			if err != nil {
				t.Fatal(err)
			}
			out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct {
				id  string
				lcd int
			}, error) {
				var x struct {
					id  string
					lcd int
				}
				err := r.Scan(&x.id, &x.lcd)
				return x, err
			})
			if err != nil {
				t.Fatal(err)
			}
			m := make(map[string]int, len(out))
			for _, x := range out {
				m[x.id] = x.lcd
			}
			return m
		}}, rounds, batch)
	// Each log row is the ±1 a write applied: its old and new values are the row's own
	// around the update, even with the game's UPDATE of the same rows landing meanwhile.
	var logged, off int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE abs(delta) <> 1 OR new_value - old_value <> delta)
		FROM `+game+`.lucidity_adjustments`).Scan(&logged, &off); err != nil {
		t.Fatal(err)
	}
	if logged != rounds*batch || off != 0 {
		t.Fatalf("%d adjustment rows, %d of them not the ±1 applied; want %d, 0", logged, off, rounds*batch)
	}
}

// runDeadlockRounds runs rounds of an Apply, an UpdatePresence and the game's UPDATE at
// once over w's players, each writing batch of them listed in a random order, and fails
// on any deadlock (retried by the store or returned) or lost delta.
func runDeadlockRounds(t *testing.T, w deadlockWorld, rounds, batch int) {
	t.Helper()
	ctx := context.Background()
	store, pool, ids := w.store, w.pool, w.ids
	players := len(ids)
	rng := rand.New(rand.NewPCG(1, 2))
	ticks := make(map[string]int64, players) // each player's stored flux tick
	want := make(map[string]int, players)    // each player's expected lucidity
	for _, id := range ids {
		want[id] = 50
	}
	var gameErrors, applyErrors int
	for round := range rounds {
		if round%25 == 0 { // rounds of updates bloat the rows: keep the scans short
			if _, err := pool.Exec(ctx, w.vacuum); err != nil {
				t.Fatal(err)
			}
		}
		sign := 1 - 2*(round%2) // keeps lucidity near 50: no clamp hides a lost delta
		perm := rng.Perm(players)
		writes := make([]flux.PlayerWrite, 0, batch)
		for _, k := range perm[:batch] {
			id := ids[k]
			writes = append(writes, flux.PlayerWrite{PlayerID: id, FromTick: ticks[id], Delta: sign, Ticks: 1,
				State: flux.TickState{Tick: ticks[id] + 1, Carry: flux.Carry{RoomID: "r", Evaluations: 1}, LastDelta: sign}})
		}
		perm = rng.Perm(players)
		presence := make([]flux.Presence, 0, batch)
		for _, k := range perm[:batch] {
			presence = append(presence, flux.Presence{PlayerID: ids[k], RoomID: "r", LastActive: time.Unix(int64(round), 0)})
		}
		perm = rng.Perm(players)
		gameIDs, gameDeltas := make([]string, batch), make([]int32, batch)
		for i, k := range perm[:batch] {
			gameIDs[i], gameDeltas[i] = ids[k], int32(-sign)
		}

		var wg sync.WaitGroup
		var res flux.ApplyResult
		var applyErr, presenceErr, gameErr error
		wg.Go(func() { res, applyErr = store.Apply(ctx, writes) })
		wg.Go(func() { _, presenceErr = store.UpdatePresence(ctx, presence) })
		wg.Go(func() { _, gameErr = pool.Exec(ctx, w.gameSQL, gameIDs, gameDeltas) })
		wg.Wait()
		if applyErr != nil || presenceErr != nil {
			applyErrors++
			t.Errorf("round %d: apply %v, presence %v", round, applyErr, presenceErr)
			continue
		}
		if gameErr != nil {
			gameErrors++
			var pgErr *pgconn.PgError
			if errors.As(gameErr, &pgErr) {
				t.Errorf("round %d: the game's update failed with SQLSTATE %s", round, pgErr.Code)
			} else {
				t.Errorf("round %d: the game's update: %v", round, gameErr)
			}
		} else {
			for i, id := range gameIDs {
				want[id] += int(gameDeltas[i])
			}
		}
		if res.Written != batch {
			t.Fatalf("round %d: apply wrote %+v, want %d writes", round, res, batch)
		}
		for _, pw := range writes {
			ticks[pw.PlayerID] = pw.State.Tick
			want[pw.PlayerID] += pw.Delta
		}
	}
	got := w.lucidity()
	lost := 0
	for id, l := range want {
		if got[id] != l {
			lost++
		}
	}
	st := store.Stats()
	t.Logf("%d rounds over %d players: %d statements retried by the store, %d game updates failed, %d players off",
		rounds, players, st.Retries, gameErrors, lost)
	if st.Retries != 0 || gameErrors != 0 || applyErrors != 0 || lost != 0 {
		t.Fatalf("deadlocks or lost deltas: %d store retries, %d game errors, %d store errors, %d players off",
			st.Retries, gameErrors, applyErrors, lost)
	}
}
