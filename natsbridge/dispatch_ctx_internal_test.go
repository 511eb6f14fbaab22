package natsbridge

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAttemptCtx(t *testing.T) {
	t.Parallel()
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()

	c := newAttemptCtx(parent, 30*time.Millisecond)
	if d, ok := c.Deadline(); !ok || time.Until(d) > 30*time.Millisecond {
		t.Fatalf("Deadline = %v, %v", d, ok)
	}
	if c.Err() != nil {
		t.Fatal("Err before the deadline")
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done never closed at the deadline")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v", c.Err())
	}
	c.release()

	// Unarmed: Err still sees the deadline and the end of the attempt.
	c2 := newAttemptCtx(parent, time.Millisecond)
	time.Sleep(2 * time.Millisecond)
	if !errors.Is(c2.Err(), context.DeadlineExceeded) {
		t.Fatalf("unarmed Err after deadline = %v", c2.Err())
	}
	c3 := newAttemptCtx(parent, time.Hour)
	c3.release()
	if !errors.Is(c3.Err(), context.Canceled) {
		t.Fatalf("Err after release = %v", c3.Err())
	}
	select {
	case <-c3.Done():
	default:
		t.Fatal("Done after release is not closed")
	}

	// Parent cancellation propagates, armed or not, and so do values.
	type key struct{}
	vp := context.WithValue(parent, key{}, "v")
	c4 := newAttemptCtx(vp, time.Hour)
	c5 := newAttemptCtx(vp, time.Hour)
	done := c5.Done()
	cancelParent()
	if !errors.Is(c4.Err(), context.Canceled) {
		t.Fatalf("unarmed Err after parent cancel = %v", c4.Err())
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("armed Done did not follow the parent")
	}
	if c4.Value(key{}) != "v" {
		t.Fatal("Value not delegated")
	}
	c4.release()
	c5.release()
}
