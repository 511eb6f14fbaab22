package roomstore

import (
	"context"
	"sync"

	"github.com/gamepersist/gamepersist/internal/lifecycle"
)

// lifeline is a Cached's one closed state and the owner of the work it runs off the
// caller's path: shared loads (which run in singleflight's goroutines) and refresh-ahead
// goroutines. Close begins the shutdown under mu, so no load or refresh registers after
// Close started waiting for them.
type lifeline struct {
	down lifecycle.Shutdown // Begun is the closed state every method checks

	// mu has one job: it orders registering work (loads.Add, refreshers.Go) against
	// down.Begin, so that Close's Wait never races with an Add.
	mu         sync.Mutex
	loads      sync.WaitGroup  // shared loads in flight
	refreshers lifecycle.Group // refresh-ahead goroutines

	ctx    context.Context // canceled by Close: loads and refreshes stop their I/O
	cancel context.CancelFunc
}

func (l *lifeline) init() {
	l.ctx, l.cancel = context.WithCancel(context.Background())
}

// closed reports whether Close has begun. It costs one atomic load.
func (l *lifeline) closed() bool { return l.down.Begun() }

// enterLoad registers a shared load with Close, or reports false once Close has begun.
// Each true return is matched by one leaveLoad.
func (l *lifeline) enterLoad() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down.Begun() {
		return false
	}
	l.loads.Add(1)
	return true
}

func (l *lifeline) leaveLoad() { l.loads.Done() }

// goRefresh runs f in a goroutine Close waits for, or reports false once Close has begun.
func (l *lifeline) goRefresh(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down.Begun() {
		return false
	}
	l.refreshers.Go(f)
	return true
}

// close begins the shutdown (every method returns ErrClosed from here on), cancels the
// work in flight, waits for it, then runs release; it returns release's error to this
// and every later call.
func (l *lifeline) close(release func() error) error {
	l.mu.Lock()
	l.down.Begin()
	l.mu.Unlock()
	return l.down.Do(func() error {
		l.cancel()
		l.loads.Wait()
		l.refreshers.Wait()
		return release()
	})
}
