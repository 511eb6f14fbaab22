package flux_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/gamepersist/gamepersist/flux"
)

// BenchmarkApplyAuditedGameSchema: one Apply of 2,000 writes (each changing lucidity by
// ±1, none clamped) per op on a game's own tables (mudSchema, uuid ids, lucidity in a
// table of its own) with Audit on and the adjustment log's foreign key to the players:
// the cost of the audited write path, lock passes included.
func BenchmarkApplyAuditedGameSchema(b *testing.B) {
	const players = 2000
	pool, game, lib := mudWorld(b)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO `+game+`.players
		SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, i::text, 'r', $2, $2, false
		FROM generate_series(1, $1) AS i`, players, rtNight); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO `+game+`.player_lucidity SELECT id, 50, 'uneasy', NULL, NULL FROM `+game+`.players`); err != nil {
		b.Fatal(err)
	}
	store := postgresPlayers(b, pool, mudConfig(game, lib))
	writes := make([]flux.PlayerWrite, players)
	for i := range writes {
		writes[i] = write(fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1), 0, 1, 1)
	}
	b.ResetTimer()
	for n := range b.N {
		sign := 1 - 2*(n%2)
		for i := range writes {
			w := &writes[i]
			w.FromTick, w.State.Tick, w.Delta = int64(n), int64(n+1), sign
		}
		res, err := store.Apply(ctx, writes)
		if err != nil || res.LucidityUpdated != players {
			b.Fatalf("apply %d: %+v %v", n, res, err)
		}
	}
}
