package natsbridge

import (
	"crypto/rand"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"sync"
	"time"
)

// retryableError marks an error as worth another attempt; see Retryable.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// Retryable marks err as transient: the Bridge calls the handler again for the same
// message, after an exponential backoff with jitter, up to Config.MaxAttempts attempts,
// and dead-letters it after the last one. errors.Is/As still see err through the mark.
// Retryable(nil) is nil. Errors not marked are dead-lettered after the first attempt.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return &retryableError{err: err}
}

// IsRetryable reports whether err, or any error it wraps, was marked with Retryable.
func IsRetryable(err error) bool {
	var r *retryableError
	return errors.As(err, &r)
}

// PanicError is the failure recorded when a handler panics: the recovered value and the
// goroutine's stack. A panic is dead-lettered at once (reason "panic") and not retried,
// since calling the same code with the same message would panic again.
type PanicError struct {
	// Value is what the handler passed to panic.
	Value any
	// Stack is the stack trace of the panicking goroutine.
	Stack []byte
}

// Error returns "handler panicked: <value>".
func (e *PanicError) Error() string { return fmt.Sprintf("natsbridge: handler panicked: %v", e.Value) }

// backoff computes retry waits: base·2^(attempt-1), capped at max, randomised by
// ±jitter. Its random source is private to one Bridge (seeded from crypto/rand) and
// guarded by a mutex; nothing global is touched.
type backoff struct {
	base, max time.Duration
	jitter    float64

	mu  sync.Mutex
	rnd *mathrand.Rand
}

func newBackoff(base, maxWait time.Duration, jitter float64) *backoff {
	var seed [32]byte
	_, _ = rand.Read(seed[:]) // crypto/rand.Read never fails on supported platforms
	return &backoff{
		base: base, max: maxWait, jitter: jitter,
		rnd: mathrand.New(mathrand.NewChaCha8(seed)), //nolint:gosec // jitter, not security
	}
}

// wait returns the pause before attempt number next (next ≥ 2).
func (b *backoff) wait(next int) time.Duration {
	d := b.base
	for i := 2; i < next && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	b.mu.Lock()
	f := 1 + b.jitter*(2*b.rnd.Float64()-1)
	b.mu.Unlock()
	return time.Duration(float64(d) * f)
}
