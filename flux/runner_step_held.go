package flux

import "fmt"

// dropHandled drops from s.recent the batches the worker has taken (seq up to handled):
// every snapshot still to come was loaded after they were merged into pending, so none
// replays them. While the database is down no snapshot comes to drop them in adopt, so
// without this s.recent would grow by a batch per Step; with it, it holds at most the
// batches handed over since the worker's last cycle (bounded by MaxLag). It costs nothing
// per write. Owned by Step.
func (s *stepper) dropHandled(handled uint64) {
	k := 0
	for k < len(s.recent) && s.recent[k].seq <= handled {
		k++
	}
	if k == 0 {
		return
	}
	n := copy(s.recent, s.recent[k:])
	clear(s.recent[n:])
	s.recent = s.recent[:n]
}

// heldPlayers returns the number of players whose writes the worker holds, pending or in
// doubt, each player counted once (a player can have both: a write in doubt and the
// writes of the ticks since). It costs a map look-up per write in doubt.
func (r *Runner) heldPlayers(doubt map[string]PlayerWrite) int {
	n := len(r.pending)
	for id := range doubt {
		if _, ok := r.pending[id]; !ok {
			n++
		}
	}
	return n
}

// withCause returns sentinel, wrapping cause too when there is one, so that errors.Is
// matches both and the cause is in the text.
func withCause(sentinel, cause error) error {
	if cause == nil {
		return sentinel
	}
	return fmt.Errorf("%w: %w", sentinel, cause)
}
