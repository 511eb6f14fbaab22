package flux_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

// TestRunnerRunReturnsOnClose: Close (or Stop) from another goroutine makes a Run that is
// waiting for its next interval return at once, not an interval later, with that Close's
// outcome; the caller's ctx is not needed to get Run back.
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
		if err != nil {
			t.Fatalf("Run returned %v after a Close that returned nil", err)
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

// TestRunnerLifecycleContract checks the module's lifecycle contract (doc.go) on a Runner:
// Run flushes when its ctx ends and returns that flush's outcome; the first shutdown does
// the work and every later or concurrent Close/Stop returns the same error; every other
// method returns ErrClosed afterwards.
func TestRunnerLifecycleContract(t *testing.T) {
	t.Parallel()
	t.Run("run flushes when ctx ends", func(t *testing.T) {
		t.Parallel()
		b := memoryBackend(t, scenarioPlayers()...)
		flaky := &flakyStore{PlayerStore: b.store, failApply: 1}
		at := rtNight
		r := newRunner(t, flaky, memoryRooms(t, scenarioRooms()...), flux.RunnerConfig{Now: func() time.Time { return at }})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx, 5*time.Millisecond) }()
		for flaky.applyCount() == 0 { // the first tick's apply failed: its writes are pending
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run after ctx ended: %v, want the flush's nil", err)
		}
		checkLucidity(t, b.lucidity(), scenarioExpect[0])
		if st := r.Stats(); st.PendingPlayers != 0 {
			t.Fatalf("pending after Run returned: %+v", st)
		}
		if err := r.Close(); err != nil {
			t.Fatalf("Close after Run's shutdown: %v", err)
		}
	})
	t.Run("one shutdown, one outcome", func(t *testing.T) {
		t.Parallel()
		b := memoryBackend(t, scenarioPlayers()...)
		flaky := &flakyStore{PlayerStore: b.store, failApply: 100}
		r := newRunner(t, flaky, memoryRooms(t, scenarioRooms()...), flux.RunnerConfig{CloseTimeout: 50 * time.Millisecond})
		if _, err := r.Tick(context.Background(), rtNight); !errors.Is(err, flux.ErrApplyFailed) {
			t.Fatal(err)
		}
		errs := make(chan error, 4)
		for range 4 {
			go func() { errs <- r.Close() }()
		}
		first := <-errs
		if !errors.Is(first, flux.ErrFlushIncomplete) {
			t.Fatalf("Close with the store failing: %v", first)
		}
		for range 3 {
			if err := <-errs; err == nil || err.Error() != first.Error() {
				t.Fatalf("a concurrent Close returned %v, want %v", err, first)
			}
		}
		tries := flaky.applyCount()
		if err := r.Stop(context.Background()); err == nil || err.Error() != first.Error() {
			t.Fatalf("a later Stop returned %v, want %v", err, first)
		}
		if got := flaky.applyCount(); got != tries || tries < 2 {
			t.Fatalf("%d apply calls, then %d after a later Stop; want the tick and one final flush (tried until CloseTimeout), nothing more", tries, got)
		}
		ctx := context.Background()
		if _, err := r.Tick(ctx, rtNight); !errors.Is(err, flux.ErrClosed) {
			t.Fatalf("Tick after Close: %v", err)
		}
		if err := r.Run(ctx, time.Second); !errors.Is(err, flux.ErrClosed) {
			t.Fatalf("Run after Close: %v", err)
		}
		if err := r.Start(rtNight); !errors.Is(err, flux.ErrClosed) {
			t.Fatalf("Start after Close: %v", err)
		}
		if _, err := r.Step(rtNight); !errors.Is(err, flux.ErrClosed) {
			t.Fatalf("Step after Close: %v", err)
		}
		if _, err := r.AddLucidity(ctx, "eld-1", 1); !errors.Is(err, flux.ErrClosed) {
			t.Fatalf("AddLucidity after Close: %v", err)
		}
	})
}
