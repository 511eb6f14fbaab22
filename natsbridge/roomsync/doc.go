// Package roomsync keeps the room caches of several game-server processes coherent over
// NATS: a [RoomInvalidator] publishes a notice for every room a process writes and drops
// the rooms other processes wrote from this process's cache. It is apart from natsbridge
// so that a NATS-only user of natsbridge links neither pgx nor ristretto; it uses
// natsbridge's envelope codec and subject rules.
//
// Each game-server process reads rooms through its own roomstore.Cached. When one
// process writes a room, the others must drop their copy. Wire each process in this
// order:
//
//	inv, err := roomsync.NewRoomInvalidator(nc, roomsync.InvalidatorConfig{})
//	cached, err := roomstore.NewCached(store, roomstore.CacheConfig{AfterWrite: inv.Publish})
//	err = inv.Attach(ctx, cached) // other processes' writes now invalidate cached
//	...
//	inv.Close(); cached.Close()   // then the store, then nc: each owner closes its own
//
// The invalidator exists before the cache because its Publish is the cache's AfterWrite
// hook; Attach comes last because it needs the cache as its target. Publish runs in the
// writer's goroutine after the write committed (or may have), never blocks and never
// fails the write: a bounded queue and one publisher goroutine hand the notice (room id,
// version, deleted) to NATS. On the receiving side the subscription's callback ignores
// the process's own echo and calls Invalidate on the cache; the next read there loads
// the room from the database.
//
// NATS core does not redeliver, so a notice is lost while NATS or the receiver's
// connection is down. Two things bound the staleness: the cache TTL
// (roomstore.CacheConfig.TTL) is the safety net for any lost notice, and when the
// receiving connection comes back after an outage, and when nats.go dropped notices
// because the subscription was a slow consumer (at the start and at the end of each such
// episode), the RoomInvalidator calls the target's InvalidateAll (*roomstore.Cached has
// it), which drops every cached room at once because notices may have been missed.
//
// Ownership: the *nats.Conn stays the caller's; Close stops the publisher and the
// subscription and returns once the last notice callback returned. Errors wrap
// [ErrInvalidConfig] (a value out of range is a *[ConfigError]) or [ErrClosed].
package roomsync
