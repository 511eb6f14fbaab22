package roomstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/internal/testkit/pgcount"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

// cachedPostgres returns a migrated Postgres store on a pool for connString (closed at the
// end of t), and the pool's query counter.
func cachedPostgres(t testing.TB, connString string) (*roomstore.Postgres, *pgcount.StatementCounter) {
	t.Helper()
	ctx := cachedCtx(t)
	pool, counter, err := pgcount.NewPool(ctx, connString)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store, err := roomstore.NewPostgres(pool, roomstore.PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return store, counter
}

func TestCachedPostgresConformance(t *testing.T) {
	t.Parallel()
	cs, _ := testdb.NewSchema(t)
	roomstoretest.Run(t, func(t *testing.T) roomstore.RoomStore {
		ctx := cachedCtx(t)
		pool, err := pgxpool.New(ctx, cs)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		// A table of its own per subtest: the suite wants an empty store each time.
		table := "rooms_" + cachedUnique()
		store, err := roomstore.NewPostgres(pool, roomstore.PostgresConfig{Table: table})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return newCached(t, store, roomstore.CacheConfig{})
	})
}

func cachedUnique() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// 1,000 concurrent reads of one uncached id send exactly one query to PostgreSQL.
func TestCachedPostgresStampedeOneQuery(t *testing.T) {
	t.Parallel()
	cs, _ := testdb.NewSchema(t)
	store, queries := cachedPostgres(t, cs)
	c := newCached(t, store, roomstore.CacheConfig{})
	ctx := cachedCtx(t)
	if err := store.PutRoom(ctx, roomstoretest.SampleRoom("hot")); err != nil {
		t.Fatal(err)
	}
	before := queries.Statements()
	const readers = 1000
	start := make(chan struct{})
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range readers {
		wg.Go(func() {
			<-start
			if r, err := c.GetRoom(ctx, "hot"); err != nil || r.Version != 1 {
				failed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d readers failed", n)
	}
	if n := queries.Statements() - before; n != 1 {
		t.Fatalf("%d queries reached PostgreSQL for 1000 concurrent reads, want 1", n)
	}
	if s := c.Stats(); s.Loads != 1 || s.Hits+s.Misses != readers {
		t.Fatalf("stats = %+v", s)
	}
}

// With the database unreachable, cached rooms are still served, misses fail with a wrapped
// error within the caller's deadline, and when it is back the store recovers by itself.
func TestCachedPostgresDatabaseDown(t *testing.T) {
	t.Parallel()
	cs, proxy := proxiedSchema(t)
	store, _ := cachedPostgres(t, cs)
	c := newCached(t, store, roomstore.CacheConfig{LoadTimeout: 5 * time.Second})
	ctx := cachedCtx(t)
	for _, id := range []string{"warm", "cold"} {
		if err := store.PutRoom(ctx, roomstoretest.SampleRoom(id)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.GetRoom(ctx, "warm"); err != nil {
		t.Fatal(err)
	}

	proxy.Disable()
	if r, err := c.GetRoom(ctx, "warm"); err != nil || r.ID != "warm" {
		t.Fatalf("cached room while the database is down = %v", err)
	}
	if m, err := c.GetRooms(ctx, []string{"warm"}); err != nil || len(m) != 1 {
		t.Fatalf("cached GetRooms while the database is down = %v", err)
	}
	const deadline = time.Second
	for _, read := range []func(context.Context) error{
		func(ctx context.Context) error { _, err := c.GetRoom(ctx, "cold"); return err },
		func(ctx context.Context) error { _, err := c.GetRooms(ctx, []string{"warm", "cold"}); return err },
	} {
		rctx, cancel := context.WithTimeout(ctx, deadline)
		begin := time.Now()
		err := read(rctx)
		took := time.Since(begin)
		cancel()
		if err == nil || errors.Is(err, roomstore.ErrNotFound) || errors.Is(err, roomstore.ErrClosed) {
			t.Fatalf("miss while the database is down = %v, want a database error", err)
		}
		if errors.Unwrap(err) == nil {
			t.Fatalf("error is not wrapped: %v", err)
		}
		t.Logf("miss while down, after %s: %v", took.Round(time.Millisecond), err)
		if took > deadline+500*time.Millisecond {
			t.Fatalf("miss returned after %s, past the %s deadline", took, deadline)
		}
	}
	if s := c.Stats(); s.LoadErrors == 0 || s.Hits < 2 {
		t.Fatalf("stats = %+v, want load errors and the warm room's hits", s)
	}

	if err := proxy.Enable(); err != nil {
		t.Fatal(err)
	}
	cachedWaitFor(t, "recovery after the database is back", func() bool {
		r, err := c.GetRoom(ctx, "cold")
		return err == nil && r.ID == "cold"
	})
	if m, err := c.GetRooms(ctx, []string{"warm", "cold", "never"}); err != nil || len(m) != 2 {
		t.Fatalf("GetRooms after recovery = %v, %v", m, err)
	}

	// A server that accepts but never answers: the reader still returns at its deadline
	// (the shared load goes on, bounded by LoadTimeout, and Close cancels it).
	if err := store.PutRoom(ctx, roomstoretest.SampleRoom("hang")); err != nil {
		t.Fatal(err)
	}
	if err := proxy.DropReplies(); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	begin := time.Now()
	if _, err := c.GetRoom(rctx, "hang"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("miss against a silent server = %v, want DeadlineExceeded", err)
	}
	if took := time.Since(begin); took > deadline+500*time.Millisecond {
		t.Fatalf("miss against a silent server returned after %s", took)
	}
	if _, err := c.GetRoom(ctx, "warm"); err != nil {
		t.Fatalf("cached room while the server is silent = %v", err)
	}
}
