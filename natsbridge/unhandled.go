package natsbridge

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrUnhandled is wrapped by the error Drain returns when durable messages were left to
// the server unhandled — given back after a Retryable failure once intake had stopped,
// or still buffered behind one — instead of finishing: they are delivered again (to the
// next Bridge on the consumer), nothing is lost, but this Bridge did not handle them. The
// error also wraps the last Retryable handler error, so errors.Is finds its cause (for
// example flux.ErrClosed: a Runner closed before the Bridge that calls it was drained).
var ErrUnhandled = errors.New("natsbridge: durable messages left unhandled")

// retryLogEvery bounds the warn lines of Retryable handler failures: one per registration
// per interval, the next saying how many it left out.
const retryLogEvery = time.Second

// failureLog rate-limits a registration's warn lines of Retryable failures.
type failureLog struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// allow reports whether a line may be written now, and how many were left out before it.
func (l *failureLog) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.next, l.suppressed = now.Add(retryLogEvery), 0
	return true, n
}

// lastFailure holds the last Retryable handler error of a Bridge, for Drain's error.
type lastFailure struct{ err error }

// noteRetryable records a Retryable failure of msg: the Bridge's last failure, and a warn
// line (at most one a second per registration) saying what happens to the message.
func (r *registration) noteRetryable(msg Msg, err error, what string, delay time.Duration) {
	r.b.lastRetryable.Store(&lastFailure{err: err})
	ok, left := r.failures.allow(time.Now())
	if !ok {
		return
	}
	ev := logErr(r.log.Warn(), err).Str("subject", msg.Subject).Str("key", msg.Key).Int("attempt", msg.Attempt).
		Str("then", what)
	if delay > 0 {
		ev = ev.Dur("retry_in", delay)
	}
	if left > 0 {
		ev = ev.Int("similar_not_logged", left)
	}
	ev.Msg("natsbridge: handler failed with a Retryable error")
}

// unhandledError is Drain's error when durable messages were left to the server: nil when
// none was since abandonedAtStart.
func (b *Bridge) unhandledError(abandonedAtStart uint64) error {
	n := b.counters.abandoned.Load() - abandonedAtStart
	if n == 0 {
		return nil
	}
	if last := b.lastRetryable.Load(); last != nil {
		return fmt.Errorf("%w: %d messages given back for redelivery; last handler error: %w", ErrUnhandled, n, last.err)
	}
	return fmt.Errorf("%w: %d messages given back for redelivery", ErrUnhandled, n)
}
