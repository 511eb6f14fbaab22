package roomstore_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

// An invalidation that lands inside a fill, after the fill checked the id's generation
// and before it stored what it read, must not leave the value read before the write in
// the cache: the fill's recheck removes it (the middle case of the invariant in
// cached_invalidate.go). Every caller of the one fill path is covered: GetRoom (a batch of
// one), GetRooms, and a refresh-ahead reload; for a room found and for one not found.
func TestCachedInvalidationBetweenCheckAndStore(t *testing.T) {
	t.Parallel()
	getRoom := func(ctx context.Context, c *roomstore.Cached) (roomstore.Room, error) {
		return c.GetRoom(ctx, "race")
	}
	getRooms := func(ctx context.Context, c *roomstore.Cached) (roomstore.Room, error) {
		m, err := c.GetRooms(ctx, []string{"race"})
		if r, ok := m["race"]; ok || err != nil {
			return r, err
		}
		return roomstore.Room{}, roomstore.ErrNotFound
	}
	for _, tc := range []struct {
		name    string
		read    func(context.Context, *roomstore.Cached) (roomstore.Room, error)
		exists  bool // the room exists before the racing write
		refresh bool // the racing fill is a refresh-ahead reload of a stale room
	}{
		{"GetRoom/found", getRoom, true, false},
		{"GetRoom/notFound", getRoom, false, false},
		{"GetRooms/found", getRooms, true, false},
		{"GetRooms/notFound", getRooms, false, false},
		{"Refresh/found", getRoom, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inner := roomstore.NewMemoryStore()
			clock := newSimClock()
			c := newCached(t, inner, roomstore.CacheConfig{
				TTL: time.Hour, TTLJitter: roomstore.NoTTLJitter, Clock: clock.Now,
			})
			ctx := cachedCtx(t)
			old := roomstoretest.SampleRoom("race")
			old.Name = "old"
			if tc.exists {
				if err := inner.PutRoom(ctx, old); err != nil {
					t.Fatal(err)
				}
			}
			fresh := old
			fresh.Name = "new"
			var armed, fired atomic.Bool
			c.SetAfterCheckForTest(func(id string) {
				if id != "race" || !armed.CompareAndSwap(true, false) {
					return
				}
				// A write made elsewhere lands now; its invalidation arrives at once.
				if err := inner.PutRoom(context.Background(), fresh); err != nil {
					t.Error(err)
				}
				c.Invalidate(id)
				fired.Store(true)
			})
			if tc.refresh {
				if _, err := tc.read(ctx, c); err != nil { // caches "old"
					t.Fatal(err)
				}
				clock.Advance(50 * time.Minute) // past RefreshAhead (0.75) of the TTL
				armed.Store(true)
				if r, err := tc.read(ctx, c); err != nil || r.Name != "old" {
					t.Fatalf("stale hit = %q, %v; want old", r.Name, err)
				}
				waitRefreshes(t, c)
			} else {
				armed.Store(true)
				r, err := tc.read(ctx, c)
				switch {
				case tc.exists && (err != nil || r.Name != "old"):
					t.Fatalf("racing read = %q, %v; want old", r.Name, err)
				case !tc.exists && !errors.Is(err, roomstore.ErrNotFound):
					t.Fatalf("racing read = %q, %v; want ErrNotFound", r.Name, err)
				}
			}
			if !fired.Load() {
				t.Fatal("the invalidation did not land inside the fill; the test did not race")
			}
			r, err := c.GetRoom(ctx, "race")
			if err != nil || r.Name != "new" {
				t.Fatalf("after the invalidation the cache serves %q (%v), want new", r.Name, err)
			}
		})
	}
}
