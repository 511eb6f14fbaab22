// Package lease divides a fixed number of shards of the player-id space among the live
// members of a group (one member per game server's Runner), each shard held by one member
// at a time under a lease on PostgreSQL, with a fencing epoch that writes check.
//
// # Shards
//
// ShardOf maps a player id to one of Config.Shards shards (64 by default): the first four
// bytes of the id's MD5, big-endian, modulo the count. ShardSQL computes the same inside
// PostgreSQL, so a load query can read only the owned shards' players. The mapping never
// changes; every member of one schema must use the same count (a member that disagrees
// is refused with ErrShardCountMismatch), so changing it means stopping every member
// first.
//
// # Tables
//
// Manager.Migrate creates, in Config.Schema, through internal/migrate (component "lease"):
//
//   - gamepersist_lease_members (member_id, incarnation, shards, joined_at, expires_at): one
//     row per member, its heartbeat. A live row is taken over only by the same incarnation
//     (a random token per Manager) or once expired, so two live processes with one member
//     id are refused (ErrMemberIDInUse).
//   - gamepersist_leases (shard, owner, epoch, acquired_at, expires_at): one row per shard
//     ever held. Releasing sets owner NULL and keeps the row, so a shard's epoch only grows.
//
// # Protocol
//
// River's leader election (an insert-on-conflict on a row with an expiry, renewed, given
// up on stop) applied to many units, converging on a fair share as Kafka consumer groups
// and Akka sharding do, but with no coordinator: every member runs the same cycle every
// RenewEvery (TTL/3 by default):
//
//  1. In one round trip and one transaction: upsert its heartbeat (expires_at = now() +
//     TTL), delete member rows expired for more than a TTL, renew the leases it holds
//     (only those still unexpired, with the owner and epoch it knows), and read the live
//     members in join order.
//  2. Compute its share: Shards/members, plus one for the first Shards%members members in
//     join order, so the shares add up to Shards exactly and a joining member never moves
//     the extra shards of older ones.
//  3. Over its share: release the surplus (highest shard numbers), removing them from
//     Owned before the release is sent. Under it: take that many free, released or
//     expired shards in one statement — River's insert-on-conflict for a shard never held
//     (epoch 1), and for an existing row a lock FOR UPDATE in ascending shard order, a
//     second look at the expiry on the locked row, and epoch+1. A live lease is never
//     taken, also when a concurrent member took it first: the second look sees it.
//
// Close releases every lease of the member and deletes its member row, in one round trip.
// A lease that was not renewed in time is lost, not revived: the member may take the
// shard again, at a new epoch.
//
// Owned reports a lease only until its local deadline: the send time of the statement
// that last renewed or took it, plus TTL. The database computed expires_at from its own
// now(), later than that send time, so a member stops believing in a lease before any
// other member can take it (assuming the two clocks advance at the same rate; their
// offset does not matter). No clock is injected: expiry is judged by the database's
// now(), the local deadline by Go's monotonic clock. Owned is exact at the time of the
// call; Changes is signalled when a cycle changes the owned set.
//
// # Bounds
//
// With R = RenewEvery and a cycle's round trips short against R:
//
//   - clean leave (Close): the other members take the shards at their next cycle, within
//     R;
//   - kill: the leases expire at most TTL after the member's last renewal, and the others
//     take them at their next cycle after that: within TTL + R;
//   - join: the holders see the newcomer and release surplus at their next cycle (within
//     R), and the newcomer takes it at its next one: within 2R;
//   - a failed cycle is retried at the next period; two can fail (with TTL = 3R) before a
//     lease lapses.
//
// # Fencing
//
// FenceSQL is a boolean expression a writer ANDs into its own statement: true while the
// given member holds the shard under the given epoch and the lease is unexpired at the
// statement's clock_timestamp(). FencedShardsSQL is the same check once per statement
// for a write over many shards: a WITH clause of the shards still held, which the written
// rows join. Either locks the lease row FOR KEY SHARE; a takeover locks it
// FOR UPDATE, which conflicts, while a renewal or a release (FOR NO KEY UPDATE) does not.
// So, inside the writer's transaction:
//
//   - a takeover of the shard waits until every write that passed the fence under the old
//     epoch has committed or rolled back; the new owner's first read after its takeover
//     therefore sees all of them;
//   - a write that comes after the takeover (or after the lease expired, or after a
//     release) is refused: the statement changes nothing, and the writer learns it from
//     its row count;
//   - the owner's renewals never wait for its own writes, so a long write cannot make its
//     lease lapse.
//
// So, per shard, the accepted writes are totally ordered by epoch: no write of epoch e
// lands after epoch e+1 began. What it does not give: exactly-once of the writer's own
// work (that is the writer's idempotency), nor protection for writes that do not include
// the fence. A takeover waits for the old epoch's writes in flight, so a stuck writer
// delays the move of its shard (not of others). A statement fencing several shards should
// meet them in ascending shard order, as the Manager's own statements lock them, or
// PostgreSQL may abort one side of a deadlock (the Manager retries at its next cycle).
//
// # Cost
//
// A cycle is one round trip of four small statements, plus one more when the member
// releases or takes shards; rows touched grow with the shards held, not with players.
// Owned and Stats do no I/O. The Manager owns one goroutine (the renewal loop), stopped
// by Close; the caller's pool is never closed.
package lease
