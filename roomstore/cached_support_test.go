package roomstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/roomstore"
)

// countingStore wraps a RoomStore, counts the reads that reach it and can hold them: with
// a gate set, a read first runs against the inner store (it "reads the database"), then
// waits for the gate before replying, as a slow round trip would.
type countingStore struct {
	roomstore.RoomStore
	gets, batches atomic.Int64
	batchIDs      atomic.Int64

	mu      sync.Mutex
	gate    chan struct{}
	failErr error // returned (once per call) while set
	// loadCtxErr records ctx.Err() as seen by the last read when it replied.
	loadCtxErr atomic.Value
}

func newCountingStore() *countingStore {
	return &countingStore{RoomStore: roomstore.NewMemoryStore()}
}

// hold makes reads wait until release is called.
func (s *countingStore) hold() (release func()) {
	g := make(chan struct{})
	s.mu.Lock()
	s.gate = g
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.gate = nil
			s.mu.Unlock()
			close(g)
		})
	}
}

func (s *countingStore) failWith(err error) {
	s.mu.Lock()
	s.failErr = err
	s.mu.Unlock()
}

func (s *countingStore) wait(ctx context.Context) error {
	s.mu.Lock()
	g, ferr := s.gate, s.failErr
	s.mu.Unlock()
	if g != nil {
		select {
		case <-g:
		case <-ctx.Done():
		}
	}
	s.loadCtxErr.Store(cachedErrBox{ctx.Err()})
	if ferr != nil {
		return ferr
	}
	return ctx.Err()
}

type cachedErrBox struct{ err error }

func (s *countingStore) GetRoom(ctx context.Context, id string) (roomstore.Room, error) {
	s.gets.Add(1)
	r, err := s.RoomStore.GetRoom(ctx, id)
	if werr := s.wait(ctx); werr != nil {
		return roomstore.Room{}, werr
	}
	return r, err
}

func (s *countingStore) GetRooms(ctx context.Context, ids []string) (map[string]roomstore.Room, error) {
	s.batches.Add(1)
	s.batchIDs.Add(int64(len(ids)))
	m, err := s.RoomStore.GetRooms(ctx, ids)
	if werr := s.wait(ctx); werr != nil {
		return nil, werr
	}
	return m, err
}

// PutRoomVersion forwards to the memory store, so the decorator sees a VersionedPutter.
func (s *countingStore) PutRoomVersion(ctx context.Context, r roomstore.Room) (int64, error) {
	return s.RoomStore.(roomstore.VersionedPutter).PutRoomVersion(ctx, r)
}

func newCached(t testing.TB, inner roomstore.RoomStore, cfg roomstore.CacheConfig) *roomstore.Cached {
	t.Helper()
	c, err := roomstore.NewCached(inner, cfg)
	if err != nil {
		t.Fatalf("NewCached: %v", err)
	}
	t.Cleanup(func() {
		_ = c.Close()
		_ = inner.Close()
	})
	return c
}

func cachedCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// cachedWaitFor polls cond until it holds or 10 s pass.
func cachedWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
