package main

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/roomstore"
)

// lostReplyStore applies every write but, while armed, reports the apply as failed: a
// reply lost after the commit.
type lostReplyStore struct {
	*flux.MemoryPlayers
	mu    sync.Mutex
	armed bool
}

// Apply applies writes and, when armed, loses the reply once.
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

// TestLibrarySyncAfterLostReplyOfPlayerGoneInactive reproduces the library fault the soak
// found (README_NOTES_soak.md, "Library faults found"): in the non-blocking mode a write
// whose reply was lost is held "in doubt" until a load says whether it landed, but the
// loads are of active players only; a player who went inactive in the meantime (logged
// out) is never loaded again, so the doubt is never settled and Runner.Sync never
// returns nil (it waits until its ctx ends), however long the database has been healthy.
// It is skipped unless SOAK_KNOWN_BUGS=1 until flux is fixed; then it must pass.
func TestLibrarySyncAfterLostReplyOfPlayerGoneInactive(t *testing.T) {
	if os.Getenv("SOAK_KNOWN_BUGS") != "1" {
		t.Skip("known flux fault (Sync never returns after a lost reply for a player gone inactive); SOAK_KNOWN_BUGS=1 runs it")
	}
	ctx := context.Background()
	start := time.Date(2026, 6, 1, 4, 0, 0, 0, time.UTC)
	rules := flux.DefaultRules()
	store := &lostReplyStore{MemoryPlayers: flux.NewMemoryPlayers(rules)}
	// Last active 3.5 minutes before the start: active at minutes 0 and 1, inactive from
	// minute 2 (ActiveWindow is 5 minutes).
	last := start.Add(-3*time.Minute - 30*time.Second)
	store.Put(flux.Player{ID: "p1", RoomID: "crypt", Lucidity: 100, LastActive: last, CreatedAt: start.Add(-48 * time.Hour)})
	rooms := roomstore.NewMemoryStore()
	if err := rooms.PutRoom(ctx, roomstore.Room{ID: "crypt", Name: "Crypt", Environment: "graveyard"}); err != nil {
		t.Fatal(err)
	}
	runner, err := flux.NewRunner(store, rooms, flux.RunnerConfig{RunnerID: "repro"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = runner.Close() }()
	if err := runner.Start(start); err != nil {
		t.Fatal(err)
	}
	sync1, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := runner.Sync(sync1); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	store.armed = true
	store.mu.Unlock()
	if _, err := runner.Step(start.Add(time.Minute)); err != nil { // p1 active: written, reply lost
		t.Fatal(err)
	}
	_ = runner.Sync(sync1) // the write failed as far as the Runner knows
	if st, ok := store.Get("p1"); !ok || st.Flux.Tick == 0 {
		t.Fatalf("the write did not land: %+v", st)
	}
	// The database is healthy from now on. Sync must settle the doubt and return nil.
	sync2, cancel2 := context.WithTimeout(ctx, 3*time.Second)
	defer cancel2()
	if err := runner.Sync(sync2); err != nil {
		t.Fatalf("Sync with a healthy store: %v (pending players %d)", err, runner.Stats().PendingPlayers)
	}
}
