package lifecycle_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/internal/lifecycle"
)

func TestShutdownRunsOnceAndSharesItsOutcome(t *testing.T) {
	var s lifecycle.Shutdown
	if s.Begun() {
		t.Fatal("a new Shutdown reports begun")
	}
	boom := errors.New("flush failed")
	var calls atomic.Int32
	release := make(chan struct{})
	stop := func() error {
		calls.Add(1)
		<-release
		return boom
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = s.Do(stop) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	select {
	case <-s.Done():
		t.Fatal("Done closed before the first shutdown returned")
	default:
	}
	close(release)
	wg.Wait()
	<-s.Done()
	if got := calls.Load(); got != 1 {
		t.Fatalf("stop ran %d times, want 1", got)
	}
	for i, err := range errs {
		if !errors.Is(err, boom) {
			t.Fatalf("caller %d got %v, want the first call's error", i, err)
		}
	}
	if err := s.Do(func() error { t.Fatal("stop ran again"); return nil }); !errors.Is(err, boom) {
		t.Fatalf("a later Do = %v, want the first call's error", err)
	}
	if !s.Begun() {
		t.Fatal("Begun false after Do")
	}
}

func TestGroupWaitsForEveryGoroutine(t *testing.T) {
	var g lifecycle.Group
	release := make(chan struct{})
	var finished atomic.Int32
	for range 5 {
		g.Go(func() {
			<-release
			finished.Add(1)
		})
	}
	if got := g.Running(); got != 5 {
		t.Fatalf("Running = %d, want 5", got)
	}
	close(release)
	g.Wait()
	if got := finished.Load(); got != 5 || g.Running() != 0 {
		t.Fatalf("after Wait: %d finished, %d running; want 5 and 0", got, g.Running())
	}
}
