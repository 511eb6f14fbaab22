package roomstore

import "context"

// RoomStore reads and writes rooms. Implementations in this module: MemoryStore, the
// Postgres store (NewPostgres, OpenPostgres) and the read-through Cached decorator. All are
// safe for concurrent use and pass the conformance suite in package roomstoretest, which a
// user's own implementation can run too.
//
// Every method takes ctx first and returns when ctx is done. After Close every method
// returns an error wrapping ErrClosed.
type RoomStore interface {
	// GetRoom returns the room with the given id, or an error wrapping ErrNotFound or
	// ErrInvalidID.
	GetRoom(ctx context.Context, id string) (Room, error)
	// GetRooms returns the rooms with the given ids in one call (one round trip for a
	// database store, whatever the count). Ids that name no room are absent from the map;
	// duplicates are allowed. Any invalid id fails the whole call with ErrInvalidID.
	GetRooms(ctx context.Context, ids []string) (map[string]Room, error)
	// PutRoom inserts or replaces a room and sets its Version to the previous version + 1.
	PutRoom(ctx context.Context, room Room) error
	// DeleteRoom removes a room; deleting an absent room returns ErrNotFound.
	DeleteRoom(ctx context.Context, id string) error
	// Close releases what the store holds. It is idempotent: a second call returns nil.
	Close() error
}

// VersionedPutter is an optional extension of RoomStore for stores that can report the
// version a write produced without a second round trip. The Cached decorator uses it to
// tell other nodes which version to expect; every store in this module implements it.
type VersionedPutter interface {
	// PutRoomVersion is PutRoom that also returns the version it stored.
	PutRoomVersion(ctx context.Context, room Room) (int64, error)
}
