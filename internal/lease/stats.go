package lease

import "time"

// Stats is a snapshot of a Manager's counters (Manager.Stats).
type Stats struct {
	// Owned is the number of shards held now (as Owned would return).
	Owned int
	// Target is this member's fair share at the last cycle: Shards/Members, plus one for
	// the first Shards%Members members in join order.
	Target int
	// Members is the number of live members seen at the last cycle.
	Members int
	// Cycles counts the renewal cycles that completed (Start's included); CycleErrors
	// those that failed.
	Cycles, CycleErrors uint64
	// Acquired, Released and Lost count leases: taken (each a new epoch), given up (surplus
	// or Close), and lost (a renewal found the lease expired or taken over).
	Acquired, Released, Lost uint64
	// LastCycle and MaxCycle are the duration of the last and the longest completed cycle.
	LastCycle, MaxCycle time.Duration
}
