package roomsync_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/natsbridge/roomsync"
	"github.com/gamepersist/gamepersist/roomstore"
)

// invCtx returns a context for one test's calls, canceled at its end.
func invCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// invDial opens a NATS connection to url, closed at the end of t.
func invDial(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// invSharedStores returns n Postgres stores, each on its own pool, all on one fresh schema
// (as n game-server processes on one database would be). The table is migrated once.
func invSharedStores(t testing.TB, n int) []*roomstore.Postgres {
	t.Helper()
	connString, _ := testdb.NewSchema(t)
	ctx := invCtx(t)
	stores := make([]*roomstore.Postgres, 0, n)
	for i := range n {
		pool, err := pgxpool.New(ctx, connString)
		if err != nil {
			t.Fatalf("pool: %v", err)
		}
		t.Cleanup(pool.Close)
		store, err := roomstore.NewPostgres(pool, roomstore.PostgresConfig{})
		if err != nil {
			t.Fatalf("NewPostgres: %v", err)
		}
		t.Cleanup(func() { _ = store.Close() })
		if i == 0 {
			if err := store.Migrate(ctx); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
		}
		stores = append(stores, store)
	}
	return stores
}

// invNode is one game-server process: its cache over its store, and its invalidator on
// its own NATS connection.
type invNode struct {
	nc     *nats.Conn
	inv    *roomsync.RoomInvalidator
	cached *roomstore.Cached
}

// newInvNode wires a node in the documented order (invalidator, cache with AfterWrite,
// Attach) and closes the invalidator, then the cache, at the end of t.
func newInvNode(t testing.TB, store roomstore.RoomStore, nc *nats.Conn, cacheCfg roomstore.CacheConfig, invCfg roomsync.InvalidatorConfig) *invNode {
	t.Helper()
	inv, err := roomsync.NewRoomInvalidator(nc, invCfg)
	if err != nil {
		t.Fatalf("NewRoomInvalidator: %v", err)
	}
	cacheCfg.AfterWrite = inv.Publish
	cached, err := roomstore.NewCached(store, cacheCfg)
	if err != nil {
		_ = inv.Close()
		t.Fatalf("NewCached: %v", err)
	}
	t.Cleanup(func() { _ = cached.Close() })
	t.Cleanup(func() { _ = inv.Close() }) // runs first
	if err := inv.Attach(invCtx(t), cached); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	return &invNode{nc: nc, inv: inv, cached: cached}
}

// invWaitUntil polls cond every millisecond until it holds or limit passes; it reports
// whether cond held.
func invWaitUntil(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// mustGet reads id through node's cache.
func (n *invNode) mustGet(t testing.TB, id string) roomstore.Room {
	t.Helper()
	r, err := n.cached.GetRoom(invCtx(t), id)
	if err != nil {
		t.Fatalf("GetRoom(%q): %v", id, err)
	}
	return r
}

// readCached reads id on node twice and checks the second read was a cache hit, so that
// a later fresh read on this node can only come from an invalidation (or the TTL).
func (n *invNode) readCached(t testing.TB, id string, wantVersion int64) {
	t.Helper()
	if got := n.mustGet(t, id); got.Version != wantVersion {
		t.Fatalf("first read of %q: version %d, want %d", id, got.Version, wantVersion)
	}
	hits := n.cached.Stats().Hits
	if got := n.mustGet(t, id); got.Version != wantVersion {
		t.Fatalf("second read of %q: version %d, want %d", id, got.Version, wantVersion)
	}
	if n.cached.Stats().Hits != hits+1 {
		t.Fatalf("second read of %q was not a cache hit (hits %d → %d)", id, hits, n.cached.Stats().Hits)
	}
}

// invRecordingTarget is a FullInvalidationTarget remembering the ids it was asked to drop
// and counting the InvalidateAll calls.
type invRecordingTarget struct {
	mu   sync.Mutex
	ids  []string
	alls int
}

func (r *invRecordingTarget) InvalidateAll() {
	r.mu.Lock()
	r.alls++
	r.mu.Unlock()
}

func (r *invRecordingTarget) allCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.alls
}

func (r *invRecordingTarget) Invalidate(ids ...string) {
	r.mu.Lock()
	r.ids = append(r.ids, ids...)
	r.mu.Unlock()
}

func (r *invRecordingTarget) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}
