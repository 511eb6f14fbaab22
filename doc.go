// Package gamepersist is non-blocking persistence for Go game servers. It is a library: it
// never starts an event loop of its own, every resource it holds has Close() error, and
// every call that can wait takes a context first.
//
// It is three packages that fit together on a game's tick path:
//
//   - roomstore: the world's rooms. A [roomstore.RoomStore] interface with a PostgreSQL
//     implementation (pgx/v5, on a pool the caller owns or one it opens), an in-memory
//     implementation, and a read-through cache decorator ([roomstore.Cached], ristretto) that serves a warm tick with no database
//     round trip, makes one load for concurrent misses of one room, and loads the misses
//     of a batch in one call. roomstore/roomstoretest is the conformance suite every
//     implementation passes, a user's own included.
//   - flux: the passive-lucidity-flux tick. Pure functions compute one tick from players,
//     rooms, a time and carry-over state; a caller-driven [flux.Runner] does one tick with one
//     query for the active players, one GetRooms call, and one database statement that
//     writes every player of the tick, each as a compare-and-set on the player's last tick
//     number — so any number of game servers can tick the same players, and each player
//     gets exactly one step per game minute.
//   - natsbridge: game events over NATS. Typed envelopes, validated subjects, TLS and auth,
//     and a [natsbridge.Bridge] that runs handlers without ever blocking NATS delivery: bounded,
//     ordered per key, with retries, dead letters and stats. It also carries cross-node
//     room-cache invalidation, so a room written on one server is dropped from every
//     other server's cache.
//
// # The tick path
//
// One flux tick for N active players costs at most one query for the players, one query
// for the rooms not in the cache (none in steady state), an in-memory evaluation, and one
// write statement. The tick goroutine never makes a per-player or per-room round trip, and
// a tick that overruns its interval is skipped and counted rather than queued.
//
// # Several game servers
//
// N game servers share one PostgreSQL and one NATS cluster. Each runs its own
// flux.Runner (default configuration: all of them may tick every player; or with a Scope:
// each ticks the players it hosts), its own roomstore.Cached, and an invalidator that drops
// rooms written elsewhere. The flux package documentation says exactly what holds.
//
// # Lifecycle
//
// Every type that owns a goroutine — [flux.Runner], [roomstore.Cached], [natsbridge.Bridge] and
// [roomsync.RoomInvalidator] — keeps one contract (internal/lifecycle implements it, and each
// package has a test of it):
//
//   - Close stops every goroutine the value started before it returns. The first shutdown
//     call (Close, Stop, Drain) does the work and returns its outcome; every later call, from
//     any goroutine, waits for that work and returns the same error. Closing twice is safe.
//   - Run(ctx), where a type has one, blocks in the caller's goroutine. When ctx ends it
//     shuts down gracefully — the Runner flushes its pending writes, the Bridge drains —
//     bounded by the type's close timeout, and returns that shutdown's outcome (nil when
//     everything held was finished). When another goroutine shuts the value down while Run
//     waits, Run returns the same outcome.
//   - Every other method called once shutdown has begun returns the package's ErrClosed.
//   - A pool, *nats.Conn or RoomStore passed in is the caller's: the library never closes it.
//     A pool or connection the library opened itself ([roomstore.OpenPostgres], [natsbridge.Connect]) is
//     closed by the Close of the value that opened it.
//
// # Shutdown order
//
// Close each value after everything that calls it, which is the reverse of the order of
// construction — so deferring each Close right after its constructor gets it right:
//
//  1. natsbridge.Bridge: Drain (or end Run's context). Its handlers call the Runner, the
//     stores and the pool; draining first lets them finish while all of those still work.
//  2. flux.Runner: Stop or Close (or end Run's context). Its final flush writes through
//     the player store and the pool, and its ticks read rooms through the cache.
//  3. roomsync.RoomInvalidator: Close (it drops rooms from the cache).
//  4. roomstore.Cached, then the roomstore.Postgres store: Close (a store from
//     roomstore.OpenPostgres closes the pool it opened).
//  5. Your own *pgxpool.Pool and *nats.Conn, last: the library never closes them.
//
// A wrong order loses nothing that was durable but does not pass silently. A Runner closed
// before the Bridge that calls it returns an error matching flux.ErrClosed from
// AddLucidity; a pool closed first fails every call with pgx's closed-pool error. A durable
// handler that turns such an error into natsbridge.Retryable has its message given back to
// JetStream at once (delivered again to the next consumer, in order), a warn line names
// the error, and Drain returns an error matching natsbridge.ErrUnhandled and the handler's
// error (errors.Is(err, flux.ErrClosed)). A handler that returns the error unmarked
// dead-letters the message instead.
//
// Invalid configuration is reported by New/Open as an error wrapping the package's
// ErrInvalidConfig (and, for a bad field, a *ConfigError naming it). Logging is structured
// (zerolog, injected; zerolog.Nop() by default) and never prints a password.
//
// The architecture — packages, layers, the tick's data path and the owner of every
// goroutine — is drawn in docs/ARCHITECTURE.md; examples/quickstart is a whole program on
// the non-blocking path.
//
// [roomstore.RoomStore]: https://pkg.go.dev/github.com/gamepersist/gamepersist/roomstore#RoomStore
// [roomstore.Cached]: https://pkg.go.dev/github.com/gamepersist/gamepersist/roomstore#Cached
// [roomstore.OpenPostgres]: https://pkg.go.dev/github.com/gamepersist/gamepersist/roomstore#OpenPostgres
// [flux.Runner]: https://pkg.go.dev/github.com/gamepersist/gamepersist/flux#Runner
// [natsbridge.Bridge]: https://pkg.go.dev/github.com/gamepersist/gamepersist/natsbridge#Bridge
// [roomsync.RoomInvalidator]: https://pkg.go.dev/github.com/gamepersist/gamepersist/natsbridge/roomsync#RoomInvalidator
// [natsbridge.Connect]: https://pkg.go.dev/github.com/gamepersist/gamepersist/natsbridge#Connect
package gamepersist
