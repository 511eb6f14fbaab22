package natsbridge_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/natsbridge"
)

// TestBridgeLifecycleContract checks each clause of the lifecycle contract (module
// doc.go, "# Lifecycle") for the Bridge.
func TestBridgeLifecycleContract(t *testing.T) {
	t.Parallel()

	// stuckBridge returns a Bridge whose handler holds one message until its ctx ends
	// (then lingers a little, ignoring it), with more buffered behind it; returned is
	// whether a handler call is still running.
	stuckBridge := func(t *testing.T) (*natsbridge.Bridge, *atomic.Int32) {
		b, nc := startBridge(t, natsbridge.Config{Concurrency: 1})
		var running atomic.Int32
		h := func(ctx context.Context, _ natsbridge.Msg) error {
			running.Add(1)
			defer running.Add(-1)
			<-ctx.Done()
			time.Sleep(20 * time.Millisecond)
			return ctx.Err()
		}
		if err := b.Handle("life.k", h, natsbridge.Limits(natsbridge.HandlerLimits{HandlerTimeout: time.Minute})); err != nil {
			t.Fatal(err)
		}
		flushConn(t, nc)
		for i := range 3 {
			publishSeq(t, nc, "life.k", i, nil)
		}
		flushConn(t, nc)
		eventually(t, "one running, two buffered", func() bool { st := b.Stats(); return st.InFlight == 1 && st.Queued == 2 })
		return b, &running
	}

	t.Run("first shutdown does the work, later ones wait and return the same error", func(t *testing.T) {
		t.Parallel()
		b, running := stuckBridge(t)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		later := make(chan error, 2)
		drainErr := make(chan error, 1)
		go func() { drainErr <- b.Drain(ctx) }()
		eventually(t, "Drain began", func() bool { return errors.Is(b.Handle("life.late", noopHandler), natsbridge.ErrClosed) })
		go func() { later <- b.Close() }()
		go func() { later <- b.Drain(context.Background()) }()
		first := <-drainErr
		if !errors.Is(first, context.DeadlineExceeded) {
			t.Fatalf("first Drain = %v, want its deadline", first)
		}
		if n := running.Load(); n != 0 {
			t.Errorf("%d handler calls still running after Drain returned", n)
		}
		for range 2 {
			if err := <-later; err != first { //nolint:errorlint // the very same error value
				t.Errorf("later call = %v, want the first's %v", err, first)
			}
		}
		if err := b.Close(); err != first { //nolint:errorlint // the very same error value
			t.Errorf("Close after Drain = %v, want %v", err, first)
		}
	})

	t.Run("Close stops every goroutine before it returns", func(t *testing.T) {
		t.Parallel()
		b, running := stuckBridge(t)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if n := running.Load(); n != 0 {
			t.Errorf("%d handler calls still running after Close returned", n)
		}
		if st := b.Stats(); st.InFlight != 0 || st.Queued != 0 || st.PerHandler[0].Keys != 0 {
			t.Errorf("stats after Close: %+v", st)
		}
	})

	t.Run("Run drains when ctx ends and returns the drain's outcome", func(t *testing.T) {
		t.Parallel()
		b, nc := startBridge(t, natsbridge.Config{DrainTimeout: 10 * time.Second})
		var handled atomic.Int32
		h := func(context.Context, natsbridge.Msg) error {
			time.Sleep(5 * time.Millisecond)
			handled.Add(1)
			return nil
		}
		if err := b.Handle("life.run", h); err != nil {
			t.Fatal(err)
		}
		flushConn(t, nc)
		ctx, cancel := context.WithCancel(context.Background())
		runErr := make(chan error, 1)
		go func() { runErr <- b.Run(ctx) }()
		for i := range 20 {
			publishSeq(t, nc, "life.run", i, nil)
		}
		flushConn(t, nc)
		eventually(t, "all received", func() bool { return b.Stats().Received == 20 })
		cancel()
		if err := <-runErr; err != nil {
			t.Fatalf("Run = %v, want the drain's nil", err)
		}
		if n := handled.Load(); n != 20 {
			t.Errorf("Run returned with %d of 20 handled: it did not drain", n)
		}
		if err := b.Close(); err != nil {
			t.Errorf("Close after Run = %v, want Run's drain outcome (nil)", err)
		}
	})

	t.Run("Run returns the outcome of a shutdown another goroutine ran", func(t *testing.T) {
		t.Parallel()
		b, _ := stuckBridge(t)
		runErr := make(chan error, 1)
		go func() { runErr <- b.Run(context.Background()) }()
		// Let Run reach its wait (a Run that starts after the shutdown began returns
		// ErrClosed instead, as any other method would).
		time.Sleep(100 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		drained := b.Drain(ctx)
		if drained == nil {
			t.Fatal("Drain of a stuck handler returned nil")
		}
		select {
		case err := <-runErr:
			if err != drained { //nolint:errorlint // the very same error value
				t.Errorf("Run = %v, want the Drain's %v", err, drained)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run still waiting after Drain returned")
		}
	})

	t.Run("other methods after shutdown return ErrClosed", func(t *testing.T) {
		t.Parallel()
		b, nc := startBridge(t, natsbridge.Config{})
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for name, err := range map[string]error{
			"Handle":        b.Handle("life.after", noopHandler),
			"HandlePattern": b.HandlePattern("life.*", noopHandler),
			"HandleDurable": b.HandleDurable(ctx, natsbridge.Durable{Stream: "S", Consumer: "c"}, noopHandler),
			"Run":           b.Run(ctx),
		} {
			if !errors.Is(err, natsbridge.ErrClosed) {
				t.Errorf("%s after Close = %v, want ErrClosed", name, err)
			}
		}
		if !nc.IsConnected() {
			t.Error("Close closed the caller's connection")
		}
	})
}

func noopHandler(context.Context, natsbridge.Msg) error { return nil }
