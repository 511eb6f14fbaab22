package lease_test

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/internal/lease"
)

// Example shows the shape a Runner takes on top of a Manager: load only the owned shards'
// players, and write under the fence, reloading when ownership changes or a write is
// refused. (Compiled, not run: it needs a database and a players table.)
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/postgres")
	if err != nil {
		return
	}
	defer pool.Close() // the caller's pool: the Manager never closes it

	m, err := lease.New(pool, lease.Config{Schema: "game"})
	if err != nil {
		return
	}
	if err := m.Migrate(ctx); err != nil {
		return
	}
	if err := m.Start(ctx); err != nil {
		_ = m.Close()
		return
	}
	defer func() { _ = m.Close() }() // releases every shard at once

	load := "SELECT player_id FROM game.players WHERE " + lease.ShardSQL("player_id", m.Shards()) + " = ANY($1)"
	write := "WITH fence AS (" + m.FencedShardsSQL("$1", "$2", "$3") + ") " +
		"UPDATE game.players p SET lucidity = p.lucidity + u.delta " +
		"FROM unnest($4::text[], $5::integer[], $6::integer[]) AS u(id, shard, delta) " +
		"JOIN fence ON fence.shard = u.shard WHERE p.player_id = u.id"

	for { // one tick per change here; a real Runner ticks on its own cadence
		select {
		case <-ctx.Done():
			return
		case <-m.Changes():
		}
		owned := m.Owned()
		shards := slices.Sorted(maps.Keys(owned))
		epochs := make([]int64, len(shards))
		for i, s := range shards {
			epochs[i] = int64(owned[s]) //nolint:gosec // epochs fit in a bigint
		}
		rows, err := pool.Query(ctx, load, shards)
		if err != nil {
			return
		}
		rows.Close()
		// … evaluate, then one write; rows of shards lost meanwhile change nothing.
		tag, err := pool.Exec(ctx, write, m.MemberID(), shards, epochs, []string{}, []int32{}, []int32{})
		if err != nil && !errors.Is(err, context.Canceled) {
			return
		}
		_ = tag.RowsAffected() // fewer than sent: a shard moved; reload from the committed state
	}
}
