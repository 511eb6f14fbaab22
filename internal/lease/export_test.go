package lease

import "context"

// Kill stops the renewal loop without releasing anything, as if the process died: the
// member row and the leases stay until they expire. Owned keeps each lease until its
// local deadline, as a stalled process would believe. Close afterwards does nothing.
func (m *Manager) Kill() {
	_ = m.down.Do(func() error {
		m.stopLoop()
		return nil
	})
}

// Cycle runs one renewal cycle in the caller's goroutine (for benchmarks).
func (m *Manager) Cycle(ctx context.Context) error { return m.cycle(ctx) }
