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
	// Rebased counts player-minutes of the non-blocking mode's own writes rebased onto
	// another Runner's write of the same minute from the same state (and sent again);
	// LostTicks counts player-minutes Step reported that were dropped unapplied (see
	// ErrChangesLost).
	Rebased, LostTicks int64
	// PendingPlayers is the number of players whose writes wait for the next apply (in
	// the non-blocking mode, as the background worker last saw it).
	PendingPlayers int
	// The non-blocking mode's background worker: writes attempted and failed, loads done
	// and failed, the last load's duration, and the durable lag — from a Step handing its
	// writes over to their commit — over the last 1024 writes.
	BackgroundWrites, BackgroundWriteFailures int64
	BackgroundLoads, BackgroundLoadFailures   int64
	LastLoad                                  time.Duration
	DurableLagP50, DurableLagP99              time.Duration
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
	lag  []time.Duration // durable lags, a ring like ring
	lagN int
}

func newRunnerStats() runnerStats {
	return runnerStats{ring: make([]time.Duration, 0, tickWindow)}
}

func (s *runnerStats) record(rep TickReport, err error) {
	s.recordTick(rep, err, true)
}

// recordTick records one Tick or Step; a Step (pending false) leaves the pending count to
// the background worker.
func (s *runnerStats) recordTick(rep TickReport, err error, pending bool) {
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
	if pending {
		s.s.PendingPlayers = rep.PendingPlayers
	}
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

// worked records one background write of the non-blocking mode: its result, and the
// durable lag of its oldest batch when it succeeded.
func (s *runnerStats) worked(rep TickReport, err error, oldest time.Time, pending int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.s.Written += int64(rep.Applied.Written)
	s.s.Conflicts += int64(rep.Applied.Conflicts)
	s.s.ChangesApplied += int64(rep.Applied.LucidityUpdated)
	s.s.PendingPlayers = pending
	if rep.Statements == 0 {
		return
	}
	s.s.BackgroundWrites++
	if err != nil {
		s.s.BackgroundWriteFailures++
		s.s.ApplyFailures++
		return
	}
	if !oldest.IsZero() {
		d := time.Since(oldest)
		if len(s.lag) < tickWindow {
			s.lag = append(s.lag, d)
		} else {
			s.lag[s.lagN] = d
			s.lagN = (s.lagN + 1) % tickWindow
		}
	}
}

func (s *runnerStats) loaded(d time.Duration) {
	s.mu.Lock()
	s.s.BackgroundLoads++
	s.s.LastLoad = d
	s.mu.Unlock()
}

func (s *runnerStats) loadFailed() {
	s.mu.Lock()
	s.s.BackgroundLoadFailures++
	s.mu.Unlock()
}

// flushed records a final flush: what it applied and what is left.
func (s *runnerStats) flushed(rep TickReport, pending int) {
	s.mu.Lock()
	s.s.Written += int64(rep.Applied.Written)
	s.s.Conflicts += int64(rep.Applied.Conflicts)
	s.s.ChangesApplied += int64(rep.Applied.LucidityUpdated)
	s.s.PendingPlayers = pending
	s.mu.Unlock()
}

// Stats returns a snapshot of the runner's counters. It costs a copy and a sort of at most
// 2048 durations.
func (r *Runner) Stats() RunnerStats {
	r.stats.mu.Lock()
	out := r.stats.s
	d := slices.Clone(r.stats.ring)
	lag := slices.Clone(r.stats.lag)
	r.stats.mu.Unlock()
	if len(d) > 0 {
		slices.Sort(d)
		out.TickP50 = d[(len(d)-1)*50/100]
		out.TickP99 = d[(len(d)-1)*99/100]
	}
	if len(lag) > 0 {
		slices.Sort(lag)
		out.DurableLagP50 = lag[(len(lag)-1)*50/100]
		out.DurableLagP99 = lag[(len(lag)-1)*99/100]
	}
	return out
}

func (s *runnerStats) rebased(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.s.Rebased += n
}

func (s *runnerStats) lostTicks(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.s.LostTicks += n
}
