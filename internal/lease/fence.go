package lease

// FenceSQL returns a boolean SQL expression that is true while member holds shard under
// epoch in schema's lease table, for a writer to AND into its own statement's WHERE (for
// example "UPDATE t SET … WHERE t.id = $1 AND "+FenceSQL(schema, "$2", "$3", "$4")).
// shard, member and epoch are SQL expressions spliced in as they are (parameters or
// column references, never user input); the lease table is aliased gp_lease_fence.
//
// The expression reads the lease row FOR SHARE. Inside the writer's transaction that
// gives the guarantee (doc.go, "Fencing"): a takeover of the shard, which updates the row,
// waits until the writer commits, and a writer that comes after a takeover re-reads the
// row and is refused. So every write accepted under epoch e commits before epoch e+1
// begins, and the new owner reads all of it. The lease must also be unexpired at the
// statement's wall-clock time (clock_timestamp()). A renewal of the same shard waits for
// the writer too; writers should stay short and, when one statement fences several
// shards, lock them in ascending shard order (as the Manager does) to avoid deadlocks.
// Cost: one primary-key probe and a row share lock per evaluated row.
func FenceSQL(schema, shard, member, epoch string) string {
	return "EXISTS (SELECT 1 FROM " + qualify(schema, LeasesTable) + " gp_lease_fence" +
		" WHERE gp_lease_fence.shard = (" + shard + ")" +
		" AND gp_lease_fence.owner = (" + member + ")" +
		" AND gp_lease_fence.epoch = (" + epoch + ")" +
		" AND gp_lease_fence.expires_at > clock_timestamp()" +
		" FOR SHARE)"
}
