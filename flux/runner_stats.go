package flux

import (
	"slices"
	"sync"
	"time"
)

// tickWindow is how many recent tick durations Stats' percentiles cover.
const tickWindow = 1024

// RunnerStats is a snapshot of a Runner's counters.
type RunnerStats struct {
	// Ticks counts Tick calls that ran (successful or not); Failures those that returned
	// an error; ApplyFailures those whose apply failed.
	Ticks, Failures, ApplyFailures int64
	// SkippedTicks counts interval ticks Run skipped because a tick overran.
	SkippedTicks int64
	// Written counts player writes applied; Conflicts those refused because the player's
	// stored tick had moved on (applied before, or by another Runner); ChangesApplied the
	// lucidity rows changed.
	Written, Conflicts, ChangesApplied int64
	// AlreadyTicked and Superseded sum the TickReport fields of the same names.
	AlreadyTicked, Superseded int64
	// PendingPlayers is the number of players whose writes wait for the next apply.
	PendingPlayers int
	// LastReport is the last Tick's report (without its Changes).
	LastReport TickReport
	// TickP50 and TickP99 are percentiles of the last 1024 ticks' total durations.
	TickP50, TickP99 time.Duration
}

type runnerStats struct {
	mu   sync.Mutex
	s    RunnerStats
	ring []time.Duration
	next int
}

func newRunnerStats() runnerStats {
	return runnerStats{ring: make([]time.Duration, 0, tickWindow)}
}

func (s *runnerStats) record(rep TickReport, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.s.Ticks++
	if err != nil {
		s.s.Failures++
	}
	if rep.ApplyErr != nil {
		s.s.ApplyFailures++
	}
	s.s.Written += int64(rep.Applied.Written)
	s.s.Conflicts += int64(rep.Applied.Conflicts)
	s.s.ChangesApplied += int64(rep.Applied.LucidityUpdated)
	s.s.AlreadyTicked += int64(rep.AlreadyTicked)
	s.s.Superseded += int64(rep.Superseded)
	s.s.PendingPlayers = rep.PendingPlayers
	rep.Changes = nil
	s.s.LastReport = rep
	if len(s.ring) < tickWindow {
		s.ring = append(s.ring, rep.Total)
	} else {
		s.ring[s.next] = rep.Total
		s.next = (s.next + 1) % tickWindow
	}
}

func (s *runnerStats) skip(n int64) {
	s.mu.Lock()
	s.s.SkippedTicks += n
	s.mu.Unlock()
}

func (s *runnerStats) setPending(players int) {
	s.mu.Lock()
	s.s.PendingPlayers = players
	s.mu.Unlock()
}

// Stats returns a snapshot of the runner's counters. It costs a copy and a sort of at most
// 1024 durations.
func (r *Runner) Stats() RunnerStats {
	r.stats.mu.Lock()
	out := r.stats.s
	d := slices.Clone(r.stats.ring)
	r.stats.mu.Unlock()
	if len(d) > 0 {
		slices.Sort(d)
		out.TickP50 = d[(len(d)-1)*50/100]
		out.TickP99 = d[(len(d)-1)*99/100]
	}
	return out
}
