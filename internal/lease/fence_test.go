package lease_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gamepersist/gamepersist/internal/lease"
)

// scores is a stand-in for flux's write: one row per player, guarded by the fence.
func (g *group) createScores(ctx context.Context) string {
	g.t.Helper()
	table := pgx.Identifier{g.schema, "scores"}.Sanitize()
	if _, err := g.pool.Exec(ctx, "CREATE TABLE "+table+" (id integer PRIMARY KEY, v integer NOT NULL); INSERT INTO "+
		table+" VALUES (1, 0)"); err != nil {
		g.t.Fatal(err)
	}
	return table
}

// fenceForms are the two ways a writer includes the fence: per row (FenceSQL) and once
// per statement (FencedShardsSQL in a WITH clause). Both take $1 shard, $2 member, $3
// epoch, and change the row only while (member, epoch) holds shard.
var fenceForms = []struct {
	name  string
	write func(schema, table string) string
}{
	{"per row", func(schema, table string) string {
		return "UPDATE " + table + " SET v = v + 1 WHERE id = 1 AND " + lease.FenceSQL(schema, "$1", "$2", "$3")
	}},
	{"per statement", func(schema, table string) string {
		return "WITH fence AS (" + lease.FencedShardsSQL(schema, "$2::text", "ARRAY[$1::integer]", "ARRAY[$3::bigint]") +
			") UPDATE " + table + " SET v = v + 1 FROM fence WHERE id = 1 AND fence.shard = $1"
	}},
}

func (g *group) write(ctx context.Context, sql, member string, epoch uint64) int64 {
	g.t.Helper()
	tag, err := g.pool.Exec(ctx, sql, 0, member, int64(epoch)) //nolint:gosec // test epochs are small
	if err != nil {
		g.t.Fatal(err)
	}
	return tag.RowsAffected()
}

// TestFenceRefusesDeposedOwner: after a takeover the old owner's late write through the
// fence changes nothing; the new owner's does; nobody else's does.
func TestFenceRefusesDeposedOwner(t *testing.T) {
	t.Parallel()
	for _, form := range fenceForms {
		t.Run(form.name, func(t *testing.T) {
			t.Parallel()
			testFenceRefusesDeposedOwner(t, form.write)
		})
	}
}

func testFenceRefusesDeposedOwner(t *testing.T, fencedWrite func(schema, table string) string) {
	g := newGroup(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	a := g.start("a")
	table := g.createScores(ctx)
	sql := fencedWrite(g.schema, table)
	oldEpoch := a.Owned()[0]
	if oldEpoch == 0 {
		t.Fatal("a holds no shard")
	}
	if n := g.write(ctx, sql, "a", oldEpoch); n != 1 {
		t.Fatalf("the owner's write changed %d rows, want 1", n)
	}

	a.Kill() // a stalls: it still believes it holds shard 0 until its local deadline
	b := g.start("b")
	waitFor(t, "b takes the shard", func() string { return g.fair(b) })
	newEpoch := b.Owned()[0]
	if newEpoch != oldEpoch+1 {
		t.Fatalf("new epoch %d, want %d", newEpoch, oldEpoch+1)
	}
	for _, w := range []struct {
		member string
		epoch  uint64
		want   int64
	}{
		{"a", oldEpoch, 0}, // the deposed owner's late write
		{"a", newEpoch, 0}, // the right epoch under the wrong member
		{"b", oldEpoch, 0}, // the new member with a stale epoch
		{"b", newEpoch, 1}, // the owner
	} {
		if n := g.write(ctx, sql, w.member, w.epoch); n != w.want {
			t.Errorf("write by %s at epoch %d changed %d rows, want %d", w.member, w.epoch, n, w.want)
		}
	}
	var v int
	if err := g.pool.QueryRow(ctx, "SELECT v FROM "+table+" WHERE id = 1").Scan(&v); err != nil || v != 2 {
		t.Fatalf("v = %d (%v), want 2: one write per owner", v, err)
	}
}

// TestTakeoverWaitsForFencedWriter: a write that passed the fence holds a lock on the lease
// row, so a takeover waits until that write commits, and the new owner then sees it. The
// owner's renewals meanwhile do not wait for the write (and the lock survives them). A
// write that arrives after the lease expired is refused even before anyone takes over.
func TestTakeoverWaitsForFencedWriter(t *testing.T) {
	t.Parallel()
	for _, form := range fenceForms {
		t.Run(form.name, func(t *testing.T) {
			t.Parallel()
			testTakeoverWaitsForFencedWriter(t, form.write)
		})
	}
}

func testTakeoverWaitsForFencedWriter(t *testing.T, fencedWrite func(schema, table string) string) {
	g := newGroup(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	defer cancel()
	a := g.start("a")
	b := g.start("b") // one shard: a has it, b waits with a target of 0
	table := g.createScores(ctx)
	sql := fencedWrite(g.schema, table)
	epoch := a.Owned()[0]
	if epoch == 0 || len(b.Owned()) != 0 {
		t.Fatalf("a holds %v, b holds %v", a.Owned(), b.Owned())
	}

	tx, err := g.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	tag, err := tx.Exec(ctx, sql, 0, "a", int64(epoch)) //nolint:gosec // small
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("a's write in flight: %v, %v", tag, err)
	}

	// While the write is open, a renews its lease: twice, so a whole cycle ran after it.
	renewedAt := a.Stats().Cycles
	waitFor(t, "a renews while its write is open", func() string {
		if s := a.Stats(); s.Cycles < renewedAt+2 || s.Owned != 1 {
			return fmt.Sprintf("stats %+v", s)
		}
		return ""
	})
	if l := g.leases()[0]; l.owner != "a" || l.epoch != epoch || !l.valid {
		t.Fatalf("after a's renewals the lease is %+v", l)
	}

	a.Kill() // a's lease expires; b's member count drops to 1 and it tries to take shard 0
	waitFor(t, "b's takeover waits for a's open write", func() string { return g.acquisitionWaiting(ctx) })
	if l := g.leases()[0]; l.owner != "a" || l.epoch != epoch {
		t.Fatalf("while a's write is open the lease moved: %+v", l)
	}
	if len(b.Owned()) != 0 {
		t.Fatalf("b holds %v while a's write is open", b.Owned())
	}
	// A second, later write of a's: the lease has expired by the wall clock, refused.
	if n := g.write(ctx, sql, "a", epoch); n != 0 {
		t.Fatalf("a's write after its lease expired changed %d rows", n)
	}

	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b takes the shard", func() string { return g.fair(b) })
	if got := b.Owned()[0]; got != epoch+1 {
		t.Fatalf("b's epoch %d, want %d", got, epoch+1)
	}
	var v int
	if err := g.pool.QueryRow(ctx, "SELECT v FROM "+table+" WHERE id = 1").Scan(&v); err != nil || v != 1 {
		t.Fatalf("v = %d (%v), want a's one committed write", v, err)
	}
}

// acquisitionWaiting returns "" when a member's acquisition statement on this group's
// lease table waits for a row lock.
func (g *group) acquisitionWaiting(ctx context.Context) string {
	g.t.Helper()
	var waiting int
	if err := g.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE wait_event_type = 'Lock' AND query LIKE '-- lease: acquire%' AND strpos(query, $1) > 0`,
		pgx.Identifier{g.schema, lease.LeasesTable}.Sanitize()).Scan(&waiting); err != nil {
		g.t.Fatal(err)
	}
	if waiting == 0 {
		return "no acquisition waiting on a lease row"
	}
	return ""
}
