package natsbridge

import (
	"context"
	"sync"
	"time"
)

// attemptCtx is the context a handler attempt receives: the Bridge's context plus the
// attempt's deadline. It arms no timer until someone calls Done, so the common handler
// that never selects on its context pays no timer per message; Deadline and Err are
// exact either way (Err reports context.DeadlineExceeded once the deadline has passed,
// context.Canceled once the attempt is over, as context.WithTimeout's would).
type attemptCtx struct {
	parent   context.Context
	deadline time.Time

	mu       sync.Mutex
	inner    context.Context // set on the first Done
	cancel   context.CancelFunc
	released bool
}

func newAttemptCtx(parent context.Context, timeout time.Duration) *attemptCtx {
	return &attemptCtx{parent: parent, deadline: time.Now().Add(timeout)}
}

// Deadline returns the attempt's deadline (or the parent's, if earlier).
func (c *attemptCtx) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

// Done arms the deadline timer on first use (after release: an already-closed channel).
func (c *attemptCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inner == nil {
		if c.released {
			c.inner, c.cancel = context.WithCancel(c.parent)
			c.cancel()
		} else {
			c.inner, c.cancel = context.WithDeadline(c.parent, c.deadline)
		}
	}
	return c.inner.Done()
}

// Err is nil until the deadline passes, the parent ends or the attempt is over.
func (c *attemptCtx) Err() error {
	c.mu.Lock()
	inner, released := c.inner, c.released
	c.mu.Unlock()
	if inner != nil {
		return inner.Err()
	}
	if err := c.parent.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	if released {
		return context.Canceled
	}
	return nil
}

// Value delegates to the parent.
func (c *attemptCtx) Value(key any) any { return c.parent.Value(key) }

// release ends the attempt: the context reads as cancelled and its timer, if armed, stops.
func (c *attemptCtx) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.released = true
	if c.cancel != nil {
		c.cancel()
	}
}
