package roomstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

func TestCachedMemoryConformance(t *testing.T) {
	t.Parallel()
	roomstoretest.Run(t, func(t *testing.T) roomstore.RoomStore {
		return newCached(t, roomstore.NewMemoryStore(), roomstore.CacheConfig{})
	})
}

// An inner store without PutRoomVersion still works; versions are reported as unknown.
func TestCachedConformanceWithoutVersionedPutter(t *testing.T) {
	t.Parallel()
	type plain struct{ roomstore.RoomStore } // hides PutRoomVersion
	roomstoretest.Run(t, func(t *testing.T) roomstore.RoomStore {
		return newCached(t, plain{roomstore.NewMemoryStore()}, roomstore.CacheConfig{})
	})
}

func TestCachedConfig(t *testing.T) {
	t.Parallel()
	d := roomstore.CacheConfig{}.WithDefaults()
	if d.MaxRooms != roomstore.DefaultCacheMaxRooms || d.TTL != roomstore.DefaultCacheTTL ||
		d.NegativeTTL != roomstore.DefaultCacheNegativeTTL || d.MaxNegative != roomstore.DefaultCacheMaxNegative ||
		d.LoadTimeout != roomstore.DefaultCacheLoadTimeout {
		t.Fatalf("defaults = %+v", d)
	}
	bad := []roomstore.CacheConfig{
		{MaxRooms: -1}, {TTL: -time.Second}, {NegativeTTL: -time.Second},
		{MaxNegative: -5}, {LoadTimeout: -time.Millisecond},
	}
	for _, cfg := range bad {
		if c, err := roomstore.NewCached(roomstore.NewMemoryStore(), cfg); !errors.Is(err, roomstore.ErrInvalidConfig) || c != nil {
			t.Errorf("NewCached(%+v) = %v; want ErrInvalidConfig", cfg, err)
		}
	}
	if _, err := roomstore.NewCached(nil, roomstore.CacheConfig{}); !errors.Is(err, roomstore.ErrInvalidConfig) {
		t.Errorf("NewCached(nil) = %v; want ErrInvalidConfig", err)
	}
}

// A read after a miss is served from memory; Stats counts it.
func TestCachedHitAfterMiss(t *testing.T) {
	t.Parallel()
	inner := newCountingStore()
	c := newCached(t, inner, roomstore.CacheConfig{})
	ctx := cachedCtx(t)
	if err := inner.PutRoom(ctx, roomstoretest.SampleRoom("a")); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		r, err := c.GetRoom(ctx, "a")
		if err != nil || r.ID != "a" || r.Version != 1 {
			t.Fatalf("GetRoom = %+v, %v", r, err)
		}
	}
	if n := inner.gets.Load(); n != 1 {
		t.Fatalf("inner loads = %d, want 1 (the first read's)", n)
	}
	s := c.Stats()
	if s.Hits != 4 || s.Misses != 1 || s.Loads != 1 || s.HitRatio != 0.8 {
		t.Fatalf("stats = %+v", s)
	}
}

// 1,000 concurrent readers of one uncached id make exactly one load.
func TestCachedStampedeOneLoad(t *testing.T) {
	t.Parallel()
	inner := newCountingStore()
	c := newCached(t, inner, roomstore.CacheConfig{})
	ctx := cachedCtx(t)
	if err := inner.PutRoom(ctx, roomstoretest.SampleRoom("hot")); err != nil {
		t.Fatal(err)
	}
	const readers = 1000
	release := inner.hold()
	defer release()
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Go(func() {
			r, err := c.GetRoom(ctx, "hot")
			if err == nil && r.ID != "hot" {
				err = fmt.Errorf("got room %q", r.ID)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	// Hold the load until every reader has missed, so that they all wait on it.
	cachedWaitFor(t, "1000 misses", func() bool { return c.Stats().Misses == readers })
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := inner.gets.Load(); n != 1 {
		t.Fatalf("inner loads = %d, want exactly 1", n)
	}
	if s := c.Stats(); s.Loads != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

// A reader whose ctx ends returns at once with a context error; the load it started is not
// canceled and still serves the other readers and fills the cache.
func TestCachedWaiterCancelDoesNotCancelSharedLoad(t *testing.T) {
	t.Parallel()
	inner := newCountingStore()
	c := newCached(t, inner, roomstore.CacheConfig{})
	ctx := cachedCtx(t)
	if err := inner.PutRoom(ctx, roomstoretest.SampleRoom("slow")); err != nil {
		t.Fatal(err)
	}
	release := inner.hold()
	defer release()

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.GetRoom(short, "slow"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetRoom past deadline = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("GetRoom returned %s after a 50ms deadline", d)
	}
	done := make(chan error, 1)
	go func() {
		r, err := c.GetRoom(ctx, "slow")
		if err == nil && r.ID != "slow" {
			err = errors.New("wrong room")
		}
		done <- err
	}()
	cachedWaitFor(t, "second miss", func() bool { return c.Stats().Misses == 2 })
	release()
	if err := <-done; err != nil {
		t.Fatalf("patient reader: %v", err)
	}
	if n := inner.gets.Load(); n != 1 {
		t.Fatalf("inner loads = %d, want 1 shared load", n)
	}
	if b, _ := inner.loadCtxErr.Load().(cachedErrBox); b.err != nil {
		t.Fatalf("the shared load saw its ctx end: %v", b.err)
	}
	if _, err := c.GetRoom(ctx, "slow"); err != nil || inner.gets.Load() != 1 {
		t.Fatalf("room not cached by the shared load: %v, loads %d", err, inner.gets.Load())
	}
}

// A load that read the room before a write must not put that stale room into the cache
// after the write's invalidation — for writes through the decorator, Invalidate from
// outside, GetRoom and GetRooms loads.
func TestCachedInvalidateBeatsStaleFill(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		batch bool
		write func(ctx context.Context, c *roomstore.Cached, inner *countingStore, r roomstore.Room) error
	}{
		{"PutThroughCache/GetRoom", false, func(ctx context.Context, c *roomstore.Cached, _ *countingStore, r roomstore.Room) error {
			return c.PutRoom(ctx, r)
		}},
		{"OutsideWriteInvalidate/GetRoom", false, func(ctx context.Context, c *roomstore.Cached, inner *countingStore, r roomstore.Room) error {
			err := inner.PutRoom(ctx, r)
			c.Invalidate(r.ID)
			return err
		}},
		{"PutThroughCache/GetRooms", true, func(ctx context.Context, c *roomstore.Cached, _ *countingStore, r roomstore.Room) error {
			return c.PutRoom(ctx, r)
		}},
		{"OutsideWriteInvalidate/GetRooms", true, func(ctx context.Context, c *roomstore.Cached, inner *countingStore, r roomstore.Room) error {
			err := inner.PutRoom(ctx, r)
			c.Invalidate(r.ID)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inner := newCountingStore()
			c := newCached(t, inner, roomstore.CacheConfig{})
			ctx := cachedCtx(t)
			old := roomstoretest.SampleRoom("race")
			old.Name = "old"
			if err := inner.PutRoom(ctx, old); err != nil {
				t.Fatal(err)
			}
			release := inner.hold()
			defer release()
			got := make(chan roomstore.Room, 1)
			go func() {
				var r roomstore.Room
				if tc.batch {
					m, _ := c.GetRooms(ctx, []string{"race"})
					r = m["race"]
				} else {
					r, _ = c.GetRoom(ctx, "race")
				}
				got <- r
			}()
			// The load has read "old" and is waiting to reply.
			cachedWaitFor(t, "load started", func() bool { return inner.gets.Load()+inner.batches.Load() == 1 })
			fresh := old
			fresh.Name = "new"
			if err := tc.write(ctx, c, inner, fresh); err != nil {
				t.Fatal(err)
			}
			release()
			if r := <-got; r.Name != "old" {
				t.Fatalf("the racing load returned %q; the test did not race", r.Name)
			}
			r, err := c.GetRoom(ctx, "race")
			if err != nil || r.Name != "new" || r.Version != 2 {
				t.Fatalf("after the write the cache serves %q v%d (%v), want new v2", r.Name, r.Version, err)
			}
			// The fresh room is cached again: an invalidation does not block later fills.
			loads := inner.gets.Load() + inner.batches.Load()
			if r, err := c.GetRoom(ctx, "race"); err != nil || r.Name != "new" || inner.gets.Load()+inner.batches.Load() != loads {
				t.Fatalf("fresh room not served from cache: %q, %v", r.Name, err)
			}
			if s := c.Stats(); s.Invalidations != 1 {
				t.Fatalf("stats = %+v, want 1 invalidation", s)
			}
		})
	}
}

// Not-found ids are answered from memory for NegativeTTL, at most MaxNegative of them,
// and a write ends a negative entry at once.
func TestCachedNegativeCaching(t *testing.T) {
	t.Parallel()
	t.Run("RememberedThenExpires", func(t *testing.T) {
		t.Parallel()
		inner := newCountingStore()
		c := newCached(t, inner, roomstore.CacheConfig{NegativeTTL: 100 * time.Millisecond})
		ctx := cachedCtx(t)
		for range 3 {
			if _, err := c.GetRoom(ctx, "ghost"); !errors.Is(err, roomstore.ErrNotFound) {
				t.Fatalf("GetRoom = %v, want ErrNotFound", err)
			}
		}
		if m, err := c.GetRooms(ctx, []string{"ghost"}); err != nil || len(m) != 0 {
			t.Fatalf("GetRooms = %v, %v", m, err)
		}
		if n := inner.gets.Load() + inner.batches.Load(); n != 1 {
			t.Fatalf("inner reads = %d, want 1", n)
		}
		if s := c.Stats(); s.NegativeHits != 3 || s.Misses != 1 {
			t.Fatalf("stats = %+v", s)
		}
		cachedWaitFor(t, "negative entry to expire", func() bool {
			_, err := c.GetRoom(ctx, "ghost")
			return errors.Is(err, roomstore.ErrNotFound) && inner.gets.Load() == 2
		})
	})
	t.Run("Bounded", func(t *testing.T) {
		t.Parallel()
		inner := newCountingStore()
		const maxNeg, ids = 50, 1000
		c := newCached(t, inner, roomstore.CacheConfig{MaxNegative: maxNeg, NegativeTTL: time.Hour})
		ctx := cachedCtx(t)
		for round := range 2 {
			for i := range ids {
				if _, err := c.GetRoom(ctx, fmt.Sprint("absent-", i)); !errors.Is(err, roomstore.ErrNotFound) {
					t.Fatalf("round %d: %v", round, err)
				}
			}
		}
		// The second round was answered from memory for at most MaxNegative ids.
		if s := c.Stats(); s.NegativeHits > maxNeg || s.Loads < 2*ids-maxNeg {
			t.Fatalf("stats = %+v; more than %d not-found ids were remembered", s, maxNeg)
		}
	})
	t.Run("BatchMissesRemembered", func(t *testing.T) {
		t.Parallel()
		inner := newCountingStore()
		c := newCached(t, inner, roomstore.CacheConfig{})
		ctx := cachedCtx(t)
		if _, err := c.GetRooms(ctx, []string{"n1", "n2"}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetRoom(ctx, "n1"); !errors.Is(err, roomstore.ErrNotFound) {
			t.Fatal(err)
		}
		if inner.gets.Load() != 0 || inner.batches.Load() != 1 {
			t.Fatalf("reads: %d single, %d batch", inner.gets.Load(), inner.batches.Load())
		}
		if err := c.PutRoom(ctx, roomstoretest.SampleRoom("n2")); err != nil {
			t.Fatal(err)
		}
		if m, err := c.GetRooms(ctx, []string{"n1", "n2"}); err != nil || len(m) != 1 {
			t.Fatalf("after put: %v, %v", m, err)
		}
	})
}

// GetRooms serves hits from memory and loads every miss in one inner call.
func TestCachedGetRoomsOneLoadForAllMisses(t *testing.T) {
	t.Parallel()
	inner := newCountingStore()
	c := newCached(t, inner, roomstore.CacheConfig{})
	ctx := cachedCtx(t)
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprint("b-", i)
		if i < 90 {
			if err := inner.PutRoom(ctx, roomstoretest.SampleRoom(ids[i])); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, id := range ids[:30] { // warm 30
		if _, err := c.GetRoom(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	m, err := c.GetRooms(ctx, append(ids, ids[:40]...))
	if err != nil || len(m) != 90 {
		t.Fatalf("GetRooms = %d rooms, %v", len(m), err)
	}
	if b, n := inner.batches.Load(), inner.batchIDs.Load(); b != 1 || n != 70 {
		t.Fatalf("inner GetRooms: %d calls for %d ids, want 1 call for the 70 misses", b, n)
	}
	m, err = c.GetRooms(ctx, ids)
	if err != nil || len(m) != 90 || inner.batches.Load() != 1 {
		t.Fatalf("warm GetRooms: %d rooms, %v, %d inner calls", len(m), err, inner.batches.Load())
	}
}

// Load errors are returned wrapped and not cached: the next read tries again.
func TestCachedLoadErrorsNotCached(t *testing.T) {
	t.Parallel()
	inner := newCountingStore()
	c := newCached(t, inner, roomstore.CacheConfig{})
	ctx := cachedCtx(t)
	if err := inner.PutRoom(ctx, roomstoretest.SampleRoom("e")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("database on fire")
	inner.failWith(boom)
	if _, err := c.GetRoom(ctx, "e"); !errors.Is(err, boom) {
		t.Fatalf("GetRoom = %v, want wrapped boom", err)
	}
	if _, err := c.GetRooms(ctx, []string{"e"}); !errors.Is(err, boom) {
		t.Fatalf("GetRooms = %v, want wrapped boom", err)
	}
	inner.failWith(nil)
	if r, err := c.GetRoom(ctx, "e"); err != nil || r.ID != "e" {
		t.Fatalf("GetRoom after recovery = %v", err)
	}
	if s := c.Stats(); s.LoadErrors != 2 || s.Loads != 3 {
		t.Fatalf("stats = %+v", s)
	}
}

// Entries expire after TTL even without an invalidation.
func TestCachedTTLExpiry(t *testing.T) {
	t.Parallel()
	inner := newCountingStore()
	c := newCached(t, inner, roomstore.CacheConfig{TTL: 100 * time.Millisecond})
	ctx := cachedCtx(t)
	r := roomstoretest.SampleRoom("ttl")
	if err := inner.PutRoom(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetRoom(ctx, "ttl"); err != nil {
		t.Fatal(err)
	}
	r.Name = "changed behind the cache's back"
	if err := inner.PutRoom(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.GetRoom(ctx, "ttl"); got.Version != 1 {
		t.Fatalf("not served from cache before TTL: v%d", got.Version)
	}
	cachedWaitFor(t, "TTL expiry", func() bool {
		got, err := c.GetRoom(ctx, "ttl")
		return err == nil && got.Version == 2 && got.Name == r.Name
	})
}

// Writes through the decorator call AfterWrite with what was written, only on success.
func TestCachedAfterWrite(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var changes []roomstore.RoomChange
	inner := newCountingStore()
	c := newCached(t, inner, roomstore.CacheConfig{AfterWrite: func(ch roomstore.RoomChange) {
		mu.Lock()
		changes = append(changes, ch)
		mu.Unlock()
	}})
	ctx := cachedCtx(t)
	for range 2 {
		if err := c.PutRoom(ctx, roomstoretest.SampleRoom("w")); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := c.PutRoomVersion(ctx, roomstoretest.SampleRoom("w")); err != nil || v != 3 {
		t.Fatalf("PutRoomVersion = %d, %v", v, err)
	}
	if err := c.DeleteRoom(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	_ = c.DeleteRoom(ctx, "w")                        // not found: no change
	_ = c.PutRoom(ctx, roomstore.Room{ID: "bad\x00"}) // invalid: no change
	want := []roomstore.RoomChange{{ID: "w", Version: 1}, {ID: "w", Version: 2}, {ID: "w", Version: 3}, {ID: "w", Deleted: true}}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(changes) != fmt.Sprint(want) {
		t.Fatalf("AfterWrite saw %v, want %v", changes, want)
	}
}

// TestCachedClose checks the module's lifecycle contract (doc.go) on Cached: Close cancels
// a load in flight and waits for it, does not close the inner store; concurrent and later
// Closes return the first one's outcome; calls after it return ErrClosed.
func TestCachedClose(t *testing.T) {
	t.Parallel()
	inner := newCountingStore()
	c, err := roomstore.NewCached(inner, roomstore.CacheConfig{LoadTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := cachedCtx(t)
	if err := inner.PutRoom(ctx, roomstoretest.SampleRoom("c")); err != nil {
		t.Fatal(err)
	}
	release := inner.hold()
	defer release()
	readerCtx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, _ = c.GetRoom(readerCtx, "c") // leaves a load blocked in the inner store
	closed := make(chan error, 3)
	for range 3 {
		go func() { closed <- c.Close() }()
	}
	for range 3 {
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if b, _ := inner.loadCtxErr.Load().(cachedErrBox); !errors.Is(b.err, context.Canceled) {
		t.Fatalf("the in-flight load was not canceled by Close: %v", b.err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.GetRoom(ctx, "c"); !errors.Is(err, roomstore.ErrClosed) {
		t.Fatalf("GetRoom after Close = %v", err)
	}
	release()
	if _, err := inner.GetRoom(ctx, "c"); err != nil {
		t.Fatalf("inner store unusable after Cached.Close: %v", err)
	}
	_ = inner.Close()
}

// Many goroutines read, write and invalidate at once (run with -race). Once they stop,
// every room read through the cache is the inner store's latest.
func TestCachedConcurrentReadWrite(t *testing.T) {
	t.Parallel()
	inner := newCountingStore()
	c := newCached(t, inner, roomstore.CacheConfig{NegativeTTL: time.Minute})
	ctx := cachedCtx(t)
	const rooms, workers, rounds = 32, 12, 300
	ids := make([]string, rooms)
	for i := range ids {
		ids[i] = fmt.Sprint("m-", i)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				id := ids[(w*7+i)%rooms]
				var err error
				switch i % 10 {
				case 0:
					r := roomstoretest.SampleRoom(id)
					r.Name = fmt.Sprint(w, "/", i)
					err = c.PutRoom(ctx, r)
				case 1:
					_, err = c.GetRooms(ctx, ids[:rooms/2])
				case 2:
					if w%3 == 0 { // a write elsewhere
						r := roomstoretest.SampleRoom(id)
						r.Name = fmt.Sprint("outside ", w, "/", i)
						err = inner.PutRoom(ctx, r)
						c.Invalidate(id)
					}
				case 3:
					if w%4 == 1 {
						err = c.DeleteRoom(ctx, id)
					}
				default:
					var r roomstore.Room
					r, err = c.GetRoom(ctx, id)
					if err == nil && r.ID != id {
						err = fmt.Errorf("asked %s, got %s", id, r.ID)
					}
				}
				if err != nil && !errors.Is(err, roomstore.ErrNotFound) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		want, werr := inner.GetRoom(ctx, id)
		got, gerr := c.GetRoom(ctx, id)
		if errors.Is(werr, roomstore.ErrNotFound) != errors.Is(gerr, roomstore.ErrNotFound) || !got.Equal(want) {
			t.Fatalf("%s: cache serves %+v (%v), store has %+v (%v)", id, got, gerr, want, werr)
		}
	}
}

// A caller changing the map or the rooms it got never changes what the next caller gets.
func TestCachedMutationIsolation(t *testing.T) {
	t.Parallel()
	c := newCached(t, roomstore.NewMemoryStore(), roomstore.CacheConfig{})
	ctx := cachedCtx(t)
	if err := c.PutRoom(ctx, roomstoretest.SampleRoom("iso")); err != nil {
		t.Fatal(err)
	}
	m, err := c.GetRooms(ctx, []string{"iso"})
	if err != nil {
		t.Fatal(err)
	}
	r := m["iso"]
	r.Name, r.Exits, r.Attributes = "x", roomstore.Exits{}, roomstore.MustAttributes(1)
	m["iso"] = r
	delete(m, "iso")
	got, err := c.GetRoom(ctx, "iso") // a cache hit
	if err != nil || !got.Equal(func() roomstore.Room { w := roomstoretest.SampleRoom("iso"); w.Version = 1; return w }()) {
		t.Fatalf("cached room changed by a caller: %+v, %v", got, err)
	}
}

// MaxRooms bounds the rooms kept: loading ten times as many leaves at most MaxRooms cached,
// and Stats accounts for the others as evictions or dropped fills.
func TestCachedCapacityBound(t *testing.T) {
	t.Parallel()
	inner := newCountingStore()
	const maxRooms, rooms = 20, 200
	c := newCached(t, inner, roomstore.CacheConfig{MaxRooms: maxRooms})
	ctx := cachedCtx(t)
	for i := range rooms {
		id := fmt.Sprint("cap-", i)
		if err := inner.PutRoom(ctx, roomstoretest.SampleRoom(id)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetRoom(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	s := c.Stats()
	if s.Evictions+s.DroppedFills < rooms-maxRooms {
		t.Fatalf("stats = %+v: %d rooms loaded into a cache of %d, too few evicted or dropped", s, rooms, maxRooms)
	}
	before := inner.gets.Load()
	for i := range rooms {
		if _, err := c.GetRoom(ctx, fmt.Sprint("cap-", i)); err != nil {
			t.Fatal(err)
		}
	}
	if cached := rooms - int(inner.gets.Load()-before); cached > maxRooms {
		t.Fatalf("%d rooms served from a cache of %d", cached, maxRooms)
	}
}
