package flux_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

// lostReplyStore applies every write but, while armed, reports the apply as failed once: a
// reply lost after the commit.
type lostReplyStore struct {
	*flux.MemoryPlayers
	mu    sync.Mutex
	armed bool
}

func (s *lostReplyStore) Apply(ctx context.Context, writes []flux.PlayerWrite) (flux.ApplyResult, error) {
	res, err := s.MemoryPlayers.Apply(ctx, writes)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.armed && err == nil {
		s.armed = false
		return flux.ApplyResult{}, errors.New("reply lost after commit")
	}
	return res, err
}

// TestDoubtOfAPlayerGoneInactiveIsSettled (found by examples/soak): in the non-blocking mode
// a write whose reply was lost is held in doubt until a load says whether it landed, but a
// player who went inactive meanwhile is never loaded again. Its write is sent again as it
// is instead (the compare-and-set refuses it, since it landed): Sync returns nil with a
// healthy store, and the player's minute is applied once.
func TestDoubtOfAPlayerGoneInactiveIsSettled(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 6, 1, 4, 0, 0, 0, time.UTC)
	rules := flux.DefaultRules()
	store := &lostReplyStore{MemoryPlayers: flux.NewMemoryPlayers(rules)}
	// Last active 3.5 minutes before the start: active at minutes 0 and 1, inactive from
	// minute 2 (ActiveWindow is 5 minutes).
	last := start.Add(-3*time.Minute - 30*time.Second)
	store.Put(flux.Player{ID: "p1", RoomID: "crypt", Lucidity: 100, LastActive: last, CreatedAt: start.Add(-48 * time.Hour)})
	r := newRunner(t, store, memoryRooms(t, room("crypt", "graveyard")), flux.RunnerConfig{RunnerID: "doubt"})
	if err := r.Start(start.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)
	store.mu.Lock()
	store.armed = true
	store.mu.Unlock()
	rep, err := r.Step(start.Add(time.Minute)) // p1 active: written, reply lost
	if err != nil || rep.Counts.Evaluated != 1 {
		t.Fatalf("step: %+v %v", rep.Counts, err)
	}
	_ = syncRunner(t, r) // the write failed as far as the Runner knows
	if err := syncRunner(t, r); err != nil {
		t.Fatalf("Sync with a healthy store: %v (pending players %d)", err, r.Stats().PendingPlayers)
	}
	st, _ := store.Get("p1")
	if st.Flux.Tick != rep.Tick || st.Flux.Carry.Evaluations != 1 {
		t.Fatalf("p1 stored at tick %d after %d evaluations, want tick %d after 1", st.Flux.Tick, st.Flux.Carry.Evaluations, rep.Tick)
	}
	if st := r.Stats(); st.PendingPlayers != 0 {
		t.Fatalf("pending after Sync: %+v", st)
	}
}
