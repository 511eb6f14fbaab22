package lease_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/internal/lease"
)

// heldDB wraps the pool and holds every batch (the renewal's round trip) while closed.
type heldDB struct {
	*pgxpool.Pool
	mu   sync.Mutex
	gate chan struct{} // nil: batches pass
}

func (d *heldDB) hold() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gate = make(chan struct{})
}

func (d *heldDB) release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	close(d.gate)
	d.gate = nil
}

func (d *heldDB) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	d.mu.Lock()
	gate := d.gate
	d.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done(): // the pool then reports the context's error
		}
	}
	return d.Pool.SendBatch(ctx, b)
}

// TestStalledMemberLosesItsLeaseAndRetakesItAtANewEpoch: a member whose renewals cannot
// reach the database drops the lease from Owned, and once they can, takes the shard again
// under a new epoch: an epoch is one uninterrupted tenure.
func TestStalledMemberLosesItsLeaseAndRetakesItAtANewEpoch(t *testing.T) {
	t.Parallel()
	g := newGroup(t, 1)
	db := &heldDB{Pool: g.pool}
	m, err := lease.New(db, g.config("stalled"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := m.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	epoch := m.Owned()[0]
	<-m.Changes() // Start's acquisition

	db.hold()
	waitFor(t, "the lease expires while renewals are held", func() string {
		if l := g.leases()[0]; l.valid || len(m.Owned()) != 0 {
			return "still held"
		}
		if m.Stats().CycleErrors == 0 { // the held renewal gave up: the lease lapsed locally
			return "no renewal timed out yet"
		}
		return ""
	})
	db.release()
	waitFor(t, "the member takes the shard again", func() string {
		if len(m.Owned()) == 0 {
			return "not yet"
		}
		return ""
	})
	if got := m.Owned()[0]; got != epoch+1 {
		t.Fatalf("retaken at epoch %d, want %d", got, epoch+1)
	}
	select {
	case <-m.Changes():
	default:
		t.Fatal("no change signalled")
	}
	if s := m.Stats(); s.Lost != 1 || s.Acquired != 2 {
		t.Fatalf("stats %+v: want 1 lost and 2 acquired", s)
	}
}

// TestCloseWhileTheDatabaseIsUnreachable: Close gives up after CloseTimeout and returns
// the error; the leases then expire after the TTL, and a later Close returns the same.
func TestCloseWhileTheDatabaseIsUnreachable(t *testing.T) {
	t.Parallel()
	g := newGroup(t, 2)
	db := &heldDB{Pool: g.pool}
	cfg := g.config("unreachable")
	cfg.CloseTimeout = 100 * time.Millisecond
	m, err := lease.New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := m.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	db.hold()
	defer db.release()
	err = m.Close()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v, want the release's deadline", err)
	}
	if len(m.Owned()) != 0 {
		t.Fatal("a closed member still reports shards")
	}
	if again := m.Close(); !errors.Is(again, context.DeadlineExceeded) {
		t.Fatalf("second Close: %v, want the first's outcome", again)
	}
	waitFor(t, "the unreleased leases expire", func() string {
		for shard, l := range g.leases() {
			if l.valid {
				return fmt.Sprintf("shard %d still %+v", shard, l)
			}
		}
		return ""
	})
}
