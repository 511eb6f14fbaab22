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
//   - ChangeListener: follows edits made in plain SQL (see below).
//
// # Edits made in plain SQL (opt-in)
//
// Rooms edited outside the library — a builder tool, an admin script, psql — reach every
// Cached through PostgreSQL itself. Set PostgresConfig.NotifyChannel and Migrate installs
// a trigger (a versioned step of its own) that, at each commit touching the table, sends
// the ids of the rooms it changed with pg_notify: statement-level with transition
// tables, so one UPDATE of many rows costs one pass over them and a few notices, each
// below NOTIFY's 8,000-byte limit; a TRUNCATE, or a statement whose ids would need more
// than MaxNotifyBatches notices, sends NotifyAll instead. A game with its own tables
// (a SelectSQL) installs the same trigger on each of them with ChangeTriggerSQL, naming
// the column that holds the room id. A ChangeListener per process LISTENs on its own
// connection and calls Invalidate (or InvalidateAll) on the Cached, as natsbridge does for
// writes made through other servers.
//
// The bound: a read that starts after the listener applied the notice of a commit
// returns that commit's room or a later one (tested over 10,000 random SQL edits and three
// caches, judged by version numbers). In time, the notice arrives one hop after the
// commit: measured p50 0.5–2 ms and p99 4–10 ms from sending the UPDATE to the last of
// three caches invalidated, on a loaded 2-core machine
// (BenchmarkChangeListenerCommitToInvalidation). When the listener's connection is lost,
// or a health check gets no answer (ChangeListenerConfig.HealthCheck, so within twice
// that for a silent loss), the cache is emptied at once and again once listening
// resumes: notices sent in between are lost, never silently. While it is not listening
// (backing off, or in a connect attempt that may last ConnectTimeout) it also empties the
// cache once per HealthCheck, since the cache may refill from a database it still
// reaches. So in every state a read that starts 2×HealthCheck after a commit (HealthCheck
// if the listener already knew it was not listening) serves that commit or a later one;
// the price is that, while not listening, each room is read from the database at least
// once per HealthCheck. The TTL stays the last safety net, and a process without a
// ChangeListener keeps today's behaviour (SQL edits seen after the TTL or a refresh-ahead
// reload).
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
