package lease_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gamepersist/gamepersist/internal/lease"
)

func TestMembersConvergeToFairDisjointCompleteOwnership(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("%d members", n), func(t *testing.T) {
			t.Parallel()
			g := newGroup(t, lease.DefaultShards)
			var members []*lease.Manager
			for i := range n {
				members = append(members, g.start(fmt.Sprintf("member-%d", i)))
			}
			waitFor(t, "fair ownership", func() string { return g.fair(members...) })
			for _, m := range members {
				select {
				case <-m.Changes():
				default:
					t.Errorf("%s: no change signalled after it took shards", m.MemberID())
				}
				if s := m.Stats(); s.Members != n || s.Owned != len(m.Owned()) || s.Acquired == 0 || s.Cycles == 0 {
					t.Errorf("%s: stats %+v", m.MemberID(), s)
				}
			}
		})
	}
}

// TestJoiningMemberGetsWorkWithinTwoCycles: the holders let go of surplus at their first
// cycle that sees the newcomer, and the newcomer takes it at its next one. Counted in
// cycles, not time: each side completes at most two cycles after the step it waits for.
func TestJoiningMemberGetsWorkWithinTwoCycles(t *testing.T) {
	t.Parallel()
	g := newGroup(t, lease.DefaultShards)
	first := g.start("a")
	waitFor(t, "one member holds all", func() string { return g.fair(first) })

	before := first.Stats().Cycles
	second := g.start("b") // its heartbeat is committed when Start returns
	var atRelease uint64
	waitFor(t, "the holder lets go of its surplus", func() string {
		s := first.Stats() // one snapshot: the cycle count when Owned dropped is an upper bound
		if s.Owned > lease.DefaultShards/2 {
			return fmt.Sprintf("holder still has %d", s.Owned)
		}
		atRelease = s.Cycles
		return ""
	})
	if c := atRelease - before; c > 2 {
		t.Errorf("the holder let go after %d cycles, want at most 2", c)
	}
	waitFor(t, "the release is committed", func() string {
		held := 0
		for _, l := range g.leases() {
			if l.owner == "a" {
				held++
			}
		}
		if held > lease.DefaultShards/2 {
			return fmt.Sprintf("the table still gives a %d", held)
		}
		return ""
	})
	newcomer := second.Stats().Cycles
	var atTake uint64
	waitFor(t, "the newcomer takes its share", func() string {
		s := second.Stats()
		if s.Owned < lease.DefaultShards/2 {
			return fmt.Sprintf("newcomer has %d", s.Owned)
		}
		atTake = s.Cycles
		return ""
	})
	if c := atTake - newcomer; c > 2 {
		t.Errorf("the newcomer took its share %d cycles after the release, want at most 2", c)
	}
	waitFor(t, "fair ownership of two", func() string { return g.fair(first, second) })

	third := g.start("c")
	waitFor(t, "fair ownership of three", func() string { return g.fair(first, second, third) })
}

// TestClosedMemberShardsMoveAtOnce: Close releases everything, so the survivor takes the
// shards at its next cycle rather than after the TTL.
func TestClosedMemberShardsMoveAtOnce(t *testing.T) {
	t.Parallel()
	g := newGroup(t, lease.DefaultShards)
	a, b := g.start("a"), g.start("b")
	waitFor(t, "fair ownership of two", func() string { return g.fair(a, b) })
	bShards := b.Owned()

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if len(b.Owned()) != 0 {
		t.Fatal("a closed member still reports shards")
	}
	for shard := range bShards {
		if l := g.leases()[shard]; l.owner == "b" {
			t.Fatalf("after Close shard %d is still b's: %+v", shard, l)
		}
	}
	before := a.Stats().Cycles
	var atTake uint64
	waitFor(t, "the survivor takes b's shards", func() string {
		s := a.Stats()
		if s.Owned < lease.DefaultShards {
			return fmt.Sprintf("survivor has %d", s.Owned)
		}
		atTake = s.Cycles
		return ""
	})
	waitFor(t, "the survivor holds all", func() string { return g.fair(a) })
	if c := atTake - before; c > 2 {
		t.Errorf("the survivor took the shards after %d cycles, want at most 2", c)
	}
	// Each moved shard got a new epoch.
	for shard, epoch := range a.Owned() {
		if old, ok := bShards[shard]; ok && epoch <= old {
			t.Errorf("shard %d moved at epoch %d, b had %d", shard, epoch, old)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := b.Start(context.Background()); !errors.Is(err, lease.ErrClosed) {
		t.Fatalf("Start after Close: %v, want ErrClosed", err)
	}
	if err := b.Migrate(context.Background()); !errors.Is(err, lease.ErrClosed) {
		t.Fatalf("Migrate after Close: %v, want ErrClosed", err)
	}
}

// TestKilledMemberShardsMoveAfterTTL: a member that stops renewing keeps its shards until
// its leases expire (checked on the database's clock), then the survivor takes them.
func TestKilledMemberShardsMoveAfterTTL(t *testing.T) {
	t.Parallel()
	g := newGroup(t, lease.DefaultShards)
	a, b := g.start("a"), g.start("b")
	waitFor(t, "fair ownership of two", func() string { return g.fair(a, b) })

	b.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	// The last expiry of b's leases, on the database's clock, after its last renewal.
	var lastExpiry time.Time
	if err := g.pool.QueryRow(ctx, "SELECT max(expires_at) FROM "+pgx.Identifier{g.schema, lease.LeasesTable}.Sanitize()+
		" WHERE owner = 'b'").Scan(&lastExpiry); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the survivor holds all", func() string { return g.fair(a) })

	rows, err := g.pool.Query(ctx, "SELECT shard, acquired_at FROM "+pgx.Identifier{g.schema, lease.LeasesTable}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	acquired, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct {
		Shard int
		At    time.Time
	}])
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	for _, r := range acquired {
		if !r.At.Before(lastExpiry) {
			moved++
		}
	}
	// b held 32; none of them may move before its lease expired. a's own 32 were taken
	// before b was killed.
	if moved != lease.DefaultShards/2 {
		t.Fatalf("%d shards acquired after b's leases expired, want b's %d (none before)", moved, lease.DefaultShards/2)
	}
	if s := a.Stats(); s.Members != 1 {
		t.Fatalf("survivor counts %d members after b expired", s.Members)
	}
}

// TestNoShardIsHeldByTwoMembersAtOnce polls every member's Owned and the lease table while
// members join, leave cleanly and are killed, round after round, and checks that no shard
// is ever held by two members at one instant, that a (shard, epoch) names one owner, and
// that epochs only grow.
func TestNoShardIsHeldByTwoMembersAtOnce(t *testing.T) {
	t.Parallel()
	g := newGroup(t, 16)
	var (
		started = []*lease.Manager{g.start("m0"), g.start("m1")}
		live    = slices.Clone(started)
		polls   int
		report  = make(chan error, 1)
		stop    = make(chan struct{})
		polled  = make(chan []*lease.Manager, 1) // every member ever started: a killed one still believes
	)
	polled <- started
	go func() { report <- g.pollExclusive(polled, stop, &polls) }()
	join := func(id string) {
		m := g.start(id)
		started = append(started, m)
		live = append(live, m)
		<-polled
		polled <- slices.Clone(started)
	}
	waitFair := func() { waitFor(t, "fair ownership", func() string { return g.fair(live...) }) }

	waitFair()
	for round := range 3 {
		join(fmt.Sprintf("r%d-a", round))
		waitFair()
		join(fmt.Sprintf("r%d-b", round))
		waitFair()
		if err := live[0].Close(); err != nil { // a clean leave
			t.Fatal(err)
		}
		live = live[1:]
		waitFair()
		live[0].Kill() // its Owned decays by its local deadline, as a stalled process's would
		live = live[1:]
		waitFair()
	}

	close(stop)
	if err := <-report; err != nil {
		t.Fatal(err)
	}
	if polls < 100 {
		t.Fatalf("the poller ran %d rounds, too few to mean anything", polls)
	}
}

// pollExclusive reads, in a loop, the members' Owned twice in order and the lease table.
// Between a member's two reads (same epoch both times: it held the shard throughout) no
// other member read in that interval may hold the shard.
func (g *group) pollExclusive(live chan []*lease.Manager, stop chan struct{}, polls *int) error {
	type tenure struct {
		shard int
		epoch uint64
	}
	ownerOf := map[tenure]string{}
	lastEpoch := map[int]uint64{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	defer cancel()
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		ms := <-live
		live <- ms
		first := make([]map[int]uint64, len(ms))
		second := make([]map[int]uint64, len(ms))
		for i, m := range ms {
			first[i] = m.Owned()
		}
		for i, m := range ms {
			second[i] = m.Owned()
		}
		for i := range ms {
			for shard, epoch := range first[i] {
				if second[i][shard] != epoch {
					continue
				}
				// ms[i] held shard throughout [first[i], second[i]], which contains
				// first[j] for j > i and second[j] for j < i.
				for j := range ms {
					if j == i {
						continue
					}
					seen := first[j]
					if j < i {
						seen = second[j]
					}
					if e, ok := seen[shard]; ok {
						return fmt.Errorf("shard %d held by %s (epoch %d) and %s (epoch %d) at once",
							shard, ms[i].MemberID(), epoch, ms[j].MemberID(), e)
					}
				}
			}
		}
		rows, err := g.pool.Query(ctx, "SELECT shard, owner, epoch FROM "+pgx.Identifier{g.schema, lease.LeasesTable}.Sanitize()+
			" WHERE owner IS NOT NULL")
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				t     tenure
				owner string
			)
			if err := rows.Scan(&t.shard, &owner, &t.epoch); err != nil {
				rows.Close()
				return err
			}
			if prev, ok := ownerOf[t]; ok && prev != owner {
				rows.Close()
				return fmt.Errorf("shard %d epoch %d owned by %s and later by %s", t.shard, t.epoch, prev, owner)
			}
			ownerOf[t] = owner
			if t.epoch < lastEpoch[t.shard] {
				rows.Close()
				return fmt.Errorf("shard %d epoch went back from %d to %d", t.shard, lastEpoch[t.shard], t.epoch)
			}
			lastEpoch[t.shard] = t.epoch
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		*polls++
	}
}

// TestSecondLiveMemberWithSameIDIsRefused: two processes configured with one member id
// would share leases; the second is refused, and its Close leaves the first's leases.
func TestSecondLiveMemberWithSameIDIsRefused(t *testing.T) {
	t.Parallel()
	g := newGroup(t, 8)
	first := g.start("same")
	waitFor(t, "one member holds all", func() string { return g.fair(first) })

	second := g.newManager(g.config("same"))
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := second.Start(ctx); !errors.Is(err, lease.ErrMemberIDInUse) {
		t.Fatalf("second Start: %v, want ErrMemberIDInUse", err)
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	for shard, l := range g.leases() {
		if l.owner != "same" || !l.valid {
			t.Fatalf("after the refused member closed, shard %d is %+v", shard, l)
		}
	}
	if got := len(first.Owned()); got != 8 {
		t.Fatalf("first holds %d, want 8", got)
	}
}

func TestShardCountMismatchIsRefused(t *testing.T) {
	t.Parallel()
	g := newGroup(t, 8)
	g.start("eight")
	cfg := g.config("sixteen")
	cfg.Shards = 16
	m := g.newManager(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := m.Start(ctx); !errors.Is(err, lease.ErrShardCountMismatch) {
		t.Fatalf("Start: %v, want ErrShardCountMismatch", err)
	}
	if len(m.Owned()) != 0 {
		t.Fatal("a refused member holds shards")
	}
}

// TestRunReleasesWhenItsContextEnds: Run blocks; cancelling its context closes the
// Manager, which releases everything.
func TestRunReleasesWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	g := newGroup(t, 8)
	m := g.newManager(g.config("runner"))
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- m.Run(ctx) }()
	waitFor(t, "Run holds all", func() string { return g.fair(m) })
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for shard, l := range g.leases() {
		if l.owner != "" {
			t.Fatalf("after Run returned, shard %d is %+v", shard, l)
		}
	}
}

// TestSchemaNameIsQuoted: a schema name with SQL in it is an identifier, nothing more.
func TestSchemaNameIsQuoted(t *testing.T) {
	t.Parallel()
	g := newGroup(t, 4)
	g.schema = `lease"; DROP TABLE x; --` + g.schema[len(g.schema)-6:]
	t.Cleanup(func() {
		_, _ = g.pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{g.schema}.Sanitize()+" CASCADE")
	})
	m := g.start("quoted")
	waitFor(t, "one member holds all", func() string { return g.fair(m) })
}

// TestAcquisitionLeavesALeaseTakenMeanwhile: a member that picked an expired shard as a
// candidate must not take it when another holder took it first (ON CONFLICT re-checks
// the expiry on the row it waited for). Here the rival is a transaction of the test's
// that takes the expired lease and holds the row while the member's acquisition waits.
func TestAcquisitionLeavesALeaseTakenMeanwhile(t *testing.T) {
	t.Parallel()
	g := newGroup(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	defer cancel()
	a := g.start("a")
	c := g.start("c")
	epoch := a.Owned()[0]
	table := pgx.Identifier{g.schema, lease.LeasesTable}.Sanitize()

	// The rival locks the lease row while a's lease is still valid, so that c cannot
	// take the shard before the rival does.
	tx, err := g.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, "SELECT 1 FROM "+table+" WHERE shard = 0 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	a.Kill()
	waitFor(t, "a's lease expires", func() string {
		if l := g.leases()[0]; l.valid || l.owner != "a" {
			return fmt.Sprintf("lease %+v", l)
		}
		return ""
	})
	if _, err := tx.Exec(ctx, "UPDATE "+table+" SET owner = 'rival', epoch = epoch + 1, acquired_at = now(), "+
		"expires_at = now() + interval '1 hour' WHERE shard = 0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "c's acquisition waits for the rival", func() string { return g.acquisitionWaiting(ctx) })
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	after := c.Stats().Cycles
	waitFor(t, "two more cycles of c", func() string {
		if c.Stats().Cycles < after+2 {
			return "waiting"
		}
		return ""
	})
	if l := g.leases()[0]; l.owner != "rival" || l.epoch != epoch+1 {
		t.Fatalf("the lease is %+v, want the rival's at epoch %d", l, epoch+1)
	}
	if owned := c.Owned(); len(owned) != 0 {
		t.Fatalf("c believes it holds %v", owned)
	}
}

// TestMembersStartingTogetherConverge: five members started at once, contending for the
// same free shards, still end disjoint, complete and fair.
func TestMembersStartingTogetherConverge(t *testing.T) {
	t.Parallel()
	g := newGroup(t, lease.DefaultShards)
	members := make([]*lease.Manager, 5)
	for i := range members {
		members[i] = g.newManager(g.config(fmt.Sprintf("together-%d", i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	errs := make(chan error, len(members))
	for _, m := range members {
		go func() { errs <- m.Start(ctx) }()
	}
	for range members {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "fair ownership of five", func() string { return g.fair(members...) })
}
