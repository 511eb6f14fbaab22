package lease_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/internal/lease"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// Short leases keep the tests quick; nothing asserts a duration.
const (
	testTTL   = 300 * time.Millisecond
	testRenew = 100 * time.Millisecond
	// waitLimit is the generous deadline of every wait for a condition.
	waitLimit = 30 * time.Second
)

// group is one lease schema shared by the members of a test.
type group struct {
	t      testing.TB
	pool   *pgxpool.Pool
	schema string
	shards int
}

func newGroup(t testing.TB, shards int) *group {
	t.Helper()
	pool, schema := testdb.NewPool(t)
	return &group{t: t, pool: pool, schema: schema, shards: shards}
}

func (g *group) config(id string) lease.Config {
	return lease.Config{MemberID: id, Schema: g.schema, Shards: g.shards, TTL: testTTL, RenewEvery: testRenew}
}

// start migrates, starts a member and closes it when the test ends.
func (g *group) start(id string) *lease.Manager {
	g.t.Helper()
	m := g.newManager(g.config(id))
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		g.t.Fatalf("start %s: %v", id, err)
	}
	return m
}

func (g *group) newManager(cfg lease.Config) *lease.Manager {
	g.t.Helper()
	m, err := lease.New(g.pool, cfg)
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { _ = m.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := m.Migrate(ctx); err != nil {
		g.t.Fatalf("migrate: %v", err)
	}
	return m
}

// dbLease is one row of the lease table.
type dbLease struct {
	owner string // "" when free
	epoch uint64
	valid bool // expires_at > now()
}

// leases reads the lease table.
func (g *group) leases() map[int]dbLease {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	rows, err := g.pool.Query(ctx, "SELECT shard, coalesce(owner, ''), epoch, expires_at > now() FROM "+
		pgx.Identifier{g.schema, lease.LeasesTable}.Sanitize())
	if err != nil {
		g.t.Fatal(err)
	}
	defer rows.Close()
	out := map[int]dbLease{}
	for rows.Next() {
		var (
			shard int
			l     dbLease
		)
		if err := rows.Scan(&shard, &l.owner, &l.epoch, &l.valid); err != nil {
			g.t.Fatal(err)
		}
		out[shard] = l
	}
	if err := rows.Err(); err != nil {
		g.t.Fatal(err)
	}
	return out
}

// fair reports why the members' ownership is not yet disjoint, complete and fair (each
// holds Shards/len or one more, and the table agrees), or "" when it is.
func (g *group) fair(members ...*lease.Manager) string {
	g.t.Helper()
	owner := map[int]string{}
	floor := g.shards / len(members)
	for _, m := range members {
		owned := m.Owned()
		extra := g.shards%len(members) != 0
		if n := len(owned); n != floor && (n != floor+1 || !extra) {
			return fmt.Sprintf("%s holds %d, want %d (or one more while shards don't divide evenly)", m.MemberID(), n, floor)
		}
		for shard := range owned {
			if other, dup := owner[shard]; dup {
				return fmt.Sprintf("shard %d held by %s and %s", shard, other, m.MemberID())
			}
			owner[shard] = m.MemberID()
		}
	}
	if len(owner) != g.shards {
		return fmt.Sprintf("%d of %d shards held", len(owner), g.shards)
	}
	table := g.leases()
	for _, m := range members {
		for shard, epoch := range m.Owned() {
			if l := table[shard]; l.owner != m.MemberID() || l.epoch != epoch || !l.valid {
				return fmt.Sprintf("shard %d: %s believes epoch %d, the table says %+v", shard, m.MemberID(), epoch, l)
			}
		}
	}
	return ""
}

// waitFor polls cond until it returns "" or the generous deadline passes.
func waitFor(t testing.TB, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s: %s", what, waitLimit, why)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
