package lease_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gamepersist/gamepersist/internal/lease"
)

func BenchmarkShardOf(b *testing.B) {
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("player-%d", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = lease.ShardOf(ids[i%len(ids)], lease.DefaultShards)
	}
}

// benchMember starts one member holding every shard, with a TTL long enough that its
// own loop stays out of the measurement.
func benchMember(b *testing.B, shards int) (*group, *lease.Manager) {
	g := newGroup(b, shards)
	cfg := g.config("bench")
	cfg.TTL, cfg.RenewEvery = time.Minute, 20*time.Second
	m := g.newManager(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		b.Fatal(err)
	}
	if len(m.Owned()) != shards {
		b.Fatalf("holds %d of %d", len(m.Owned()), shards)
	}
	return g, m
}

// BenchmarkSteadyCycle is one member's renewal cycle while it holds every shard:
// heartbeat, sweep, renew, live members in one round trip, nothing to take or release.
func BenchmarkSteadyCycle(b *testing.B) {
	for _, shards := range []int{64, 1024} {
		b.Run(fmt.Sprintf("shards=%d", shards), func(b *testing.B) {
			_, m := benchMember(b, shards)
			ctx := context.Background()
			for b.Loop() {
				if err := m.Cycle(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFencedWrite compares one statement updating 1,000 player rows of 64 shards
// without a fence, with FenceSQL on every row, and with FencedShardsSQL once (the shape
// of flux's apply).
func BenchmarkFencedWrite(b *testing.B) {
	g, m := benchMember(b, lease.DefaultShards)
	ctx := context.Background()
	table := pgx.Identifier{g.schema, "players"}.Sanitize()
	if _, err := g.pool.Exec(ctx, "CREATE TABLE "+table+" (id text PRIMARY KEY, v integer NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	const players = 1000
	type row struct {
		id    string
		shard int32
	}
	rows := make([]row, players)
	for i := range rows {
		id := fmt.Sprintf("player-%d", i)
		rows[i] = row{id, int32(lease.ShardOf(id, lease.DefaultShards))} //nolint:gosec // < 64
	}
	// Ascending shard order: the fence's row locks are taken in the order the Manager uses.
	slices.SortFunc(rows, func(a, b row) int { return int(a.shard - b.shard) })
	owned := m.Owned()
	ids, shards, epochs := make([]string, players), make([]int32, players), make([]int64, players)
	for i, r := range rows {
		ids[i], shards[i], epochs[i] = r.id, r.shard, int64(owned[int(r.shard)]) //nolint:gosec // small
	}
	if _, err := g.pool.Exec(ctx, "INSERT INTO "+table+" SELECT id, 0 FROM unnest($1::text[]) AS u(id)", ids); err != nil {
		b.Fatal(err)
	}
	var ownedShards []int32
	var ownedEpochs []int64
	for s := range lease.DefaultShards {
		ownedShards = append(ownedShards, int32(s))        //nolint:gosec // < 64
		ownedEpochs = append(ownedEpochs, int64(owned[s])) //nolint:gosec // small
	}
	base := "UPDATE " + table + " p SET v = p.v + 1 FROM unnest($1::text[], $2::integer[], $3::bigint[]) WITH ORDINALITY AS u(id, shard, epoch, ord) WHERE p.id = u.id"
	for _, tc := range []struct {
		name string
		sql  string
		args []any
	}{
		{"unfenced", base, []any{ids, shards, epochs}},
		{"fenced per row", base + " AND " + m.FenceSQL("u.shard", "$4::text", "u.epoch"), []any{ids, shards, epochs, m.MemberID()}},
		{"fenced per statement", "WITH fence AS (" + m.FencedShardsSQL("$1::text", "$2::integer[]", "$3::bigint[]") + ") " +
			"UPDATE " + table + " p SET v = p.v + 1 FROM unnest($4::text[], $5::integer[]) AS u(id, shard) " +
			"JOIN fence ON fence.shard = u.shard WHERE p.id = u.id",
			[]any{m.MemberID(), ownedShards, ownedEpochs, ids, shards}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			// Each round leaves 1,000 dead rows: start every variant from a vacuumed table.
			if _, err := g.pool.Exec(ctx, "VACUUM "+table); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				tag, err := g.pool.Exec(ctx, tc.sql, tc.args...)
				if err != nil {
					b.Fatal(err)
				}
				if tag.RowsAffected() != players {
					b.Fatalf("%d rows, want %d", tag.RowsAffected(), players)
				}
			}
		})
	}
}
