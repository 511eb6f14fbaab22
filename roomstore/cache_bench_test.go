package roomstore_test

// Benchmarks of W3 (docs/ARCHITECTURE.md) (room reads). Compare numbers measured in the same run:
//
//	go test -run '^$' -bench 'Cached' -benchmem -benchtime 2s ./roomstore/

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

const benchRooms = 2_000

func benchIDs() []string {
	ids := make([]string, benchRooms)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-room-%05d", i)
	}
	return ids
}

// warmCached returns a Cached over a memory store holding every id, all of them cached.
func warmCached(b *testing.B, ids []string, cfg roomstore.CacheConfig) (*roomstore.Cached, *countingStore) {
	b.Helper()
	inner := newCountingStore()
	ctx := context.Background()
	for _, id := range ids {
		if err := inner.PutRoom(ctx, roomstoretest.SampleRoom(id)); err != nil {
			b.Fatal(err)
		}
	}
	c := newCached(b, inner, cfg)
	if _, err := c.GetRooms(ctx, ids); err != nil {
		b.Fatal(err)
	}
	return c, inner
}

// rawRistretto is ristretto configured as internal/cache configures it for Cached (the
// same counters, cost 1 per room, metrics on, the same TTL), holding the same rooms.
func rawRistretto(b *testing.B, ids []string) *ristretto.Cache[string, roomstore.Room] {
	b.Helper()
	rc, err := ristretto.NewCache(&ristretto.Config[string, roomstore.Room]{
		NumCounters:        10 * roomstore.DefaultCacheMaxRooms,
		MaxCost:            roomstore.DefaultCacheMaxRooms,
		BufferItems:        64,
		Metrics:            true,
		IgnoreInternalCost: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rc.Close)
	for _, id := range ids {
		r := roomstoretest.SampleRoom(id)
		r.Version = 1
		rc.SetWithTTL(id, r, 1, roomstore.DefaultCacheTTL)
	}
	rc.Wait()
	for _, id := range ids {
		if _, ok := rc.Get(id); !ok {
			b.Fatalf("raw ristretto lost %s", id)
		}
	}
	return rc
}

// W3 (1): a cached GetRoom hit against a raw ristretto Get of the same keys, timed in
// alternating slices of the same run. ns/op is the cached read; x-ristretto is the ratio
// (target ≤ 3).
func BenchmarkCachedGetRoomHitVsRistretto(b *testing.B) {
	ids := benchIDs()
	c, inner := warmCached(b, ids, roomstore.CacheConfig{})
	rc := rawRistretto(b, ids)
	ctx := context.Background()
	var sink roomstore.Room
	const slice = 4096
	var cachedDur, rawDur time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += slice {
		n := min(slice, b.N-done)
		start := time.Now()
		for i := range n {
			v, _ := rc.Get(ids[(done+i)%benchRooms])
			sink = v
		}
		mid := time.Now()
		for i := range n {
			r, err := c.GetRoom(ctx, ids[(done+i)%benchRooms])
			if err != nil {
				b.Fatal(err)
			}
			sink = r
		}
		cachedDur += time.Since(mid)
		rawDur += mid.Sub(start)
	}
	b.StopTimer()
	_ = sink
	if n := inner.gets.Load(); n != 0 {
		b.Fatalf("%d loads during a warm read benchmark", n)
	}
	b.ReportMetric(float64(cachedDur.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(float64(rawDur.Nanoseconds())/float64(b.N), "ristretto-ns/op")
	b.ReportMetric(float64(cachedDur)/float64(rawDur), "x-ristretto")
}

// W3 (2): parallel cached reads (hits) and the same reads on raw ristretto; -benchmem shows
// the allocations per read (0 on a hit).
func BenchmarkCachedGetRoomParallel(b *testing.B) {
	ids := benchIDs()
	b.Run("cached", func(b *testing.B) {
		c, _ := warmCached(b, ids, roomstore.CacheConfig{})
		ctx := context.Background()
		var seed sync.Mutex
		next := 0
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			seed.Lock()
			i := next * 7919
			next++
			seed.Unlock()
			for pb.Next() {
				if _, err := c.GetRoom(ctx, ids[i%benchRooms]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	b.Run("ristretto", func(b *testing.B) {
		rc := rawRistretto(b, ids)
		var seed sync.Mutex
		next := 0
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			seed.Lock()
			i := next * 7919
			next++
			seed.Unlock()
			for pb.Next() {
				if _, ok := rc.Get(ids[i%benchRooms]); !ok {
					b.Error("raw miss")
					return
				}
				i++
			}
		})
	})
}

// W3 (3): steady-state hit ratio over 2,000 rooms read with a seeded Zipf (s=1.1) pattern,
// starting from a cold cache warmed by 100,000 reads of the same pattern. hit_ratio is
// measured over the timed reads (target ≥ 0.995 with the default capacity). The default
// capacity is 50× the 2,000 rooms, so that case cannot miss once warm; the half-capacity
// case (1,000 of the 2,000 rooms) shows the admission policy at work and is not expected
// to meet the target. BenchmarkCachedHitRatioZipfHalfWorkingSet measures that bound case
// against the best any cache of that size can do.
func BenchmarkCachedHitRatioZipf(b *testing.B) {
	ids := benchIDs()
	for _, capacity := range []int64{roomstore.DefaultCacheMaxRooms, benchRooms / 2} {
		b.Run(fmt.Sprint("capacity=", capacity), func(b *testing.B) {
			inner := newCountingStore()
			ctx := context.Background()
			for _, id := range ids {
				if err := inner.PutRoom(ctx, roomstoretest.SampleRoom(id)); err != nil {
					b.Fatal(err)
				}
			}
			c := newCached(b, inner, roomstore.CacheConfig{MaxRooms: capacity})
			zipf := rand.NewZipf(rand.New(rand.NewPCG(2026, 7)), 1.1, 1, benchRooms-1)
			read := func() {
				if _, err := c.GetRoom(ctx, ids[zipf.Uint64()]); err != nil {
					b.Fatal(err)
				}
			}
			for range 100_000 {
				read()
			}
			before := c.Stats()
			b.ResetTimer()
			for range b.N {
				read()
			}
			b.StopTimer()
			after := c.Stats()
			hits := after.Hits - before.Hits
			misses := after.Misses - before.Misses
			b.ReportMetric(float64(hits)/float64(hits+misses), "hit_ratio")
			b.ReportMetric(float64(after.Loads-before.Loads)/float64(b.N), "loads/op")
		})
	}
}

// W3 (4): a cold stampede — 1,000 goroutines read one uncached id at once. loads/op is the
// number of loads reaching the inner store per stampede (must be 1); in the postgres case
// queries/op counts the queries the pool sent to the server (pgx.QueryTracer), also 1.
func BenchmarkCachedStampede(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		inner := newCountingStore()
		loads := benchStampede(b, inner, inner, func() {})
		b.ReportMetric(float64(loads())/float64(b.N), "loads/op")
	})
	b.Run("postgres", func(b *testing.B) {
		cs, _ := testdb.NewSchema(b)
		store, queries := cachedPostgres(b, cs)
		inner := &countingStore{RoomStore: store}
		var before int64
		loads := benchStampede(b, inner, store, func() { before = queries.Statements() })
		b.ReportMetric(float64(loads())/float64(b.N), "loads/op")
		b.ReportMetric(float64(queries.Statements()-before)/float64(b.N), "queries/op")
	})
}

// benchStampede runs b.N stampedes of 1,000 readers on a Cached over inner, each on a new
// id written through writer, and fails b unless each made exactly one load. It calls setupDone
// once the rooms are written, and returns the loads counted since.
func benchStampede(b *testing.B, inner *countingStore, writer roomstore.RoomStore, setupDone func()) func() int64 {
	const readers = 1000
	ctx := context.Background()
	c, err := roomstore.NewCached(inner, roomstore.CacheConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprint("stampede-", i)
		if err := writer.PutRoom(ctx, roomstoretest.SampleRoom(ids[i])); err != nil {
			b.Fatal(err)
		}
	}
	loads := func() int64 { return inner.gets.Load() + inner.batches.Load() }
	setupDone()
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	start := loads()
	for i := range b.N {
		begin := make(chan struct{})
		var ready, wg sync.WaitGroup
		ready.Add(readers)
		for range readers {
			wg.Go(func() {
				ready.Done()
				<-begin
				if _, err := c.GetRoom(ctx, ids[i]); err != nil {
					b.Error(err)
				}
			})
		}
		ready.Wait()
		b.StartTimer()
		close(begin)
		wg.Wait()
		b.StopTimer()
	}
	if n := loads() - start; n != int64(b.N) {
		b.Fatalf("%d loads for %d stampedes, want exactly one each", n, b.N)
	}
	return func() int64 { return loads() - start }
}

// W3 (3b): the hit ratio of a cache holding half the working set (capacity = keys/2),
// read with seeded Zipf patterns (P(k) ∝ (1+k)^−s) after a warm-up of 50 reads per key.
// hit_ratio is measured over the timed reads; optimal_hit_ratio is the best any cache of
// that capacity can do on independent reads (the probability of the capacity most
// frequent keys, computed from the distribution), and x_optimal their ratio.
//
//	go test -run '^$' -bench 'CachedHitRatioZipfHalfWorkingSet' -benchtime 1000000x ./roomstore/
func BenchmarkCachedHitRatioZipfHalfWorkingSet(b *testing.B) {
	for _, keys := range []int{2_000, 20_000} {
		for _, s := range []float64{1.01, 1.1, 1.5} {
			b.Run(fmt.Sprintf("keys=%d/capacity=%d/s=%v", keys, keys/2, s), func(b *testing.B) {
				benchHitRatioZipf(b, keys, keys/2, s)
			})
		}
	}
}

func benchHitRatioZipf(b *testing.B, keys, capacity int, s float64) {
	ids := make([]string, keys)
	for i := range ids {
		ids[i] = fmt.Sprintf("zipf-room-%06d", i)
	}
	inner := newCountingStore()
	ctx := context.Background()
	for _, id := range ids {
		if err := inner.PutRoom(ctx, roomstoretest.SampleRoom(id)); err != nil {
			b.Fatal(err)
		}
	}
	c := newCached(b, inner, roomstore.CacheConfig{MaxRooms: int64(capacity)})
	zipf := rand.NewZipf(rand.New(rand.NewPCG(2026, uint64(keys))), s, 1, uint64(keys-1))
	read := func() {
		if _, err := c.GetRoom(ctx, ids[zipf.Uint64()]); err != nil {
			b.Fatal(err)
		}
	}
	for range 50 * keys {
		read()
	}
	before := c.Stats()
	b.ResetTimer()
	for range b.N {
		read()
	}
	b.StopTimer()
	after := c.Stats()
	hits := after.Hits - before.Hits
	misses := after.Misses - before.Misses
	measured := float64(hits) / float64(hits+misses)
	best := zipfTopMass(keys, capacity, s)
	b.ReportMetric(measured, "hit_ratio")
	b.ReportMetric(best, "optimal_hit_ratio")
	b.ReportMetric(measured/best, "x_optimal")
	b.ReportMetric(float64(after.Loads-before.Loads)/float64(b.N), "loads/op")
}

// zipfTopMass returns the probability of the top most likely of keys keys under
// math/rand/v2's Zipf with v = 1: P(k) ∝ (1+k)^−s.
func zipfTopMass(keys, top int, s float64) float64 {
	var all, head float64
	for k := range keys {
		p := math.Pow(float64(1+k), -s)
		all += p
		if k < top {
			head += p
		}
	}
	return head / all
}

// Issue 9, item 2, measured: ticks one simulated game minute apart, each a VisitRooms of
// the same 2,000 rooms (as flux's Runner reads them), with the default TTL (5 min).
// Each op is one tick; the background refreshes a tick started are waited for outside
// the timer. reader_loads/tick counts inner loads on the tick's path after the warm-up
// tick; max_rooms_loaded_in_a_tick the most rooms one tick loaded itself; p99_tick_ns the
// 99th-percentile tick; refreshes/tick the background GetRooms calls. The case
// "refresh-ahead=off,jitter=off" is the cache before refresh-ahead (every room expires
// together and is reloaded inside one tick every 5).
//
//	go test -run '^$' -bench 'CachedSimulatedTicks' -benchtime 600x ./roomstore/
func BenchmarkCachedSimulatedTicks(b *testing.B) {
	modes := []struct {
		name string
		cfg  roomstore.CacheConfig
	}{
		{"refresh-ahead=0.75,jitter=0.1", roomstore.CacheConfig{}},
		{"refresh-ahead=off,jitter=off", roomstore.CacheConfig{RefreshAhead: roomstore.NoRefreshAhead, TTLJitter: roomstore.NoTTLJitter}},
	}
	for _, store := range []string{"memory", "postgres"} {
		for _, m := range modes {
			b.Run(store+"/"+m.name, func(b *testing.B) {
				ids := benchIDs()
				var inner roomstore.RoomStore = roomstore.NewMemoryStore()
				if store == "postgres" {
					cs, _ := testdb.NewSchema(b)
					inner, _ = cachedPostgres(b, cs)
				}
				putRooms(b, inner, ids)
				clock := newSimClock()
				cfg := m.cfg
				cfg.Clock = clock.Now
				c := newCached(b, inner, cfg)
				benchSimulatedTicks(b, c, clock, ids)
			})
		}
	}
}

func benchSimulatedTicks(b *testing.B, c *roomstore.Cached, clock *simClock, ids []string) {
	ctx := context.Background()
	visit := func() {
		if err := c.VisitRooms(ctx, ids, func(roomstore.Room) {}); err != nil {
			b.Fatal(err)
		}
	}
	visit() // the warm-up tick: every room loaded
	waitRefreshes(b, c)
	before := c.Stats()
	ticks := make([]time.Duration, 0, b.N)
	var maxLoaded uint64
	b.ResetTimer()
	for range b.N {
		clock.Advance(time.Minute)
		misses := c.Stats().Misses
		start := time.Now()
		visit()
		ticks = append(ticks, time.Since(start))
		b.StopTimer()
		maxLoaded = max(maxLoaded, c.Stats().Misses-misses)
		waitRefreshes(b, c)
		b.StartTimer()
	}
	b.StopTimer()
	after := c.Stats()
	slices.Sort(ticks)
	b.ReportMetric(float64(after.Loads-before.Loads)/float64(b.N), "reader_loads/tick")
	b.ReportMetric(float64(maxLoaded), "max_rooms_loaded_in_a_tick")
	b.ReportMetric(float64(ticks[len(ticks)*99/100].Nanoseconds()), "p99_tick_ns")
	b.ReportMetric(float64(after.RefreshesStarted-before.RefreshesStarted)/float64(b.N), "refreshes/tick")
}

// BenchmarkCachedGetRoomMiss measures one GetRoom miss on the memory store: an
// Invalidate, then a read that loads the room through the shared-load path and fills the
// cache (the cost a reader pays once per room per invalidation).
func BenchmarkCachedGetRoomMiss(b *testing.B) {
	inner := roomstore.NewMemoryStore()
	ctx := context.Background()
	if err := inner.PutRoom(ctx, roomstoretest.SampleRoom("miss")); err != nil {
		b.Fatal(err)
	}
	c := newCached(b, inner, roomstore.CacheConfig{})
	b.ReportAllocs()
	for b.Loop() {
		c.Invalidate("miss")
		if _, err := c.GetRoom(ctx, "miss"); err != nil {
			b.Fatal(err)
		}
	}
	if s := c.Stats(); s.Loads != s.Invalidations {
		b.Fatalf("%d loads for %d invalidations: a read was not a miss", s.Loads, s.Invalidations)
	}
}
