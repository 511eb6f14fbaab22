package roomstore

import "context"

// RoomVisitor is an optional extension of RoomStore for callers that only read each room
// once, such as the flux tick copying a few fields of every room it needs: VisitRooms
// hands the rooms to a function instead of building the map GetRooms returns. A Room is
// 160 bytes, so a Go map stores it out of line and GetRooms costs one allocation per room
// found; VisitRooms costs none of those. Test for it with a type assertion and fall back to
// GetRooms:
//
//	if v, ok := store.(roomstore.RoomVisitor); ok {
//		err = v.VisitRooms(ctx, ids, func(r roomstore.Room) { use(r) })
//	}
//
// Every store in this module implements it (MemoryStore, Postgres, Cached), and the
// conformance suite in package roomstoretest checks that VisitRooms and GetRooms agree on
// any store that implements both.
type RoomVisitor interface {
	// VisitRooms calls fn once for each room found among ids (an id listed twice is
	// visited once), in no particular order, on the caller's goroutine. It reads what
	// GetRooms reads, in the same number of round trips, and fails as GetRooms does: any
	// invalid id gives ErrInvalidID, a closed store ErrClosed, a done ctx its error.
	//
	// fn may keep the Room it is given (a Room is a value that nobody changes in place).
	// It must not call back into the store (it may run under the store's lock or while a
	// database connection is held) and should be quick: it runs inside the read. When
	// VisitRooms returns an error, fn may already have been called for some rooms:
	// discard what it gathered.
	VisitRooms(ctx context.Context, ids []string, fn func(Room)) error
}
