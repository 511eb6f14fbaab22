package roomstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

// TestCachedInvalidateAll proves InvalidateAll drops every cached room and not-found
// entry: rooms changed behind the cache's back are read fresh afterwards.
func TestCachedInvalidateAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	inner := roomstore.NewMemoryStore()
	defer inner.Close()
	c, err := roomstore.NewCached(inner, roomstore.CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, id := range []string{"a", "b"} {
		if err := c.PutRoom(ctx, roomstoretest.SampleRoom(id)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetRoom(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.GetRoom(ctx, "later"); !errors.Is(err, roomstore.ErrNotFound) {
		t.Fatal(err)
	}
	// Writes made elsewhere: the cache still serves what it had.
	for _, id := range []string{"a", "b", "later"} {
		r := roomstoretest.SampleRoom(id)
		r.Name = "changed elsewhere"
		if err := inner.PutRoom(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if r, _ := c.GetRoom(ctx, "a"); r.Name == "changed elsewhere" {
		t.Fatal("precondition: the cache should still hold the old room")
	}
	c.InvalidateAll()
	for _, id := range []string{"a", "b", "later"} {
		r, err := c.GetRoom(ctx, id)
		if err != nil || r.Name != "changed elsewhere" {
			t.Fatalf("after InvalidateAll, %s = %+v, %v", id, r, err)
		}
	}
}

// failingWrites is a RoomStore whose writes fail with a chosen error.
type failingWrites struct {
	*roomstore.MemoryStore
	err error
}

func (f failingWrites) PutRoom(context.Context, roomstore.Room) error { return f.err }
func (f failingWrites) DeleteRoom(context.Context, string) error      { return f.err }
func (f failingWrites) PutRoomVersion(context.Context, roomstore.Room) (int64, error) {
	return 0, f.err
}

// TestCachedAfterWriteOnAmbiguousFailure: a write that failed after it may have been
// applied still tells other nodes (version 0); a write refused up front does not.
func TestCachedAfterWriteOnAmbiguousFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		err    error
		notify bool
	}{
		{context.DeadlineExceeded, true},
		{errors.New("connection reset by peer"), true},
		{roomstore.ErrReadOnly, false},
		{roomstore.ErrNotFound, false},
	} {
		var mu sync.Mutex
		var got []roomstore.RoomChange
		mem := roomstore.NewMemoryStore()
		c, err := roomstore.NewCached(failingWrites{mem, tc.err}, roomstore.CacheConfig{
			AfterWrite: func(ch roomstore.RoomChange) { mu.Lock(); got = append(got, ch); mu.Unlock() },
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.PutRoom(ctx, roomstoretest.SampleRoom("r")); !errors.Is(err, tc.err) {
			t.Fatalf("%v: PutRoom = %v", tc.err, err)
		}
		if err := c.DeleteRoom(ctx, "r"); !errors.Is(err, tc.err) {
			t.Fatalf("%v: DeleteRoom = %v", tc.err, err)
		}
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if want := map[bool]int{true: 2, false: 0}[tc.notify]; n != want {
			t.Errorf("%v: AfterWrite called %d times, want %d", tc.err, n, want)
		}
		for _, ch := range got {
			if ch.ID != "r" || ch.Version != 0 {
				t.Errorf("%v: change %+v, want id r with unknown version", tc.err, ch)
			}
		}
		_ = c.Close()
		_ = mem.Close()
	}
}
