package roomstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

// stallFirstGet lets its first GetRoom read the inner store, then holds the reply until
// release is closed (a slow round trip that read the room before a write). Later reads
// go straight through.
type stallFirstGet struct {
	roomstore.RoomStore
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func (s *stallFirstGet) GetRoom(ctx context.Context, id string) (roomstore.Room, error) {
	r, err := s.RoomStore.GetRoom(ctx, id)
	first := false
	s.once.Do(func() { first = true })
	if first {
		close(s.started)
		select {
		case <-s.release:
		case <-ctx.Done():
			return roomstore.Room{}, ctx.Err()
		}
	}
	return r, err
}

// A read that starts after a write through the decorator returned (or after Invalidate)
// must see that write: it must not join a load that began before the write and so may
// have read the old room, or "not found" for a room the write created.
func TestCachedReadAfterWriteDoesNotJoinStaleLoad(t *testing.T) {
	t.Parallel()
	for _, existed := range []bool{true, false} {
		name := "Update"
		if !existed {
			name = "Create"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			mem := roomstore.NewMemoryStore()
			inner := &stallFirstGet{RoomStore: mem, started: make(chan struct{}), release: make(chan struct{})}
			c := newCached(t, inner, roomstore.CacheConfig{})
			ctx := cachedCtx(t)
			old := roomstoretest.SampleRoom("flight")
			old.Name = "old"
			if existed {
				if err := mem.PutRoom(ctx, old); err != nil {
					t.Fatal(err)
				}
			}
			type result struct {
				r   roomstore.Room
				err error
			}
			first := make(chan result, 1)
			go func() {
				r, err := c.GetRoom(ctx, "flight")
				first <- result{r, err}
			}()
			<-inner.started // the first load read the room as it was before the write

			fresh := old
			fresh.Name = "new"
			if err := c.PutRoom(ctx, fresh); err != nil {
				t.Fatal(err)
			}
			wantVersion := int64(1)
			if existed {
				wantVersion = 2
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			r, err := c.GetRoom(rctx, "flight")
			cancel()
			close(inner.release)
			if err != nil || r.Name != "new" || r.Version != wantVersion {
				t.Fatalf("GetRoom after PutRoom returned = %q v%d, %v; want \"new\" v%d", r.Name, r.Version, err, wantVersion)
			}
			res := <-first
			if existed && (res.err != nil || res.r.Name != "old") {
				t.Fatalf("the racing load returned %q, %v; the test did not race", res.r.Name, res.err)
			}
			if !existed && !errors.Is(res.err, roomstore.ErrNotFound) {
				t.Fatalf("the racing load returned %v; want ErrNotFound (the test did not race)", res.err)
			}
			if r, err := c.GetRoom(ctx, "flight"); err != nil || r.Name != "new" {
				t.Fatalf("cache serves %q, %v after the stale load finished; want \"new\"", r.Name, err)
			}
		})
	}
}
