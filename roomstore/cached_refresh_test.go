package roomstore_test

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

// simClock is a clock that moves only when told to.
type simClock struct{ ns atomic.Int64 }

func newSimClock() *simClock {
	c := &simClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *simClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *simClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// waitRefreshes waits until no background refresh of c is running.
func waitRefreshes(t testing.TB, c *roomstore.Cached) {
	t.Helper()
	cachedWaitFor(t, "background refreshes to finish", func() bool { return c.Stats().RefreshesRunning == 0 })
}

// putRooms writes a sample room for each id into s.
func putRooms(t testing.TB, s roomstore.RoomStore, ids []string) {
	t.Helper()
	ctx := cachedCtx(t)
	for _, id := range ids {
		if err := s.PutRoom(ctx, roomstoretest.SampleRoom(id)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCachedRefreshConfig(t *testing.T) {
	t.Parallel()
	d := roomstore.CacheConfig{}.WithDefaults()
	if d.RefreshAhead != roomstore.DefaultCacheRefreshAhead || d.TTLJitter != roomstore.DefaultCacheTTLJitter ||
		d.MaxRefreshes != roomstore.DefaultCacheMaxRefreshes || d.Clock != nil {
		t.Fatalf("defaults = %+v", d)
	}
	good := []roomstore.CacheConfig{
		{RefreshAhead: roomstore.NoRefreshAhead}, {RefreshAhead: 0.01}, {RefreshAhead: 0.99},
		{TTLJitter: roomstore.NoTTLJitter}, {TTLJitter: 0.5}, {MaxRefreshes: 1},
	}
	for _, cfg := range good {
		c, err := roomstore.NewCached(roomstore.NewMemoryStore(), cfg)
		if err != nil {
			t.Errorf("NewCached(%+v) = %v", cfg, err)
			continue
		}
		_ = c.Close()
	}
	bad := []roomstore.CacheConfig{
		{RefreshAhead: math.NaN()}, {RefreshAhead: math.Inf(1)}, {RefreshAhead: math.Inf(-1)},
		{RefreshAhead: 1}, {RefreshAhead: 1.5}, {RefreshAhead: -0.5},
		{TTLJitter: math.NaN()}, {TTLJitter: math.Inf(1)}, {TTLJitter: 0.6}, {TTLJitter: -0.1},
		{MaxRefreshes: -1}, {TTL: time.Duration(math.MaxInt64)},
	}
	for _, cfg := range bad {
		if c, err := roomstore.NewCached(roomstore.NewMemoryStore(), cfg); !errors.Is(err, roomstore.ErrInvalidConfig) || c != nil {
			t.Errorf("NewCached(RefreshAhead %v, TTLJitter %v, MaxRefreshes %d, TTL %s) = %v; want ErrInvalidConfig",
				cfg.RefreshAhead, cfg.TTLJitter, cfg.MaxRefreshes, cfg.TTL, err)
		}
	}
}

// simulateTicks reads ids through c once per simulated game minute, ticks times, as flux's
// Runner does (VisitRooms, or GetRooms on odd ticks), and waits after each tick for the
// refreshes it started. At tick changeAt it changes a room behind the cache's back (in
// inner, with no invalidation) and returns the tick at which a tick first saw the change.
func simulateTicks(t *testing.T, c *roomstore.Cached, inner roomstore.RoomStore, clock *simClock, ids []string, ticks, changeAt int) (seenAt int) {
	t.Helper()
	ctx := cachedCtx(t)
	changed := ids[len(ids)/2]
	for tick := 1; tick <= ticks; tick++ {
		if tick == changeAt {
			r := roomstoretest.SampleRoom(changed)
			r.Name = "changed behind the cache"
			if err := inner.PutRoom(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		n := 0
		var name string
		see := func(r roomstore.Room) {
			n++
			if r.ID == changed {
				name = r.Name
			}
		}
		if tick%2 == 0 {
			if err := c.VisitRooms(ctx, ids, see); err != nil {
				t.Fatalf("tick %d: %v", tick, err)
			}
		} else {
			m, err := c.GetRooms(ctx, ids)
			if err != nil {
				t.Fatalf("tick %d: %v", tick, err)
			}
			for _, r := range m {
				see(r)
			}
		}
		if n != len(ids) {
			t.Fatalf("tick %d read %d rooms, want %d", tick, n, len(ids))
		}
		if seenAt == 0 && name == "changed behind the cache" {
			seenAt = tick
		}
		if s := c.Stats(); s.Loads != 1 || s.Misses != uint64(len(ids)) {
			t.Fatalf("after tick %d: %d loads, %d misses on the reader's path; want 1 and %d (the first tick's): %+v",
				tick, s.Loads, s.Misses, len(ids), s)
		}
		waitRefreshes(t, c)
		clock.Advance(time.Minute)
	}
	return seenAt
}

// checkSteadyState checks the counts of a 60-tick simulateTicks run over rooms rooms with
// the default TTL (5 min), RefreshAhead (0.75) and jitter (±10 %): each room goes stale
// 3.375 to 4.125 minutes after it was read, so it is refreshed every 4 or 5 ticks.
func checkSteadyState(t *testing.T, s roomstore.CacheStats, rooms, ticks, changeAt, seenAt int) {
	t.Helper()
	t.Logf("%d ticks of %d rooms: loads %d (misses %d), refreshes %d (%d rooms, %d failed, %d skipped), stale hits %d, hits %d, change seen %d ticks after it was made",
		ticks, rooms, s.Loads, s.Misses, s.RefreshesStarted, s.RoomsRefreshed, s.RefreshFailures, s.RefreshesSkipped,
		s.StaleHits, s.Hits, seenAt-changeAt)
	if s.RefreshFailures != 0 || s.RefreshesSkipped != 0 || s.LoadErrors != 0 {
		t.Errorf("failures or skips: %+v", s)
	}
	// One refresh at most per tick (each tick's stale rooms go in one batch), none before
	// the first room goes stale (tick 5 at the earliest).
	if s.RefreshesStarted < 1 || s.RefreshesStarted > uint64(ticks-4) {
		t.Errorf("%d refreshes over %d ticks, want 1..%d", s.RefreshesStarted, ticks, ticks-4)
	}
	// Every room is refreshed every 4 or 5 ticks after the first read.
	if lo, hi := uint64(rooms*((ticks-1)/5-1)), uint64(rooms*((ticks-1)/4)); s.RoomsRefreshed < lo || s.RoomsRefreshed > hi {
		t.Errorf("%d rooms refreshed, want %d..%d", s.RoomsRefreshed, lo, hi)
	}
	if want := uint64(ticks*rooms - rooms); s.Hits != want {
		t.Errorf("%d hits, want %d (every read after the first tick)", s.Hits, want)
	}
	// A change made behind the cache's back is read by a refresh within 5 ticks and
	// served from the next.
	if seenAt == 0 || seenAt-changeAt > 6 {
		t.Errorf("change made at tick %d seen at tick %d, want within 6 ticks", changeAt, seenAt)
	}
}

// Issue 9, item 2: 60 ticks one game minute apart over 2,000 rooms on a memory store load
// no room on the reader's path after the first tick; background refreshes keep them fresh.
func TestCachedRefreshAheadSteadyStateMemory(t *testing.T) {
	t.Parallel()
	const ticks, changeAt = 60, 10
	ids := benchIDs()
	inner := newCountingStore()
	putRooms(t, inner, ids)
	clock := newSimClock()
	c := newCached(t, inner, roomstore.CacheConfig{Clock: clock.Now})
	seenAt := simulateTicks(t, c, inner, clock, ids, ticks, changeAt)
	s := c.Stats()
	checkSteadyState(t, s, len(ids), ticks, changeAt, seenAt)
	if got, want := inner.batches.Load(), int64(s.Loads+s.RefreshesStarted); got != want || inner.gets.Load() != 0 {
		t.Errorf("inner store saw %d GetRooms and %d GetRoom calls, want %d GetRooms (loads + refreshes)",
			got, inner.gets.Load(), want)
	}
}

// The same 60 ticks on the Postgres store: the only statements are the first tick's load
// and the background refreshes.
func TestCachedRefreshAheadSteadyStatePostgres(t *testing.T) {
	t.Parallel()
	const ticks, changeAt = 60, 10
	cs, _ := testdb.NewSchema(t)
	store, queries := cachedPostgres(t, cs)
	ids := benchIDs()
	putRooms(t, store, ids)
	clock := newSimClock()
	c := newCached(t, store, roomstore.CacheConfig{Clock: clock.Now})
	before := queries.Statements()
	seenAt := simulateTicks(t, c, store, clock, ids, ticks, changeAt)
	s := c.Stats()
	checkSteadyState(t, s, len(ids), ticks, changeAt, seenAt)
	// One statement per load and per refresh, plus the write made at changeAt.
	if got, want := queries.Statements()-before, int64(s.Loads+s.RefreshesStarted)+1; got != want {
		t.Errorf("%d statements reached PostgreSQL, want %d (loads + refreshes + 1 write)", got, want)
	}
}

// The stale hits of one call are refreshed in one inner GetRooms call; the stale rooms are
// served meanwhile, and fresh ones start nothing.
func TestCachedRefreshAheadBatchesStaleHits(t *testing.T) {
	t.Parallel()
	ids := benchIDs()[:100]
	inner := newCountingStore()
	putRooms(t, inner, ids)
	clock := newSimClock()
	c := newCached(t, inner, roomstore.CacheConfig{Clock: clock.Now, TTL: time.Minute, TTLJitter: roomstore.NoTTLJitter})
	ctx := cachedCtx(t)
	if _, err := c.GetRooms(ctx, ids); err != nil {
		t.Fatal(err)
	}
	clock.Advance(44 * time.Second) // before 0.75 × TTL: fresh
	if err := c.VisitRooms(ctx, ids, func(roomstore.Room) {}); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.StaleHits != 0 || s.RefreshesStarted != 0 {
		t.Fatalf("fresh hits started refreshes: %+v", s)
	}
	clock.Advance(time.Second) // 45 s: stale
	n := 0
	if err := c.VisitRooms(ctx, append(ids, ids...), func(r roomstore.Room) { n++ }); err != nil {
		t.Fatal(err)
	}
	waitRefreshes(t, c)
	s := c.Stats()
	if n != len(ids) || s.StaleHits != uint64(len(ids)) || s.RefreshesStarted != 1 || s.RoomsRefreshed != uint64(len(ids)) || s.Loads != 1 {
		t.Fatalf("visited %d; stats %+v; want %d stale hits and rooms refreshed in 1 refresh", n, s, len(ids))
	}
	if b, got := inner.batches.Load(), inner.batchIDs.Load(); b != 2 || got != int64(2*len(ids)) {
		t.Fatalf("inner GetRooms: %d calls for %d ids, want 2 calls for %d", b, got, 2*len(ids))
	}
	// Refreshed: fresh again for another 45 s.
	clock.Advance(44 * time.Second)
	if _, err := c.GetRooms(ctx, ids); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.StaleHits != uint64(len(ids)) {
		t.Fatalf("refreshed rooms still stale: %+v", s)
	}
	// GetRoom refreshes the one room it read.
	clock.Advance(time.Second)
	if _, err := c.GetRoom(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	waitRefreshes(t, c)
	if s := c.Stats(); s.RefreshesStarted != 2 || s.RoomsRefreshed != uint64(len(ids)+1) || inner.batchIDs.Load() != int64(2*len(ids)+1) {
		t.Fatalf("GetRoom refresh: %+v", s)
	}
}

// An id is refreshed once at a time, and at most MaxRefreshes refreshes run: a stale hit
// beyond is served, counted as skipped and refreshed by a later hit.
func TestCachedRefreshAheadSingleflightAndLimit(t *testing.T) {
	t.Parallel()
	inner := newCountingStore()
	putRooms(t, inner, []string{"a", "b"})
	clock := newSimClock()
	c := newCached(t, inner, roomstore.CacheConfig{Clock: clock.Now, MaxRefreshes: 1})
	ctx := cachedCtx(t)
	if _, err := c.GetRooms(ctx, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(roomstore.DefaultCacheTTL * 85 / 100) // stale whatever the jitter, not expired
	release := inner.hold()
	defer release()
	for range 3 {
		if r, err := c.GetRoom(ctx, "a"); err != nil || r.ID != "a" {
			t.Fatalf("stale GetRoom = %v", err)
		}
	}
	if r, err := c.GetRoom(ctx, "b"); err != nil || r.ID != "b" {
		t.Fatalf("stale GetRoom = %v", err)
	}
	s := c.Stats()
	if s.StaleHits != 4 || s.RefreshesStarted != 1 || s.RefreshesSkipped != 1 || s.RefreshesRunning != 1 || s.Loads != 1 {
		t.Fatalf("stats while a refresh of a is held = %+v", s)
	}
	release()
	waitRefreshes(t, c)
	if _, err := c.GetRoom(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	waitRefreshes(t, c)
	if s := c.Stats(); s.RefreshesStarted != 2 || s.RoomsRefreshed != 2 || s.Loads != 1 || inner.batches.Load() != 3 {
		t.Fatalf("after the refreshes: %+v, %d inner batches", s, inner.batches.Load())
	}
}

// A refresh that read a room before a write or an invalidation never puts that room back
// into the cache after it.
func TestCachedRefreshAheadInvalidationWins(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		write func(ctx context.Context, c *roomstore.Cached, inner *countingStore, r roomstore.Room) error
	}{
		{"PutThroughCache", func(ctx context.Context, c *roomstore.Cached, _ *countingStore, r roomstore.Room) error {
			return c.PutRoom(ctx, r)
		}},
		{"OutsideWriteInvalidate", func(ctx context.Context, c *roomstore.Cached, inner *countingStore, r roomstore.Room) error {
			err := inner.PutRoom(ctx, r)
			c.Invalidate(r.ID)
			return err
		}},
		{"OutsideWriteInvalidateAll", func(ctx context.Context, c *roomstore.Cached, inner *countingStore, r roomstore.Room) error {
			err := inner.PutRoom(ctx, r)
			c.InvalidateAll()
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inner := newCountingStore()
			clock := newSimClock()
			c := newCached(t, inner, roomstore.CacheConfig{Clock: clock.Now})
			ctx := cachedCtx(t)
			old := roomstoretest.SampleRoom("race")
			old.Name = "old"
			if err := inner.PutRoom(ctx, old); err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetRoom(ctx, "race"); err != nil {
				t.Fatal(err)
			}
			clock.Advance(roomstore.DefaultCacheTTL * 85 / 100)
			release := inner.hold()
			defer release()
			if r, err := c.GetRoom(ctx, "race"); err != nil || r.Name != "old" {
				t.Fatalf("stale hit = %q, %v", r.Name, err)
			}
			// The refresh has read "old" and waits to reply.
			cachedWaitFor(t, "refresh started", func() bool { return inner.gets.Load()+inner.batches.Load() == 2 })
			fresh := old
			fresh.Name = "new"
			if err := tc.write(ctx, c, inner, fresh); err != nil {
				t.Fatal(err)
			}
			release()
			waitRefreshes(t, c)
			r, err := c.GetRoom(ctx, "race")
			if err != nil || r.Name != "new" || r.Version != 2 {
				t.Fatalf("after the write the cache serves %q v%d (%v), want new v2", r.Name, r.Version, err)
			}
			if s := c.Stats(); s.Loads != 2 || s.RoomsRefreshed != 0 || s.RefreshesStarted != 1 {
				t.Fatalf("stats = %+v; want the refresh discarded and the new room loaded on a miss", s)
			}
		})
	}
}

// A refresh that finds the room deleted drops it: the next read is a not-found answered
// from memory.
func TestCachedRefreshAheadDeletedRoom(t *testing.T) {
	t.Parallel()
	inner := newCountingStore()
	putRooms(t, inner, []string{"gone"})
	clock := newSimClock()
	c := newCached(t, inner, roomstore.CacheConfig{Clock: clock.Now})
	ctx := cachedCtx(t)
	if _, err := c.GetRoom(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := inner.DeleteRoom(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(roomstore.DefaultCacheTTL * 85 / 100)
	if _, err := c.GetRoom(ctx, "gone"); err != nil {
		t.Fatalf("stale hit = %v, want the stale room", err)
	}
	waitRefreshes(t, c)
	if _, err := c.GetRoom(ctx, "gone"); !errors.Is(err, roomstore.ErrNotFound) {
		t.Fatalf("after the refresh GetRoom = %v, want ErrNotFound", err)
	}
	if s := c.Stats(); s.NegativeHits != 1 || s.Loads != 1 || s.RoomsRefreshed != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

// A failed refresh leaves the stale room served until its TTL; after it, the reader's
// own load reports the failure.
func TestCachedRefreshAheadFailure(t *testing.T) {
	t.Parallel()
	inner := newCountingStore()
	putRooms(t, inner, []string{"r"})
	clock := newSimClock()
	c := newCached(t, inner, roomstore.CacheConfig{Clock: clock.Now, TTLJitter: roomstore.NoTTLJitter})
	ctx := cachedCtx(t)
	if _, err := c.GetRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	down := errors.New("database down")
	inner.failWith(down)
	clock.Advance(roomstore.DefaultCacheTTL * 80 / 100)
	for range 2 {
		if r, err := c.GetRoom(ctx, "r"); err != nil || r.ID != "r" {
			t.Fatalf("stale hit while refreshes fail = %v", err)
		}
		waitRefreshes(t, c)
	}
	if s := c.Stats(); s.RefreshFailures != 2 || s.RefreshesStarted != 2 || s.LoadErrors != 0 {
		t.Fatalf("stats = %+v, want 2 failed refreshes", s)
	}
	clock.Advance(roomstore.DefaultCacheTTL * 20 / 100) // expired
	if _, err := c.GetRoom(ctx, "r"); !errors.Is(err, down) {
		t.Fatalf("GetRoom past the TTL = %v, want the load error", err)
	}
	inner.failWith(nil)
	if r, err := c.GetRoom(ctx, "r"); err != nil || r.ID != "r" {
		t.Fatalf("GetRoom after recovery = %v", err)
	}
	if s := c.Stats(); s.Loads != 3 || s.LoadErrors != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

// Close cancels a refresh in flight and waits for it (goleak, in TestMain, checks that no
// goroutine is left).
func TestCachedCloseStopsRefresh(t *testing.T) {
	t.Parallel()
	inner := newCountingStore()
	putRooms(t, inner, []string{"c"})
	clock := newSimClock()
	c, err := roomstore.NewCached(inner, roomstore.CacheConfig{Clock: clock.Now, LoadTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := cachedCtx(t)
	if _, err := c.GetRoom(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(roomstore.DefaultCacheTTL * 85 / 100)
	release := inner.hold()
	defer release()
	if _, err := c.GetRoom(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	cachedWaitFor(t, "refresh started", func() bool { return inner.batches.Load() == 1 })
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if b, _ := inner.loadCtxErr.Load().(cachedErrBox); !errors.Is(b.err, context.Canceled) {
		t.Fatalf("the refresh was not canceled by Close: %v", b.err)
	}
	if s := c.Stats(); s.RefreshesRunning != 0 || s.RefreshFailures != 0 {
		t.Fatalf("stats after Close = %+v", s)
	}
	_ = inner.Close()
}

// Rooms loaded together expire over TTL × (1 ± TTLJitter), not at one instant; with
// NoTTLJitter they all expire at TTL.
func TestCachedTTLJitter(t *testing.T) {
	t.Parallel()
	ids := benchIDs()
	for _, tc := range []struct {
		name           string
		jitter         float64
		none, some     time.Duration // ages at which no room / part of them has expired
		someLo, someHi int
	}{
		{"Default", 0, 4*time.Minute + 29*time.Second, 5 * time.Minute, len(ids) / 4, len(ids) * 3 / 4},
		{"NoTTLJitter", roomstore.NoTTLJitter, 5*time.Minute - time.Nanosecond, 5 * time.Minute, len(ids), len(ids)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inner := roomstore.NewMemoryStore()
			putRooms(t, inner, ids)
			clock := newSimClock()
			c := newCached(t, inner, roomstore.CacheConfig{Clock: clock.Now, RefreshAhead: roomstore.NoRefreshAhead, TTLJitter: tc.jitter})
			ctx := cachedCtx(t)
			misses := func() int {
				before := c.Stats().Misses
				if _, err := c.GetRooms(ctx, ids); err != nil {
					t.Fatal(err)
				}
				return int(c.Stats().Misses - before)
			}
			if n := misses(); n != len(ids) {
				t.Fatalf("first read: %d misses", n)
			}
			clock.Advance(tc.none)
			if n := misses(); n != 0 {
				t.Fatalf("at %s: %d rooms expired, want none", tc.none, n)
			}
			clock.Advance(tc.some - tc.none)
			n := misses()
			t.Logf("at %s: %d of %d rooms expired", tc.some, n, len(ids))
			if n < tc.someLo || n > tc.someHi {
				t.Fatalf("at %s: %d rooms expired, want %d..%d", tc.some, n, tc.someLo, tc.someHi)
			}
			if s := c.Stats(); s.StaleHits != 0 || s.RefreshesStarted != 0 {
				t.Fatalf("refresh-ahead off, yet %+v", s)
			}
		})
	}
}
