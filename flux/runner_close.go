package flux

import (
	"context"
	"time"
)

// Backoff of the final flush's tries (see Runner.Stop).
const (
	flushRetryFirst = 20 * time.Millisecond
	flushRetryMax   = time.Second
)

// flushUntil is Stop's final flush: it flushes pending and, while that fails, waits
// (flushRetryFirst doubling to flushRetryMax) and tries again, until nothing is pending or
// ctx ends. It returns the last try's error. Each try costs one apply statement per
// MaxWriteBatch pending players; a write retried after a lost reply is refused by the
// compare-and-set, so a try never applies anything twice. The holder of sem calls it.
func (r *Runner) flushUntil(ctx context.Context) error {
	wait := flushRetryFirst
	for {
		var rep TickReport
		err := r.flush(ctx, &rep, nil)
		r.stats.flushed(rep, len(r.pending))
		r.metrics.addStatements(rep.Statements)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, flushRetryMax)
	}
}

// acquireForStop is acquire for Stop: a free slot is taken even when ctx has already
// ended (a deadline of 1 ns still flushes once and reports the exact count).
func (r *Runner) acquireForStop(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
		return nil
	default:
	}
	return r.acquire(ctx)
}

// waitDone waits until done is closed or ctx ends, preferring done when both are ready.
func waitDone(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	default:
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// heldEstimate returns a lower bound of the players whose writes the worker and the
// mailbox hold, for a Stop that could not wait for the worker: the worker's count after
// its last cycle, or the distinct players of the batches not yet taken if more.
func (s *stepper) heldEstimate() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make(map[string]struct{})
	for _, b := range s.mailbox {
		for _, w := range b.writes {
			ids[w.PlayerID] = struct{}{}
		}
	}
	return max(s.left, len(ids))
}
