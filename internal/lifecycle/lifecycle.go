// Package lifecycle is the one start/stop contract every goroutine-owning type in
// gamepersist keeps (flux.Runner, roomstore.Cached, natsbridge.Bridge and
// roomsync.RoomInvalidator). The contract itself is written in the module's doc.go:
//
//   - the first shutdown call (Close, Stop, Drain) does the work and returns its outcome;
//     every later one, from any goroutine, waits until that work finished and returns the
//     same error;
//   - every other method called after shutdown began returns the package's ErrClosed;
//   - Run(ctx) blocks in the caller's goroutine; when ctx ends it performs the graceful
//     shutdown (flush or drain, bounded by the type's close timeout) and returns its
//     outcome;
//   - every goroutine a value starts is started through its Group, so that shutdown can
//     wait for all of them: no goroutine outlives the Close that owns it.
package lifecycle

import (
	"sync"
	"sync/atomic"
)

// Shutdown runs a value's shutdown exactly once and hands its outcome to every caller.
// The zero value is ready to use; it must not be copied after first use.
type Shutdown struct {
	begun atomic.Bool
	once  sync.Once
	err   error
	done  chan struct{}
	mu    sync.Mutex
}

// Begin marks the shutdown as begun without running it (for types whose methods must
// return ErrClosed from the moment a shutdown starts, before its work runs).
func (s *Shutdown) Begin() { s.begun.Store(true) }

// Begun reports whether a shutdown call has begun.
func (s *Shutdown) Begun() bool { return s.begun.Load() }

// Do runs stop on the first call and returns its error; later and concurrent calls wait
// until that first call returned and return the same error.
func (s *Shutdown) Do(stop func() error) error {
	s.begun.Store(true)
	s.once.Do(func() {
		defer close(s.doneChan())
		s.err = stop()
	})
	return s.err
}

// Done is closed when the first Do call returned.
func (s *Shutdown) Done() <-chan struct{} { return s.doneChan() }

func (s *Shutdown) doneChan() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = make(chan struct{})
	}
	return s.done
}

// Group owns a value's goroutines: Go starts one, Wait returns when all have returned,
// Running counts them. The zero value is ready to use.
type Group struct {
	wg      sync.WaitGroup
	running atomic.Int64
}

// Go runs f in a new goroutine owned by the group.
func (g *Group) Go(f func()) {
	g.running.Add(1)
	g.wg.Go(func() {
		defer g.running.Add(-1)
		f()
	})
}

// Wait blocks until every goroutine started with Go has returned.
func (g *Group) Wait() { g.wg.Wait() }

// Running is the number of the group's goroutines that have not returned yet.
func (g *Group) Running() int { return int(g.running.Load()) }
