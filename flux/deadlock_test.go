package flux_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

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

// TestNoDeadlockWithGameWrites runs 200 rounds of three statements at once over the same
// 3,000 players, each writing 600 of them listed in a random order (so every pair of
// statements shares about 120 rows): a flux Apply, the game's
// UpdatePresence, and a game-style multi-row lucidity UPDATE. Every statement must succeed
// without a single deadlock (none retried by the store, none returned to the game), and
// every delta of both writers must be kept.
func TestNoDeadlockWithGameWrites(t *testing.T) {
	t.Parallel()
	const players, rounds, batch = 3000, 200, 600
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
	rng := rand.New(rand.NewPCG(1, 2))
	ticks := make(map[string]int64, players) // each player's stored flux tick
	want := make(map[string]int, players)    // each player's expected lucidity
	for _, id := range ids {
		want[id] = 50
	}
	var gameErrors, applyErrors int
	for round := range rounds {
		if round%25 == 0 { // 200 rounds of updates bloat 3,000 rows: keep the scans short
			if _, err := pool.Exec(ctx, `VACUUM flux_players, flux_state`); err != nil {
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
		wg.Go(func() { _, gameErr = pool.Exec(ctx, gameAdjustSQL, gameIDs, gameDeltas) })
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
		for _, w := range writes {
			ticks[w.PlayerID] = w.State.Tick
			want[w.PlayerID] += w.Delta
		}
	}
	got := dbLucidity(t, pool)
	lost := 0
	for id, l := range want {
		if got[id].Lucidity != l {
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
