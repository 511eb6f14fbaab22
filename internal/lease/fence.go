package lease

// FenceSQL returns a boolean SQL expression that is true while member holds shard under
// epoch in schema's lease table, for a writer to AND into its own statement's WHERE (for
// example "UPDATE t SET … WHERE t.id = $1 AND "+FenceSQL(schema, "$2", "$3", "$4")).
// shard, member and epoch are SQL expressions spliced in as they are (parameters or
// column references, never user input); the lease table is aliased gp_lease_fence.
//
// The expression locks the lease row FOR KEY SHARE, and a takeover locks it FOR UPDATE,
// which conflicts. Inside the writer's transaction that gives the guarantee (doc.go,
// "Fencing"): a takeover of the shard waits until the writer commits or rolls back, and a
// writer that comes after a takeover (or a release) sees the new row and is refused. So
// every write accepted under epoch e commits before epoch e+1 begins, and the new owner
// reads all of it. The lease must also be unexpired at the statement's wall-clock time
// (clock_timestamp()). Renewals and releases do not conflict with the lock: a long write
// never holds up its own lease's renewal. Cost: one primary-key probe and a row lock per
// evaluated row (no extra lock when the transaction already holds it).
func FenceSQL(schema, shard, member, epoch string) string {
	return "EXISTS (SELECT 1 FROM " + qualify(schema, LeasesTable) + " gp_lease_fence" +
		" WHERE gp_lease_fence.shard = (" + shard + ")" +
		" AND gp_lease_fence.owner = (" + member + ")" +
		" AND gp_lease_fence.epoch = (" + epoch + ")" +
		" AND gp_lease_fence.expires_at > clock_timestamp()" +
		" FOR KEY SHARE)"
}

// FencedShardsSQL returns a SELECT of the shards among shards (an integer[] expression)
// that member holds under the matching epochs (a bigint[] expression, same length and
// order), unexpired at clock_timestamp(), locked FOR KEY SHARE in ascending shard order.
// It is the per-statement form of FenceSQL for a write that covers many players of a few
// shards: put it in a WITH clause and join the written rows on its shard column, so the
// lease rows are checked and locked once per shard rather than once per row, always in
// the order the Manager locks them. Example:
//
//	WITH fence AS (<FencedShardsSQL(schema, "$1", "$2", "$3")>)
//	UPDATE players p SET … FROM unnest($4::text[], $5::integer[]) AS u(id, shard)
//	JOIN fence ON fence.shard = u.shard WHERE p.id = u.id
//
// A row of a shard the writer no longer holds then matches nothing. The expressions are
// spliced in as they are (parameters, never user input). It gives FenceSQL's guarantee
// (doc.go, "Fencing"). Cost: one primary-key probe and one row lock per listed shard.
func FencedShardsSQL(schema, member, shards, epochs string) string {
	return "SELECT gp_lease_fence.shard FROM " + qualify(schema, LeasesTable) + " gp_lease_fence" +
		" JOIN unnest((" + shards + ")::integer[], (" + epochs + ")::bigint[]) AS gp_lease_held(shard, epoch)" +
		" ON gp_lease_fence.shard = gp_lease_held.shard AND gp_lease_fence.epoch = gp_lease_held.epoch" +
		" WHERE gp_lease_fence.owner = (" + member + ")" +
		" AND gp_lease_fence.expires_at > clock_timestamp()" +
		" ORDER BY gp_lease_fence.shard FOR KEY SHARE OF gp_lease_fence"
}
