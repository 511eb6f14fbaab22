package roomstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

// VisitRooms loads every miss in one inner GetRooms call, as GetRooms does, counts hits and
// misses the same way, and fills the cache so that the next visit makes no inner call.
func TestCachedVisitRoomsOneLoadForAllMisses(t *testing.T) {
	t.Parallel()
	inner := newCountingStore()
	c := newCached(t, inner, roomstore.CacheConfig{})
	ctx := cachedCtx(t)
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprint("v-", i)
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
	before := c.Stats()
	visits := map[string]int{}
	visit := func(r roomstore.Room) { visits[r.ID]++ }
	if err := c.VisitRooms(ctx, append(ids, ids[:40]...), visit); err != nil {
		t.Fatal(err)
	}
	if len(visits) != 90 {
		t.Fatalf("VisitRooms visited %d rooms, want 90", len(visits))
	}
	for id, n := range visits {
		if n != 1 {
			t.Fatalf("room %s visited %d times", id, n)
		}
	}
	if b, n := inner.batches.Load(), inner.batchIDs.Load(); b != 1 || n != 70 {
		t.Fatalf("inner GetRooms: %d calls for %d ids, want 1 call for the 70 misses", b, n)
	}
	st := c.Stats()
	if hits, misses := st.Hits-before.Hits, st.Misses-before.Misses; hits != 30 || misses != 70 || st.Loads-before.Loads != 1 {
		t.Fatalf("stats after a visit: %d hits, %d misses, %d loads; want 30, 70, 1", hits, misses, st.Loads-before.Loads)
	}
	clear(visits)
	if err := c.VisitRooms(ctx, ids, visit); err != nil || len(visits) != 90 || inner.batches.Load() != 1 {
		t.Fatalf("warm VisitRooms: %d rooms, %v, %d inner calls", len(visits), err, inner.batches.Load())
	}
}

// A warm VisitRooms makes no allocation of its own: what remains is ristretto's access
// sampling, at most one 512-byte buffer per 64 hits, while GetRooms allocates at least one
// value per room (not checked under -race, whose sync.Pool drops items on purpose). And fn
// may call the Cached itself: it runs while the decorator holds no lock.
func TestCachedVisitRoomsWarmAllocatesNothingOfItsOwn(t *testing.T) {
	inner := roomstore.NewMemoryStore()
	c := newCached(t, inner, roomstore.CacheConfig{})
	ctx := cachedCtx(t)
	ids := make([]string, 640)
	for i := range ids {
		ids[i] = fmt.Sprint("w-", i)
		if err := inner.PutRoom(ctx, roomstoretest.SampleRoom(ids[i])); err != nil {
			t.Fatal(err)
		}
	}
	// ristretto admits new entries on its own goroutine: read until every room is a hit.
	cachedWaitFor(t, "every room cached", func() bool {
		loads := c.Stats().Loads
		if _, err := c.GetRooms(ctx, ids); err != nil {
			t.Fatal(err)
		}
		if c.Stats().Loads == loads {
			return true
		}
		time.Sleep(10 * time.Millisecond)
		return false
	})
	n := 0
	count := func(roomstore.Room) { n++ }
	visitAllocs := testing.AllocsPerRun(20, func() {
		if err := c.VisitRooms(ctx, ids, count); err != nil {
			t.Fatal(err)
		}
	})
	if n != 21*len(ids) { // AllocsPerRun runs once more to warm up
		t.Fatalf("visited %d rooms over 21 runs, want %d", n, 21*len(ids))
	}
	getAllocs := testing.AllocsPerRun(5, func() {
		if _, err := c.GetRooms(ctx, ids); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("warm, %d rooms: VisitRooms %.0f allocations, GetRooms %.0f", len(ids), visitAllocs, getAllocs)
	if limit := float64(len(ids)/64 + 1); visitAllocs > limit && !raceEnabled {
		t.Fatalf("warm VisitRooms of %d rooms: %.0f allocations, want at most %.0f (ristretto's sampling buffers)",
			len(ids), visitAllocs, limit)
	}
	if getAllocs < float64(len(ids)) && !raceEnabled {
		t.Fatalf("warm GetRooms of %d rooms: %.0f allocations; expected one per room at least (the map's values)",
			len(ids), getAllocs)
	}
	reentered := 0
	if err := c.VisitRooms(ctx, ids[:3], func(r roomstore.Room) {
		if again, err := c.GetRoom(ctx, r.ID); err == nil && again.Equal(r) {
			reentered++
		}
	}); err != nil || reentered != 3 {
		t.Fatalf("VisitRooms calling GetRoom from fn: %d of 3, %v", reentered, err)
	}
}
