package flux

// Prune deletes the entries whose player id keep rejects and returns how many it deleted.
// Evaluate never deletes entries: a player who is not evaluated in a tick (inactive, or in
// a missing room) keeps the residual and adaptation counter it had, and resumes from them
// when evaluated again (the counter resumes only if the player is still in the same room).
// Call Prune now and then, e.g. with the ids of players still online, to bound the
// ledger's size. It costs one call of keep per entry.
func (l Ledger) Prune(keep func(id string) bool) int {
	n := 0
	for id := range l {
		if !keep(id) {
			delete(l, id)
			n++
		}
	}
	return n
}

// Clone returns a copy of l that shares nothing with it, e.g. to persist it while ticks go
// on. It allocates a map of len(l) entries.
func (l Ledger) Clone() Ledger {
	if l == nil {
		return nil
	}
	out := make(Ledger, len(l))
	for id, c := range l {
		out[id] = c
	}
	return out
}
