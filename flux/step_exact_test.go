package flux_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

// callGate holds one store call: entered is closed when the call arrives, release lets
// it go on.
type callGate struct {
	entered, release chan struct{}
}

// heldStore wraps a PlayerStore so that a test can hold the next load or apply until it
// releases it, make the next load fail, or make the next apply land and then report an
// error (a reply lost after the commit). Nothing else about the store changes.
type heldStore struct {
	flux.PlayerStore
	mu          sync.Mutex
	loadGate    *callGate
	applyGate   *callGate
	failBefore  time.Time
	lostReplies int
}

var errLoadInjected = errors.New("injected load failure")

// holdNextLoad holds the next LoadActive until the returned function is called.
func (h *heldStore) holdNextLoad() func() { return h.hold(&h.loadGate) }

// holdNextApply holds the next Apply until the returned function is called.
func (h *heldStore) holdNextApply() func() { return h.hold(&h.applyGate) }

func (h *heldStore) hold(slot **callGate) func() {
	g := &callGate{entered: make(chan struct{}), release: make(chan struct{})}
	h.mu.Lock()
	*slot = g
	h.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(g.release) }) }
}

// armFaults makes every load for a game time before loadsUntil fail and the next
// replies applies lose their replies.
func (h *heldStore) armFaults(loadsUntil time.Time, replies int) {
	h.mu.Lock()
	h.failBefore, h.lostReplies = loadsUntil, replies
	h.mu.Unlock()
}

func (h *heldStore) take(slot **callGate) *callGate {
	h.mu.Lock()
	defer h.mu.Unlock()
	g := *slot
	*slot = nil
	return g
}

func (g *callGate) wait(ctx context.Context) error {
	if g == nil {
		return nil
	}
	close(g.entered)
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *heldStore) LoadActive(ctx context.Context, q flux.ActiveQuery, dst []flux.Player) ([]flux.Player, error) {
	if err := h.take(&h.loadGate).wait(ctx); err != nil {
		return dst[:0], err
	}
	h.mu.Lock()
	fail := q.Now.Before(h.failBefore)
	h.mu.Unlock()
	if fail {
		return dst[:0], errLoadInjected
	}
	return h.PlayerStore.LoadActive(ctx, q, dst)
}

func (h *heldStore) Apply(ctx context.Context, writes []flux.PlayerWrite) (flux.ApplyResult, error) {
	if err := h.take(&h.applyGate).wait(ctx); err != nil {
		return flux.ApplyResult{}, err
	}
	res, err := h.PlayerStore.Apply(ctx, writes)
	h.mu.Lock()
	lost := h.lostReplies > 0 && err == nil
	if lost {
		h.lostReplies--
	}
	h.mu.Unlock()
	if lost {
		return flux.ApplyResult{}, errors.New("injected: reply lost after the commit")
	}
	return res, err
}

// minute is the game time of minute k of the runner tests' night.
func minute(k int) time.Time { return rtNight.Add(time.Duration(k) * time.Minute) }

// mustStep Steps r at minute k and fails t on an error.
func mustStep(t *testing.T, r *flux.Runner, k int) flux.TickReport {
	t.Helper()
	rep, err := r.Step(minute(k))
	if err != nil {
		t.Fatalf("step of minute %d: %v", k, err)
	}
	return rep
}

// mustClose closes r and fails t on an error.
func mustClose(t *testing.T, r *flux.Runner) {
	t.Helper()
	if err := r.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// tickReplay ticks players with one Runner in the blocking mode over a MemoryPlayers at
// minutes 0 … last and returns the store: what one server alone does.
func tickReplay(t *testing.T, rules flux.Rules, players []flux.Player, last int) *flux.MemoryPlayers {
	t.Helper()
	replay := flux.NewMemoryPlayers(rules)
	replay.Put(players...)
	r := newRunner(t, replay, memoryRooms(t, room("crypt", "graveyard")), flux.RunnerConfig{Rules: &rules})
	for k := 0; k <= last; k++ {
		if _, err := r.Tick(context.Background(), minute(k)); err != nil {
			t.Fatalf("replay minute %d: %v", k, err)
		}
	}
	mustClose(t, r)
	return replay
}

// sameAsReplay fails t unless every player of got equals the replay: lucidity and stored
// tick state (writers aside).
func sameAsReplay(t *testing.T, got, want *flux.MemoryPlayers) {
	t.Helper()
	for _, w := range want.Snapshot() {
		g, _ := got.Get(w.ID)
		if g.Lucidity != w.Lucidity || !sameState(g.Flux, w.Flux) {
			t.Errorf("%s: stored lucidity %d, %+v; one Runner alone: lucidity %d, %+v", w.ID, g.Lucidity, g.Flux, w.Lucidity, w.Flux)
		}
	}
}

// cryptPlayer is a lucid player standing in the graveyard crypt, active all night.
func cryptPlayer(id string) flux.Player {
	return flux.Player{ID: id, RoomID: "crypt", Lucidity: 90, LastActive: minute(30), CreatedAt: rtNight.Add(-48 * time.Hour)}
}

// TestStepRerunMinuteKeepsCarryOver (issue 18, cause 1): a server Steps minute 0 and
// restarts; the new Runner Steps minute 0 again (its player already ticked: nothing
// written) and then minute 1 before its worker has loaded again. The evaluation of the
// re-run minute must not advance the carry-over the next Step continues from: the store
// ends as one Runner alone leaves it (2 evaluations, not 3).
func TestStepRerunMinuteKeepsCarryOver(t *testing.T) {
	t.Parallel()
	rules := flux.DefaultRules()
	players := []flux.Player{cryptPlayer("p1")}
	m := flux.NewMemoryPlayers(rules)
	m.Put(players...)
	rooms := memoryRooms(t, room("crypt", "graveyard"))

	first := newRunner(t, m, rooms, flux.RunnerConfig{})
	if err := first.Start(minute(0)); err != nil {
		t.Fatal(err)
	}
	mustSync(t, first)
	mustStep(t, first, 0)
	mustSync(t, first)
	mustClose(t, first)

	h := &heldStore{PlayerStore: m}
	again := newRunner(t, h, rooms, flux.RunnerConfig{})
	if err := again.Start(minute(0)); err != nil {
		t.Fatal(err)
	}
	mustSync(t, again)
	release := h.holdNextLoad() // the load after the re-run minute waits
	if rep := mustStep(t, again, 0); rep.AlreadyTicked != 1 || len(rep.Changes) != 0 {
		t.Fatalf("re-run minute 0: already ticked %d, changes %d", rep.AlreadyTicked, len(rep.Changes))
	}
	mustStep(t, again, 1) // evaluates the same snapshot
	release()
	mustSync(t, again)
	mustClose(t, again)
	sameAsReplay(t, m, tickReplay(t, rules, players, 1))
}

// TestStepLostReplyThenInactiveKeepsEveryReportedMinute (issue 22, item 1): one Runner; a
// write lands but its reply is lost (in doubt), the player's next minute queues behind it,
// and the load meant to settle the doubt fails, the next one no longer returns the player
// (gone inactive): loads fail until the one for minute 6. Re-sending the doubtful write with the next minute summed in would be
// refused whole (its first part landed) and lose a minute Step reported. The store must
// end equal to the initial lucidity plus every change Step reported.
func TestStepLostReplyThenInactiveKeepsEveryReportedMinute(t *testing.T) {
	t.Parallel()
	rules := flux.DefaultRules()
	rules.RoomOverrides = map[string]flux.Profile{"crypt": flux.Always(-1)}
	m := flux.NewMemoryPlayers(rules)
	// Last active at minute 0: active at minutes 1–5 (ActiveWindow 5 minutes), not after.
	m.Put(flux.Player{ID: "p1", RoomID: "crypt", Lucidity: 50, LastActive: minute(0), CreatedAt: rtNight.Add(-48 * time.Hour)})
	h := &heldStore{PlayerStore: m}
	r := newRunner(t, h, memoryRooms(t, room("crypt", "graveyard")), flux.RunnerConfig{Rules: &rules})
	if err := r.Start(minute(1)); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)
	reported := 0
	for k := 1; k <= 7; k++ {
		if k == 4 {
			h.armFaults(minute(6), 1)
		}
		for _, c := range mustStep(t, r, k).Changes {
			reported += c.NewLucidity - c.OldLucidity
		}
		if k == 4 { // no Sync while loads fail: wait for minute 4's write to fail (its reply lost)
			waitFor(t, func() bool { return r.Stats().BackgroundWriteFailures == 1 })
			continue
		}
		_ = syncRunner(t, r)
	}
	if err := syncRunner(t, r); err != nil {
		t.Fatalf("sync with a healthy store: %v", err)
	}
	mustClose(t, r)
	if reported != -5 {
		t.Fatalf("Step reported %d, want −5 (minutes 1–5)", reported)
	}
	if st, _ := m.Get("p1"); st.Lucidity != 50+reported {
		t.Fatalf("stored lucidity %d, want %d (50 plus every reported change)", st.Lucidity, 50+reported)
	}
}

// TestStepRebasesOnAnotherServersMinute (issue 18, cause 2): B writes minute 0 first; A's
// minutes 0 and 1, computed from the older state, are refused; B's write of minute 1 is
// slow; A syncs (its state now B's minute 0) and Steps minute 2. A's minute 1 must be
// rebased onto B's minute 0 (the same minute from the same state), not dropped: A's
// write then covers minutes 1 and 2, and B's late minute 1 is refused. The store ends as
// one Runner alone leaves it (3 evaluations, not 2).
func TestStepRebasesOnAnotherServersMinute(t *testing.T) {
	t.Parallel()
	rules := flux.DefaultRules()
	players := []flux.Player{cryptPlayer("p1"), cryptPlayer("p2")}
	m := flux.NewMemoryPlayers(rules)
	m.Put(players...)
	rooms := memoryRooms(t, room("crypt", "graveyard"))
	ha, hb := &heldStore{PlayerStore: m}, &heldStore{PlayerStore: m}
	a := newRunner(t, ha, rooms, flux.RunnerConfig{RunnerID: "a"})
	b := newRunner(t, hb, rooms, flux.RunnerConfig{RunnerID: "b"})
	for _, r := range []*flux.Runner{a, b} {
		if err := r.Start(minute(0)); err != nil {
			t.Fatal(err)
		}
		mustSync(t, r)
	}
	mustStep(t, b, 0) // B writes minute 0 first
	mustSync(t, b)

	releaseA := ha.holdNextApply() // A's minute 0 write waits, so A steps minute 1 from its own minute 0
	mustStep(t, a, 0)
	mustStep(t, a, 1)
	releaseA()
	mustSync(t, a) // both refused; A's state is now B's minute 0

	releaseB := hb.holdNextApply() // B's minute 1 is slow
	mustStep(t, b, 1)
	mustStep(t, a, 2)
	mustSync(t, a)
	releaseB()
	mustSync(t, b)
	mustClose(t, a)
	mustClose(t, b)
	sameAsReplay(t, m, tickReplay(t, rules, players, 2))
}

// TestStepCountsAndReturnsLostChanges: when another Runner stored a minute this Runner
// had stepped, from another state (the player moved between their loads), this Runner's
// later minute cannot be rebased onto it. The change Step reported for it is then never
// applied: it is counted, and Sync returns ErrChangesLost once.
func TestStepCountsAndReturnsLostChanges(t *testing.T) {
	t.Parallel()
	rules := flux.DefaultRules()
	m := flux.NewMemoryPlayers(rules)
	m.Put(cryptPlayer("p1"))
	rooms := memoryRooms(t, room("crypt", "graveyard"), room("vault", "graveyard"))
	ha := &heldStore{PlayerStore: m}
	a := newRunner(t, ha, rooms, flux.RunnerConfig{RunnerID: "a"})
	b := newRunner(t, m, rooms, flux.RunnerConfig{RunnerID: "b"})
	if err := a.Start(minute(0)); err != nil {
		t.Fatal(err)
	}
	mustSync(t, a)
	if err := m.Touch("p1", "vault", minute(30)); err != nil { // B loads after the move, A before
		t.Fatal(err)
	}
	if err := b.Start(minute(0)); err != nil {
		t.Fatal(err)
	}
	mustSync(t, b)
	mustStep(t, b, 0)
	mustSync(t, b)

	release := ha.holdNextApply()
	mustStep(t, a, 0)
	mustStep(t, a, 1)
	release()
	mustSync(t, a) // both refused: B stored minute 0 from the vault
	mustStep(t, a, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Sync(ctx); !errors.Is(err, flux.ErrChangesLost) {
		t.Fatalf("Sync after a dropped minute: %v, want ErrChangesLost", err)
	}
	if st := a.Stats(); st.LostTicks != 1 {
		t.Fatalf("lost ticks %d, want 1", st.LostTicks)
	}
	mustSync(t, a) // returned once
	mustClose(t, a)
	mustClose(t, b)
}
