package flux_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

// errDatabaseDown is what downStore returns while the database is down.
var errDatabaseDown = errors.New("database down (injected)")

// downStore wraps a PlayerStore: while down, every Apply fails at once, and while
// loadsDown every LoadActive too, as against a database that refuses connections. With
// pace set, a failing load first waits for a token from it (or ctx): the test then says
// when the worker's cycles end.
type downStore struct {
	flux.PlayerStore
	down, loadsDown atomic.Bool
	pace            chan struct{}
	applies         atomic.Int64
}

func (d *downStore) LoadActive(ctx context.Context, q flux.ActiveQuery, dst []flux.Player) ([]flux.Player, error) {
	if !d.loadsDown.Load() {
		return d.PlayerStore.LoadActive(ctx, q, dst)
	}
	if d.pace != nil {
		select {
		case <-d.pace:
		case <-ctx.Done():
		}
	}
	return dst[:0], errDatabaseDown
}

func (d *downStore) Apply(ctx context.Context, writes []flux.PlayerWrite) (flux.ApplyResult, error) {
	d.applies.Add(1)
	if d.down.Load() {
		return flux.ApplyResult{}, errDatabaseDown
	}
	return d.PlayerStore.Apply(ctx, writes)
}

// stepOutage is what runStepOutage saw.
type stepOutage struct {
	steadyHeap, peakHeap uint64
	heapAtChainCap       uint64 // at Step 100: each player's chain of unconfirmed minutes is full (64)
	peakAfterCap         uint64 // the peak after that
	maxPending           int
	firstLagging         int // the first outage Step that returned an error (-1: none)
}

// runStepOutage steps a started Runner over 2,000 active players with no Sync (as a game
// loop does): 20 Steps with the database up, then outage Steps with every load and write
// failing, the worker's cycles each taking six Steps' batches (its loads paced), then
// Steps with the database back until one succeeds. Every outage Step within maxLag must
// succeed, every later one return ErrLagging wrapping the database's error; after
// recovery every player is stored at the last Step's tick. It returns the heap in steady
// state and its peak in the outage, the most pending players reported, and the first
// lagging Step.
func runStepOutage(t *testing.T, maxLag, outage int) stepOutage {
	t.Helper()
	const players, steady, cycle = 2000, 20, 6
	ctx := context.Background()
	start := time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)
	world := activeWorld(400, players, 31, start)
	rooms := cachedRooms(t)
	if err := world.PutRooms(ctx, rooms); err != nil {
		t.Fatal(err)
	}
	live := flux.NewMemoryPlayers(flux.DefaultRules())
	live.Put(world.Players...)
	store := &downStore{PlayerStore: live, pace: make(chan struct{}, 2*outage)}
	r := newRunner(t, store, rooms, flux.RunnerConfig{MaxLag: maxLag})
	if err := r.Start(start); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)
	k := 0
	step := func() error {
		_, err := r.Step(start.Add(time.Duration(k) * time.Minute))
		k++
		return err
	}
	for range steady {
		if err := step(); err != nil {
			t.Fatalf("steady step %d: %v", k, err)
		}
		mustSync(t, r)
	}
	out := stepOutage{steadyHeap: heapInUse(), firstLagging: -1}

	store.down.Store(true)
	store.loadsDown.Store(true)
	for j := 1; j <= outage; j++ {
		if j%cycle == 1 { // one worker cycle: two loads (the doubt's, the snapshot's)
			store.pace <- struct{}{}
			store.pace <- struct{}{}
		}
		err := step()
		if j == 1 { // the worker has failed a write and a load: the causes are known
			waitFor(t, func() bool { st := r.Stats(); return st.BackgroundWriteFailures > 0 && st.BackgroundLoadFailures > 0 })
		}
		switch {
		case j <= maxLag && err != nil:
			t.Fatalf("outage step %d (within MaxLag %d): %v", j, maxLag, err)
		case j > maxLag && !errors.Is(err, flux.ErrLagging):
			t.Fatalf("outage step %d (past MaxLag %d): %v, want ErrLagging", j, maxLag, err)
		case j > maxLag && (!errors.Is(err, errDatabaseDown) || !strings.Contains(err.Error(), errDatabaseDown.Error())):
			t.Fatalf("outage step %d: %q does not carry the database's error", j, err)
		}
		if err != nil && out.firstLagging < 0 {
			out.firstLagging = j
		}
		out.maxPending = max(out.maxPending, r.Stats().PendingPlayers)
		if j%25 == 0 {
			h := heapInUse()
			out.peakHeap = max(out.peakHeap, h)
			switch {
			case j == 100:
				out.heapAtChainCap = h
			case j > 100:
				out.peakAfterCap = max(out.peakAfterCap, h)
			}
		}
	}

	store.loadsDown.Store(false)
	store.down.Store(false)
	close(store.pace)                             // a load still waiting for its token fails at once
	for err := step(); err != nil; err = step() { // each lagging Step wakes the worker
		if !errors.Is(err, flux.ErrLagging) {
			t.Fatalf("step after recovery: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	mustSync(t, r)
	last := flux.TickNumber(start.Add(time.Duration(k-1)*time.Minute), time.Minute)
	for _, p := range live.Snapshot() {
		if p.Flux.Tick != last {
			t.Fatalf("player %s stored at tick %d after recovery, want %d", p.ID, p.Flux.Tick, last)
		}
	}
	if st := r.Stats(); st.PendingPlayers != 0 {
		t.Fatalf("%d players still pending after recovery", st.PendingPlayers)
	}
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	t.Logf("%d players, %d Steps with the database down, MaxLag %d: heap %.1f MiB steady, %.1f MiB peak; first lagging Step %d; at most %d players pending",
		players, outage, maxLag, mib(out.steadyHeap), mib(out.peakHeap), out.firstLagging, out.maxPending)
	// Memory grows with the players, not with the Steps: each player holds at most its
	// pending write and its chain of at most 64 unconfirmed minutes (exactness against
	// other Runners), so the heap may grow until the chains are full, then stays flat.
	if out.peakHeap > 4*out.steadyHeap {
		t.Fatalf("heap grew from %.1f MiB to %.1f MiB with the database down (more than 4x)", mib(out.steadyHeap), mib(out.peakHeap))
	}
	if out.peakAfterCap > out.heapAtChainCap+out.heapAtChainCap/4 {
		t.Fatalf("heap grew from %.1f MiB at Step 100 to %.1f MiB by Step %d: it grows with the Steps", mib(out.heapAtChainCap), mib(out.peakAfterCap), outage)
	}
	if out.maxPending == 0 || out.maxPending > players {
		t.Fatalf("PendingPlayers reached %d, want within 1..%d (each player once)", out.maxPending, players)
	}
	return out
}

// TestStepOutageLagging: with the database down and the default MaxLag (64), Step
// evaluates from memory for 64 Steps, then skips its ticks with ErrLagging (wrapping the
// database's error) until the database answers again; PendingPlayers never counts a
// player twice; the heap stops growing once each player's chain is full (Step 100). Not parallel, so that the
// heap is this test's.
func TestStepOutageLagging(t *testing.T) {
	if out := runStepOutage(t, flux.DefaultMaxLag, 300); out.firstLagging != flux.DefaultMaxLag+1 {
		t.Fatalf("first lagging Step %d, want %d", out.firstLagging, flux.DefaultMaxLag+1)
	}
}

// TestStepOutageMemoryFlat: with a MaxLag above the outage's length, 300 Steps of 2,000
// players with the database down all evaluate, and the heap is flat from Step 100 on: the writes are held once per player (pending), not once per Step. Not parallel.
func TestStepOutageMemoryFlat(t *testing.T) {
	runStepOutage(t, 1000, 300)
}

// TestStepNoStateCarriesLoadError: with every load failing from Start on, Step returns
// ErrNoState wrapping the load's error.
func TestStepNoStateCarriesLoadError(t *testing.T) {
	t.Parallel()
	store := &downStore{PlayerStore: memoryBackend(t, scenarioPlayers()...).store}
	store.loadsDown.Store(true)
	r := newRunner(t, store, cachedRooms(t, scenarioRooms()...), flux.RunnerConfig{})
	if err := r.Start(rtNight); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r) // a cycle has run: its load failed
	_, err := r.Step(rtNight)
	if !errors.Is(err, flux.ErrNoState) || !errors.Is(err, errDatabaseDown) || !strings.Contains(err.Error(), errDatabaseDown.Error()) {
		t.Fatalf("Step with every load failing: %v, want ErrNoState carrying %q", err, errDatabaseDown)
	}
}
