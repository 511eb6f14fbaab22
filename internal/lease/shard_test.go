package lease_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/internal/lease"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// TestShardOfIsStable freezes the mapping: stored data depends on it, so a change of
// ShardOf must fail here.
func TestShardOfIsStable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id        string
		of64, of7 int
	}{
		{"", 25, 4},
		{"abc", 24, 2},
		{"player-1", 10, 4},
		{"player-2", 1, 1},
		{"Élodie", 23, 3},
		{"00000000-0000-0000-0000-000000000001", 46, 6},
	} {
		if got := lease.ShardOf(tc.id, 64); got != tc.of64 {
			t.Errorf("ShardOf(%q, 64) = %d, want %d", tc.id, got, tc.of64)
		}
		if got := lease.ShardOf(tc.id, 7); got != tc.of7 {
			t.Errorf("ShardOf(%q, 7) = %d, want %d", tc.id, got, tc.of7)
		}
		if got := lease.ShardOf(tc.id, 1); got != 0 {
			t.Errorf("ShardOf(%q, 1) = %d, want 0", tc.id, got)
		}
	}
}

// TestShardOfIsEven checks the spread of sequential and uuid-like ids: every shard within
// 15 % of the mean (about five standard deviations at 1,000 ids a shard).
func TestShardOfIsEven(t *testing.T) {
	t.Parallel()
	for _, shards := range []int{64, 7} {
		for _, format := range []string{"player-%d", "00000000-0000-4000-8000-%012d"} {
			counts := make([]int, shards)
			n := 1000 * shards
			for i := range n {
				counts[lease.ShardOf(fmt.Sprintf(format, i), shards)]++
			}
			for s, c := range counts {
				if c < 850 || c > 1150 {
					t.Errorf("%d shards, ids %q: shard %d has %d ids, want 1000 ± 150", shards, format, s, c)
				}
			}
		}
	}
}

// TestShardSQLMatchesShardOf: a load query that filters by ShardSQL reads exactly the
// players ShardOf assigns.
func TestShardSQLMatchesShardOf(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids := []string{"", "abc", "Élodie", "名前", "a'b", "x\x01y"}
	for i := range 2000 {
		ids = append(ids, fmt.Sprintf("player-%d", i))
	}
	for _, shards := range []int{64, 7, 1, lease.MaxShards} {
		rows, err := pool.Query(ctx, "SELECT id, "+lease.ShardSQL("id", shards)+" FROM unnest($1::text[]) AS u(id)", ids)
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for rows.Next() {
			var (
				id    string
				shard int
			)
			if err := rows.Scan(&id, &shard); err != nil {
				t.Fatal(err)
			}
			if want := lease.ShardOf(id, shards); shard != want {
				t.Errorf("%d shards: SQL puts %q in %d, ShardOf in %d", shards, id, shard, want)
			}
			seen++
		}
		if err := rows.Err(); err != nil || seen != len(ids) {
			t.Fatalf("%d shards: %d rows, err %v", shards, seen, err)
		}
	}
}
