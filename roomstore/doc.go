// Package roomstore stores a game world's rooms: the RoomStore interface, an in-memory
// implementation, a PostgreSQL implementation on pgx/v5, and a read-through cache that
// decorates any of them.
//
// # Rooms
//
// A Room is a plain value whose parts cannot be changed in place (Exits and Attributes are
// immutable types), so a Room can be copied, cached and shared between goroutines freely:
// changing a field of a Room you got changes only your copy. Ids are any printable UTF-8
// text of at most MaxIDLength bytes; ValidateID rejects the rest with ErrInvalidID before
// any I/O, and stores pass ids as parameters, never as SQL text.
//
// # Stores
//
//   - [MemoryStore]: the embedded default for programs without a database, and a test
//     double that behaves exactly like the Postgres store.
//   - [Postgres]: [NewPostgres] on a *pgxpool.Pool you own (never closed by the store), or
//     [OpenPostgres], which opens a pool and closes it in Close. GetRooms is one round trip
//     whatever the count; PutRoom is one upsert that bumps Version; Migrate applies the
//     embedded, versioned migrations, each step once (advisory lock, version table
//     gamepersist_migrations), and creates the configured schema. A game with its own schema sets
//     PostgresConfig.Table, or a SelectSQL that assembles rooms from several tables.
//   - [Cached]: a read-through decorator (ristretto behind internal/cache). A hit costs a
//     map lookup and no allocation; concurrent misses of one room make one load; GetRooms
//     loads every miss in one inner call; not-found ids are remembered briefly; writes
//     through it invalidate, and Invalidate/InvalidateAll drop what other processes wrote
//     (package natsbridge carries those notices between servers). A hit on a room older
//     than CacheConfig.RefreshAhead of its TTL is served and reloaded in the background
//     (one batch per read call, bounded, stopped by Close), so rooms read every tick are
//     loaded on the reader's path only once; each room's TTL is jittered (±10 %) so rooms
//     loaded together do not expire together.
//     CacheConfig.AfterWrite is called after each successful write through the Cached, and
//     with Version 0 after a write that failed in a way that may still have been applied
//     (a timeout, a lost reply), so other nodes reload rather than keep a stale room; not
//     after a write refused before any I/O or a delete of an absent room. A load or
//     refresh that began before an invalidation never caches what it read.
//
// Every store also implements the optional RoomVisitor: VisitRooms reads what GetRooms
// reads but hands each room to a function instead of building a map, which saves one
// allocation per room (on a warm Cached it makes no allocation of its own).
//
// Every store is safe for concurrent use, takes a context first on every call that can
// wait, returns errors matchable with errors.Is (ErrNotFound, ErrInvalidID, ErrInvalidRoom,
// ErrClosed, ErrReadOnly, ErrInvalidConfig) and passes the conformance suite in package
// roomstoretest, which a store of your own can run as well.
package roomstore
