package flux_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gamepersist/gamepersist/flux"
)

// heldWriter holds every AddLucidity until its context ends and reports what the store
// reports then (context.Canceled), as a store whose database call Stop cancelled does.
type heldWriter struct {
	*flux.MemoryPlayers
	entered chan struct{}
}

func (h *heldWriter) AddLucidity(ctx context.Context, _ string, _ int) (int, error) {
	close(h.entered)
	<-ctx.Done()
	return 0, ctx.Err()
}

// TestAddLucidityCancelledByCloseIsErrClosed: a game write under way when the Runner is
// closed (a NATS handler still calling it at shutdown) returns an error matching
// ErrClosed, not a bare context.Canceled, in both modes; so does one made afterwards.
func TestAddLucidityCancelledByCloseIsErrClosed(t *testing.T) {
	t.Parallel()
	for _, started := range []bool{false, true} {
		m := flux.NewMemoryPlayers(flux.DefaultRules())
		m.Put(scenarioPlayers()...)
		store := &heldWriter{MemoryPlayers: m, entered: make(chan struct{})}
		r := newRunner(t, store, cachedRooms(t, scenarioRooms()...), flux.RunnerConfig{})
		if started {
			if err := r.Start(rtNight); err != nil {
				t.Fatal(err)
			}
			mustSync(t, r)
		}
		done := make(chan error, 1)
		go func() {
			_, err := r.AddLucidity(context.Background(), "eld-1", 1)
			done <- err
		}()
		<-store.entered
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		err := <-done
		if !errors.Is(err, flux.ErrClosed) || !errors.Is(err, context.Canceled) {
			t.Fatalf("started=%v: AddLucidity cancelled by Close: %v, want ErrClosed (and the store's context.Canceled)", started, err)
		}
		if _, err := r.AddLucidity(context.Background(), "eld-1", 1); !errors.Is(err, flux.ErrClosed) {
			t.Fatalf("started=%v: AddLucidity after Close: %v", started, err)
		}
	}
}

// TestStartTwiceSaysItOnce: a second Start is refused with an error matching ErrStarted
// whose message says "started" once.
func TestStartTwiceSaysItOnce(t *testing.T) {
	t.Parallel()
	b := memoryBackend(t, scenarioPlayers()...)
	r := newRunner(t, b.store, cachedRooms(t, scenarioRooms()...), flux.RunnerConfig{})
	if err := r.Start(rtNight); err != nil {
		t.Fatal(err)
	}
	err := r.Start(rtNight)
	if !errors.Is(err, flux.ErrStarted) {
		t.Fatalf("second Start: %v, want ErrStarted", err)
	}
	if n := strings.Count(err.Error(), "started"); n != 1 {
		t.Fatalf("second Start says %q: %d times \"started\", want 1", err, n)
	}
}
