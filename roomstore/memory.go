package roomstore

import (
	"context"
	"fmt"
	"sync"
)

// MemoryStore is a RoomStore held in process memory: the embedded default for programs
// that run without a database, and a test double that behaves exactly as the Postgres store
// does (both pass roomstoretest). Reads take a shared lock and copy no more than the Room
// value; the zero value is not usable, use NewMemoryStore.
type MemoryStore struct {
	mu     sync.RWMutex
	rooms  map[string]Room
	closed bool
	sets   idSets // scratch sets of ids for VisitRooms
}

var (
	_ RoomStore       = (*MemoryStore)(nil)
	_ VersionedPutter = (*MemoryStore)(nil)
	_ RoomVisitor     = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{rooms: make(map[string]Room)}
}

// GetRoom implements RoomStore.
func (s *MemoryStore) GetRoom(ctx context.Context, id string) (Room, error) {
	if err := ValidateID(id); err != nil {
		return Room{}, err
	}
	if err := ctx.Err(); err != nil {
		return Room{}, fmt.Errorf("roomstore: get room: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return Room{}, ErrClosed
	}
	r, ok := s.rooms[id]
	if !ok {
		return Room{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return r, nil
}

// GetRooms implements RoomStore.
func (s *MemoryStore) GetRooms(ctx context.Context, ids []string) (map[string]Room, error) {
	if err := validateIDs(ids); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("roomstore: get rooms: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	out := make(map[string]Room, len(ids))
	for _, id := range ids {
		if r, ok := s.rooms[id]; ok {
			out[id] = r
		}
	}
	return out, nil
}

// VisitRooms implements RoomVisitor: GetRooms without the result map. It costs a map
// lookup and a set insert per id and allocates nothing in steady state. fn runs under the
// store's read lock, so it must not call the store.
func (s *MemoryStore) VisitRooms(ctx context.Context, ids []string, fn func(Room)) error {
	if err := validateIDs(ids); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("roomstore: visit rooms: %w", err)
	}
	seen := s.sets.get(len(ids))
	defer s.sets.put(seen)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	for _, id := range ids {
		if !addNew(seen, id) {
			continue
		}
		if r, ok := s.rooms[id]; ok {
			fn(r)
		}
	}
	return nil
}

// PutRoom implements RoomStore.
func (s *MemoryStore) PutRoom(ctx context.Context, room Room) error {
	_, err := s.PutRoomVersion(ctx, room)
	return err
}

// PutRoomVersion implements VersionedPutter.
func (s *MemoryStore) PutRoomVersion(ctx context.Context, room Room) (int64, error) {
	if err := room.Validate(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("roomstore: put room: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	room.Version = s.rooms[room.ID].Version + 1
	s.rooms[room.ID] = room
	return room.Version, nil
}

// DeleteRoom implements RoomStore.
func (s *MemoryStore) DeleteRoom(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("roomstore: delete room: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, ok := s.rooms[id]; !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	delete(s.rooms, id)
	return nil
}

// Len returns the number of rooms held.
func (s *MemoryStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.rooms)
}

// Close implements RoomStore. It drops every room; a second call returns nil.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.rooms = nil
	return nil
}
