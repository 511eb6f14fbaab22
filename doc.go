// Package gamepersist is non-blocking persistence for Go game servers. It is a library: it
// never starts an event loop of its own, every resource it holds has Close() error, and
// every call that can wait takes a context first.
//
// It is three packages that fit together on a game's tick path:
//
//   - roomstore: the world's rooms. A RoomStore interface with a PostgreSQL implementation
//     (pgx/v5, on a pool the caller owns or one it opens), an in-memory implementation, and
//     a read-through cache decorator (ristretto) that serves a warm tick with no database
//     round trip, makes one load for concurrent misses of one room, and loads the misses
//     of a batch in one call. roomstore/roomstoretest is the conformance suite every
//     implementation passes, a user's own included.
//   - flux: the passive-lucidity-flux tick. Pure functions compute one tick from players,
//     rooms, a time and carry-over state; a caller-driven Runner does one tick with one
//     query for the active players, one GetRooms call, and one database statement that
//     writes every player of the tick, each as a compare-and-set on the player's last tick
//     number — so any number of game servers can tick the same players, and each player
//     gets exactly one step per game minute.
//   - natsbridge: game events over NATS. Typed envelopes, validated subjects, TLS and auth,
//     and a Bridge that runs handlers without ever blocking NATS delivery: bounded,
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
// The caller owns every goroutine and connection: long-running helpers block in the
// caller's goroutine (Run(ctx) error), a pool or NATS connection passed in is never closed
// by the library, and Close stops everything a value started before it returns. Logging is
// structured (zerolog, injected; zerolog.Nop() by default) and never prints a password.
package gamepersist
