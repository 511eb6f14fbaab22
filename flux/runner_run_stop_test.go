package flux_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

// TestRunnerRunReturnsOnClose: Close (or Stop) from another goroutine makes a Run that is
// waiting for its next interval return ErrClosed at once, not an interval later; the
// caller's ctx is not needed to get Run back.
func TestRunnerRunReturnsOnClose(t *testing.T) {
	t.Parallel()
	b := memoryBackend(t, scenarioPlayers()...)
	r := newRunner(t, b.store, memoryRooms(t, scenarioRooms()...), flux.RunnerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, time.Hour) }()
	// Give Run time to reach its wait for the first interval (if it has not, Run sees the
	// Runner closed on entry and the test passes without exercising the wait: it can
	// only pass spuriously, never fail spuriously).
	time.Sleep(100 * time.Millisecond)
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, flux.ErrClosed) {
			t.Fatalf("Run returned %v after Close, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		cancel()
		err := <-done
		t.Fatalf("Run still waiting for its next interval 5 s after Close (returned %v once ctx was canceled)", err)
	}
	if st := r.Stats(); st.Ticks != 0 {
		t.Fatalf("Run ticked %d times after Close", st.Ticks)
	}
}
