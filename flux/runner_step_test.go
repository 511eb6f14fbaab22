package flux_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/faultproxy"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/internal/workload/worldgen"
)

// syncRunner waits for a started Runner's background worker, failing t on anything but a
// write failure (which the caller may expect), and returns that.
func syncRunner(t *testing.T, r *flux.Runner) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := r.Sync(ctx)
	if err != nil && !errors.Is(err, flux.ErrApplyFailed) {
		t.Fatalf("sync: %v", err)
	}
	return err
}

// mustSync is syncRunner where no write may fail.
func mustSync(t *testing.T, r *flux.Runner) {
	t.Helper()
	if err := syncRunner(t, r); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// TestStepScenario: the non-blocking mode gives the FLUX.md night scenario the same values
// as Tick, on both stores; Tick and Run are refused once started, Step before Start;
// Close stops the worker (goleak checks it).
func TestStepScenario(t *testing.T) {
	t.Parallel()
	for name, mk := range backends(t, scenarioPlayers()...) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := mk(t)
			r := newRunner(t, b.store, cachedRooms(t, scenarioRooms()...), flux.RunnerConfig{})
			if _, err := r.Step(rtNight); !errors.Is(err, flux.ErrNotStarted) {
				t.Fatalf("Step before Start: %v", err)
			}
			if err := r.Start(rtNight); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Tick(context.Background(), rtNight); !errors.Is(err, flux.ErrStarted) {
				t.Fatalf("Tick after Start: %v", err)
			}
			if err := r.Run(context.Background(), time.Second); !errors.Is(err, flux.ErrStarted) {
				t.Fatalf("Run after Start: %v", err)
			}
			if err := syncRunner(t, r); err != nil { // the first load
				t.Fatal(err)
			}
			for k := range 3 {
				rep, err := r.Step(rtNight.Add(time.Duration(k) * time.Minute))
				if err != nil {
					t.Fatalf("step %d: %v", k+1, err)
				}
				if rep.Counts.Evaluated != 5 || rep.Counts.Changed != scenarioChanged[k] || len(rep.Changes) != scenarioChanged[k] {
					t.Fatalf("step %d: %+v", k+1, rep.Counts)
				}
				if err := syncRunner(t, r); err != nil {
					t.Fatal(err)
				}
				checkLucidity(t, b.lucidity(), scenarioExpect[k])
			}
			st := r.Stats()
			if st.BackgroundWrites != 3 || st.BackgroundLoads < 4 || st.ChangesApplied != 8 || st.DurableLagP99 <= 0 {
				t.Fatalf("stats %+v", st)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Step(rtNight); !errors.Is(err, flux.ErrClosed) {
				t.Fatalf("Step after Close: %v", err)
			}
		})
	}
}

// TestStepNeverWaitsForTheDatabase: with the database hanging (every load and write of
// the worker blocked), Step still returns, tick after tick, evaluating from memory — it
// makes no database call on the caller's goroutine. Close cancels the hung calls.
func TestStepNeverWaitsForTheDatabase(t *testing.T) {
	t.Parallel()
	b := memoryBackend(t, scenarioPlayers()...)
	store := &flakyStore{PlayerStore: b.store}
	r, err := flux.NewRunner(store, cachedRooms(t, scenarioRooms()...), flux.RunnerConfig{CloseTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(rtNight); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)
	store.setApplyDelay(time.Hour)
	store.setLoadDelay(time.Hour)
	applies := store.applyCount()
	for k := range 5 {
		rep, err := r.Step(rtNight.Add(time.Duration(k) * time.Minute))
		if err != nil || rep.Counts.Evaluated != 5 {
			t.Fatalf("step %d with the database hung: %+v %v", k+1, rep.Counts, err)
		}
	}
	for store.applyCount() == applies { // the worker is stuck in the database, Step was not
		time.Sleep(time.Millisecond)
	}
	if err := r.Close(); !errors.Is(err, flux.ErrFlushIncomplete) {
		t.Fatalf("Close with the database hung: %v", err)
	}
}

// TestStepSeesTheGame: what the game writes to the database — a move through
// UpdatePresence, a lucidity set in SQL — reaches Step with the next background load: not
// the Step right after the write (it evaluates from memory), the one after it.
func TestStepSeesTheGame(t *testing.T) {
	t.Parallel()
	b, pool := postgresBackend(t, scenarioPlayers()...)
	store := b.store.(*flux.PostgresPlayers)
	r := newRunner(t, store, cachedRooms(t, scenarioRooms()...), flux.RunnerConfig{})
	if err := r.Start(rtNight); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	step := func(k int) flux.Change {
		t.Helper()
		rep, err := r.Step(rtNight.Add(time.Duration(k) * time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		mustSync(t, r)
		for _, c := range rep.Changes {
			if c.PlayerID == "eld-1" { // −1.4 a tick: it changes every tick
				return c
			}
		}
		t.Fatalf("step %d: no change of eld-1 in %+v", k, rep.Changes)
		return flux.Change{}
	}
	room := func(id string) string {
		var room string
		if err := pool.QueryRow(ctx, `SELECT room_id FROM flux_state WHERE player_id = $1`, id).Scan(&room); err != nil {
			t.Fatal(err)
		}
		return room
	}
	mustSync(t, r)
	step(0)
	if _, err := store.UpdatePresence(ctx, []flux.Presence{{PlayerID: "grave-1", RoomID: "sanct", LastActive: rtNight}}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE flux_players SET lucidity = 50, tier = 'uneasy' WHERE id = 'eld-1'`); err != nil {
		t.Fatal(err)
	}
	c1 := step(1) // from memory: the writes are not seen yet
	if c1.OldLucidity == 50 || room("grave-1") != "grave" {
		t.Fatalf("the game's writes were seen a Step early: %+v, grave-1 evaluated in %s", c1, room("grave-1"))
	}
	c2 := step(2) // from the load made after the writes
	if want := 50 + c1.NewLucidity - c1.OldLucidity; c2.OldLucidity != want || room("grave-1") != "sanct" {
		t.Fatalf("the game's writes were not seen: eld-1 from %d (want %d), grave-1 evaluated in %s",
			c2.OldLucidity, want, room("grave-1"))
	}
	if got := dbLucidity(t, pool)["eld-1"].Lucidity; got != 50+c1.NewLucidity-c1.OldLucidity+c2.NewLucidity-c2.OldLucidity {
		t.Fatalf("eld-1 is %d: a delta or the game's write was lost", got)
	}
}

// TestStepExactlyOnceUnderFaults: a started Runner (non-blocking) ticks 120 game minutes of
// 300 players through a fault proxy failing about 10 % of its writes (reset mid-statement,
// or the reply lost after the commit).
//
//   - alone: the world does not move, so the one-tick-old state Step evaluates is exact,
//     and the database must end equal to one fault-free Runner — nothing lost, nothing
//     applied twice;
//   - beside a blocking Runner ticking the same minutes through its own faulty proxy: no
//     minute is ever applied twice to a player (the fence), but a minute can be lost when
//     both Runners' writes of it fail and the stepping one, which evaluates from memory,
//     moves on from the other's later write (documented); the test counts those.
func TestStepExactlyOnceUnderFaults(t *testing.T) {
	t.Parallel()
	for _, beside := range []bool{false, true} {
		name := map[bool]string{false: "alone", true: "beside a ticking runner"}[beside]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stepUnderFaults(t, beside)
		})
	}
}

func stepUnderFaults(t *testing.T, beside bool) {
	const minutes, players = 120, 300
	ctx := context.Background()
	start := time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)
	world := activeWorld(100, players, 21, start)
	rules := flux.DefaultRules()
	cs, _ := testdb.NewSchema(t)
	u, err := url.Parse(cs)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := pgxpool.New(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	postgresPlayers(t, direct, flux.PostgresConfig{Rules: &rules})
	if err := world.CopyPlayers(ctx, direct, flux.PostgresConfig{Rules: &rules}); err != nil {
		t.Fatal(err)
	}
	rooms := cachedRooms(t)
	if err := world.PutRooms(ctx, rooms); err != nil {
		t.Fatal(err)
	}
	faulty := func(seed uint64) *faultyApply {
		proxy := faultproxy.Start(t, u.Host)
		pool, err := pgxpool.New(ctx, faultproxy.RewriteURL(cs, proxy.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		store, err := flux.NewPostgresPlayers(pool, flux.PostgresConfig{Rules: &rules})
		if err != nil {
			t.Fatal(err)
		}
		return &faultyApply{PlayerStore: store, proxy: proxy, pool: pool, rng: worldgen.NewRand(seed), t: t}
	}
	fa, fb := faulty(31), faulty(32)
	stepper := newRunner(t, fa, rooms, flux.RunnerConfig{RunnerID: "stepper"})
	ticker := newRunner(t, fb, rooms, flux.RunnerConfig{RunnerID: "ticker"})
	replay := flux.NewMemoryPlayers(rules)
	replay.Put(world.Players...)
	oracle := newRunner(t, replay, rooms, flux.RunnerConfig{RunnerID: "replay"})
	if err := stepper.Start(start); err != nil {
		t.Fatal(err)
	}
	mustSync(t, stepper)
	for k := range minutes {
		now := start.Add(time.Duration(k) * time.Minute)
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := stepper.Step(now); err != nil {
				t.Errorf("step %d: %v", k, err)
			}
			_ = syncRunner(t, stepper) // one tick's write and load, as a 0.6 s interval would allow
		})
		var trep flux.TickReport
		var terr error
		if beside {
			wg.Go(func() { trep, terr = ticker.Tick(ctx, now) })
		}
		wg.Wait()
		if _, err := oracle.Tick(ctx, now); err != nil {
			t.Fatal(err)
		}
		_, _ = trep, terr
	}
	for _, r := range []*flux.Runner{stepper, ticker} {
		if err := r.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
	got := dbLucidity(t, direct)
	states := dbTickStates(t, direct)
	diff, doubled, lost := 0, 0, 0
	for _, want := range replay.Snapshot() {
		st := states[want.ID]
		if got[want.ID].Lucidity != want.Lucidity || !sameState(st, want.Flux) {
			diff++
			if !beside && diff <= 5 {
				t.Errorf("player %s: database %d %+v, replay %d %+v", want.ID, got[want.ID].Lucidity, st, want.Lucidity, want.Flux)
			}
		}
		// A static world: the consecutive evaluations count every minute applied.
		switch n := st.Carry.Evaluations - want.Flux.Carry.Evaluations; {
		case n > 0 || st.Tick != want.Flux.Tick:
			doubled++
		case n < 0:
			lost -= n
		}
	}
	ra, ca := fa.faults()
	rb, cb := fb.faults()
	st := stepper.Stats()
	t.Logf("%d minutes × %d players (beside a ticking runner: %v): stepper %d resets, %d lost replies, %d writes (%d failed), %d conflicts; ticker %d resets, %d lost replies; durable lag p50 %v p99 %v; %d players differ, %d player-minutes lost, %d doubled",
		minutes, players, beside, ra, ca, st.BackgroundWrites, st.BackgroundWriteFailures, st.Conflicts, rb, cb, st.DurableLagP50, st.DurableLagP99, diff, lost, doubled)
	if doubled > 0 {
		t.Fatalf("%d players got a minute twice or ended at another tick", doubled)
	}
	if !beside && diff > 0 {
		t.Fatalf("%d players differ from the fault-free replay", diff)
	}
	if ra+ca == 0 || st.BackgroundWriteFailures == 0 {
		t.Fatalf("the stepper's writes never failed: the test proved nothing")
	}
}

// TestStepThroughOutage: while every write fails, Step keeps evaluating from memory (no
// tick skipped while fewer than MaxLag batches wait); when the database answers again, one
// Sync writes the backlog and the store ends where a Runner that never saw the outage
// takes it.
func TestStepThroughOutage(t *testing.T) {
	t.Parallel()
	const players, outage = 500, 200
	ctx := context.Background()
	start := time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)
	world := activeWorld(80, players, 22, start)
	rules := flux.DefaultRules()
	rooms := cachedRooms(t)
	if err := world.PutRooms(ctx, rooms); err != nil {
		t.Fatal(err)
	}
	live := flux.NewMemoryPlayers(rules)
	live.Put(world.Players...)
	flaky := &flakyStore{PlayerStore: live}
	r := newRunner(t, flaky, rooms, flux.RunnerConfig{MaxLag: outage + 1})
	replay := flux.NewMemoryPlayers(rules)
	replay.Put(world.Players...)
	oracle := newRunner(t, replay, rooms, flux.RunnerConfig{})
	if err := r.Start(start); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)
	flaky.setFailApply(1 << 30)
	for k := range outage + 1 {
		now := start.Add(time.Duration(k) * time.Minute)
		if k == outage {
			flaky.setFailApply(0)
		}
		if _, err := r.Step(now); err != nil {
			t.Fatalf("step %d: %v", k, err)
		}
		err := syncRunner(t, r)
		if k < outage && err == nil {
			t.Fatalf("step %d: a write succeeded during the outage", k)
		}
		if _, err := oracle.Tick(ctx, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := syncRunner(t, r); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	want, got := replay.Snapshot(), live.Snapshot()
	for i := range want {
		if got[i].Lucidity != want[i].Lucidity || !sameState(got[i].Flux, want[i].Flux) {
			t.Fatalf("player %s: %d %+v, replay %d %+v", want[i].ID, got[i].Lucidity, got[i].Flux, want[i].Lucidity, want[i].Flux)
		}
	}
}
