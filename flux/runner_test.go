package flux_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/jackc/pgx/v5/pgxpool"
)

// scenarioRooms: a graveyard, an eldritch room, a sanctuary and a camp.
func scenarioRooms() []roomstore.Room {
	return []roomstore.Room{room("grave", "graveyard"), room("eld", "eldritch"), room("sanct", "sanctuary"), room("camp", "camp")}
}

// scenarioPlayers at rtNight: alone in the graveyard (100), two lucid companions in the
// eldritch room (100 each), one in the sanctuary (100, clamped), one in camp (50, +0.2 a
// tick, no whole point within 3 ticks), and one idle for 10 minutes in the eldritch room.
func scenarioPlayers() []flux.Player {
	old := rtNight.Add(-30 * 24 * time.Hour)
	p := func(id, roomID string, l int, last time.Time) flux.Player {
		return flux.Player{ID: id, RoomID: roomID, Lucidity: l, LastActive: last, CreatedAt: old}
	}
	return []flux.Player{
		p("grave-1", "grave", 100, rtNight), p("eld-1", "eld", 100, rtNight), p("eld-2", "eld", 100, rtNight),
		p("sanct-1", "sanct", 100, rtNight), p("camp-1", "camp", 50, rtNight),
		p("idle-1", "eld", 100, rtNight.Add(-10*time.Minute)),
	}
}

// scenarioExpect[k] is every player's lucidity after tick k+1 (ticks a minute apart from
// rtNight): graveyard −0.8 a tick gives 0, −1, −1; eldritch −1.5 + 0.1 = −1.4 a tick gives
// −1, −1, −2.
var scenarioExpect = []map[string]int{
	{"grave-1": 100, "eld-1": 99, "eld-2": 99, "sanct-1": 100, "camp-1": 50, "idle-1": 100},
	{"grave-1": 99, "eld-1": 98, "eld-2": 98, "sanct-1": 100, "camp-1": 50, "idle-1": 100},
	{"grave-1": 98, "eld-1": 96, "eld-2": 96, "sanct-1": 100, "camp-1": 50, "idle-1": 100},
}

var scenarioChanged = []int{2, 3, 3}

// playerBackend is one PlayerStore under test, with a way to read back what it stores and
// to count the database statements it sent (-1 when it has no database).
type playerBackend struct {
	store      flux.PlayerStore
	lucidity   func() map[string]flux.PlayerState
	statements func() int64
}

func memoryBackend(t *testing.T, players ...flux.Player) playerBackend {
	t.Helper()
	m := flux.NewMemoryPlayers(flux.DefaultRules())
	m.Put(players...)
	return playerBackend{
		store: m,
		lucidity: func() map[string]flux.PlayerState {
			out := map[string]flux.PlayerState{}
			for _, s := range m.Snapshot() {
				out[s.ID] = s
			}
			return out
		},
		statements: func() int64 { return -1 },
	}
}

func postgresBackend(t *testing.T, players ...flux.Player) (playerBackend, *pgxpool.Pool) {
	t.Helper()
	pool, counter, _ := testdb.NewTracedPool(t)
	s := postgresPlayers(t, pool, flux.PostgresConfig{})
	insertPlayers(t, pool, players...)
	return playerBackend{
		store:      s,
		lucidity:   func() map[string]flux.PlayerState { return dbLucidity(t, pool) },
		statements: func() int64 { return counter.Statements() },
	}, pool
}

func backends(t *testing.T, players ...flux.Player) map[string]func(t *testing.T) playerBackend {
	return map[string]func(t *testing.T) playerBackend{
		"memory":   func(t *testing.T) playerBackend { return memoryBackend(t, players...) },
		"postgres": func(t *testing.T) playerBackend { b, _ := postgresBackend(t, players...); return b },
	}
}

func newRunner(t testing.TB, players flux.PlayerStore, rooms roomstore.RoomStore, cfg flux.RunnerConfig) *flux.Runner {
	t.Helper()
	r, err := flux.NewRunner(players, rooms, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func cachedRooms(t testing.TB, rooms ...roomstore.Room) *roomstore.Cached {
	t.Helper()
	c, err := roomstore.NewCached(memoryRooms(t, rooms...), roomstore.CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func checkLucidity(t *testing.T, got map[string]flux.PlayerState, want map[string]int) {
	t.Helper()
	rules := flux.DefaultRules()
	for id, l := range want {
		s, ok := got[id]
		if !ok {
			t.Errorf("player %s missing", id)
			continue
		}
		if s.Lucidity != l || s.Tier != rules.Tier(l) {
			t.Errorf("player %s: lucidity %d tier %s, want %d %s", id, s.Lucidity, s.Tier, l, rules.Tier(l))
		}
	}
}

// TestRunnerGraveyardAtNight runs three ticks of the FLUX.md night scenarios on both player
// stores and checks every stored lucidity and tier, the report's counts, and that each
// Postgres tick sends exactly two statements (load + apply) with the rooms served from a
// warm cache.
func TestRunnerGraveyardAtNight(t *testing.T) {
	t.Parallel()
	for name, mk := range backends(t, scenarioPlayers()...) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := mk(t)
			rooms := cachedRooms(t, scenarioRooms()...)
			r := newRunner(t, b.store, rooms, flux.RunnerConfig{RunnerID: "test-" + name})
			ctx := context.Background()
			for k := range 3 {
				before := b.statements()
				rep, err := r.Tick(ctx, rtNight.Add(time.Duration(k)*time.Minute))
				if err != nil {
					t.Fatalf("tick %d: %v", k+1, err)
				}
				if before >= 0 {
					if n := b.statements() - before; n != 2 {
						t.Errorf("tick %d sent %d statements to Postgres, want 2 (load + apply)", k+1, n)
					}
				}
				checkLucidity(t, b.lucidity(), scenarioExpect[k])
				c := rep.Counts
				if c.Seen != 5 || c.Active != 5 || c.Evaluated != 5 || c.Changed != scenarioChanged[k] ||
					c.RoomsNeeded != 4 || c.RoomsMissing != 0 {
					t.Errorf("tick %d counts %+v", k+1, c)
				}
				if len(rep.Changes) != scenarioChanged[k] || rep.Applied.Written != 5 || rep.Applied.Conflicts != 0 ||
					rep.Applied.LucidityUpdated != scenarioChanged[k] {
					t.Errorf("tick %d: %d changes, applied %+v", k+1, len(rep.Changes), rep.Applied)
				}
				if rep.Statements != 2 || rep.RoomReads != 1 || rep.PendingPlayers != 0 || !rep.Evaluated {
					t.Errorf("tick %d report %+v", k+1, rep)
				}
			}
			if s := rooms.Stats(); s.Loads != 1 {
				t.Errorf("room cache loaded %d times over 3 ticks, want 1 (warm after the first)", s.Loads)
			}
			st := r.Stats()
			if st.Ticks != 3 || st.Failures != 0 || st.ChangesApplied != 8 || st.LastReport.Changes != nil {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestRunnerMissingRooms: players in a room no store has, or with an invalid room id, are
// skipped and counted; the others are evaluated.
func TestRunnerMissingRooms(t *testing.T) {
	t.Parallel()
	old := rtNight.Add(-48 * time.Hour)
	players := []flux.Player{
		{ID: "a", RoomID: "eld", Lucidity: 100, LastActive: rtNight, CreatedAt: old},
		{ID: "b", RoomID: "nowhere", Lucidity: 100, LastActive: rtNight, CreatedAt: old},
		{ID: "c", RoomID: "", Lucidity: 100, LastActive: rtNight, CreatedAt: old},
	}
	for name, mk := range backends(t, players...) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := mk(t)
			r := newRunner(t, b.store, memoryRooms(t, scenarioRooms()...), flux.RunnerConfig{})
			rep, err := r.Tick(context.Background(), rtNight)
			if err != nil {
				t.Fatal(err)
			}
			c := rep.Counts
			if c.Active != 3 || c.Evaluated != 1 || c.SkippedMissingRoom != 2 || c.RoomsMissing != 2 ||
				rep.InvalidRoomIDs != 1 || c.Changed != 1 {
				t.Fatalf("counts %+v invalid %d", c, rep.InvalidRoomIDs)
			}
			checkLucidity(t, b.lucidity(), map[string]int{"a": 99, "b": 100, "c": 100})
		})
	}
}

// write is a PlayerWrite of one tick for tests.
func write(id string, from, tick int64, delta int) flux.PlayerWrite {
	return flux.PlayerWrite{PlayerID: id, FromTick: from, Delta: delta, Ticks: 1,
		State: flux.TickState{Tick: tick, Carry: flux.Carry{Residual: 0.25, RoomID: "grave", Evaluations: int(tick)}, LastDelta: delta}}
}

// TestApplyCompareAndSet: on both stores, a write applies only while the player's stored
// tick is its FromTick — the same write sent twice (a retry after a lost reply), a write
// computed from a tick since overtaken, a write for an unknown player and the second write
// of a player listed twice in one call are conflicts — deltas are clamped, and LoadActive
// returns the stored flux state.
func TestApplyCompareAndSet(t *testing.T) {
	t.Parallel()
	players := scenarioPlayers()
	for name, mk := range backends(t, players...) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := mk(t)
			ctx := context.Background()
			apply := func(want flux.ApplyResult, writes ...flux.PlayerWrite) {
				t.Helper()
				res, err := b.store.Apply(ctx, writes)
				if err != nil || res != want {
					t.Fatalf("apply %+v: %+v %v, want %+v", writes, res, err, want)
				}
			}
			first := []flux.PlayerWrite{write("grave-1", 0, 1, -10), write("camp-1", 0, 1, -5)}
			apply(flux.ApplyResult{Written: 2, LucidityUpdated: 2}, first...)
			apply(flux.ApplyResult{Conflicts: 2}, first...) // a retry whose reply was lost
			apply(flux.ApplyResult{Written: 1, Conflicts: 2, LucidityUpdated: 1},
				write("camp-1", 1, 2, -15), write("camp-1", 1, 2, -15), write("nobody", 0, 1, -1))
			apply(flux.ApplyResult{Conflicts: 1}, write("grave-1", 0, 5, -1)) // from an overtaken tick
			apply(flux.ApplyResult{Written: 1}, write("eld-1", 0, 1, 0))      // state only
			checkLucidity(t, b.lucidity(), map[string]int{"grave-1": 90, "camp-1": 30, "eld-1": 100})
			apply(flux.ApplyResult{Written: 1, LucidityUpdated: 1}, write("grave-1", 1, 2, -250)) // clamped
			checkLucidity(t, b.lucidity(), map[string]int{"grave-1": -100})

			loaded, err := b.store.LoadActive(ctx, flux.ActiveQuery{Now: rtNight, ActiveWithin: 5 * time.Minute,
				CreatedWithin: time.Hour}, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]flux.TickState{}
			for _, p := range loaded {
				got[p.ID] = p.Flux
			}
			if len(loaded) != 5 || got["sanct-1"] != (flux.TickState{}) ||
				got["camp-1"] != write("camp-1", 1, 2, -15).State || got["grave-1"] != write("grave-1", 1, 2, -250).State {
				t.Fatalf("loaded %d players, flux states %+v", len(loaded), got)
			}
		})
	}
}

// TestRunnerApplyFailureKeepsPending: a failed apply keeps the tick's writes pending, the
// next tick evaluates from the lucidity including them and writes both ticks summed, one
// write per player; a lost reply (applied, error returned) is recognised by the next load
// (the stored tick moved) and not applied twice. Either way the store ends where an
// unfailing run ends.
func TestRunnerApplyFailureKeepsPending(t *testing.T) {
	t.Parallel()
	for _, lost := range []bool{false, true} {
		name := map[bool]string{false: "reset", true: "lost-reply"}[lost]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, _ := postgresBackend(t, scenarioPlayers()...)
			flaky := &flakyStore{PlayerStore: b.store, failApply: 1, lostReply: lost}
			r := newRunner(t, flaky, memoryRooms(t, scenarioRooms()...), flux.RunnerConfig{})
			ctx := context.Background()
			rep, err := r.Tick(ctx, rtNight)
			if !errors.Is(err, flux.ErrApplyFailed) || !errors.Is(err, errInjected) {
				t.Fatalf("tick 1 error %v", err)
			}
			if rep.PendingPlayers != 5 || rep.ApplyErr == nil {
				t.Fatalf("tick 1 report %+v", rep)
			}
			if st := r.Stats(); st.PendingPlayers != 5 || st.ApplyFailures != 1 {
				t.Fatalf("stats %+v", st)
			}
			rep, err = r.Tick(ctx, rtNight.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			wantSuperseded := 0
			if lost {
				wantSuperseded = 5
			}
			if rep.Superseded != wantSuperseded || rep.Applied.Written != 5 || rep.Applied.Conflicts != 0 || rep.PendingPlayers != 0 {
				t.Fatalf("tick 2 report %+v", rep)
			}
			for _, c := range rep.Changes {
				if c.PlayerID == "eld-1" && c.OldLucidity != 99 {
					t.Fatalf("tick 2 evaluated eld-1 from %d, want 99 (pending delta overlaid)", c.OldLucidity)
				}
			}
			checkLucidity(t, b.lucidity(), scenarioExpect[1])
		})
	}
}

// TestRunnerCloseFlushesPending: Close applies what a failed tick left, is idempotent, and
// Tick, Run and Stop behave as closed afterwards.
func TestRunnerCloseFlushesPending(t *testing.T) {
	t.Parallel()
	b := memoryBackend(t, scenarioPlayers()...)
	flaky := &flakyStore{PlayerStore: b.store, failApply: 1}
	r, err := flux.NewRunner(flaky, memoryRooms(t, scenarioRooms()...), flux.RunnerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := r.Tick(ctx, rtNight); !errors.Is(err, flux.ErrApplyFailed) {
		t.Fatalf("tick: %v", err)
	}
	checkLucidity(t, b.lucidity(), map[string]int{"eld-1": 100})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	checkLucidity(t, b.lucidity(), scenarioExpect[0])
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("Stop after Close: %v", err)
	}
	if _, err := r.Tick(ctx, rtNight); !errors.Is(err, flux.ErrClosed) {
		t.Fatalf("Tick after Close: %v", err)
	}
	if err := r.Run(ctx, time.Second); !errors.Is(err, flux.ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
	if st := r.Stats(); st.PendingPlayers != 0 {
		t.Fatalf("stats after Close %+v", st)
	}
	if got := flaky.applyCount(); got != 2 {
		t.Fatalf("%d apply calls, want 2 (the failed tick, Close's flush; nothing once empty)", got)
	}
}

// TestRunnerStopReturnsFlushError: a final flush that keeps failing until Stop's deadline
// says it gave up and how many players' writes are left; a second Stop does not retry, it
// returns the same error.
func TestRunnerStopReturnsFlushError(t *testing.T) {
	t.Parallel()
	b := memoryBackend(t, scenarioPlayers()...)
	flaky := &flakyStore{PlayerStore: b.store, failApply: 1 << 30}
	r, err := flux.NewRunner(flaky, memoryRooms(t, scenarioRooms()...), flux.RunnerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, _ = r.Tick(ctx, rtNight)
	err = r.Stop(ctx)
	tries := flaky.applyCount()
	if !errors.Is(err, flux.ErrFlushIncomplete) || !errors.Is(err, flux.ErrApplyFailed) || !strings.Contains(err.Error(), "5 players") {
		t.Fatalf("Stop: %v", err)
	}
	if st := r.Stats(); st.PendingPlayers != 5 {
		t.Fatalf("pending after a failed Stop: %+v", st)
	}
	if err2 := r.Stop(ctx); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("second Stop: %v, want the first one's error", err2)
	}
	if got := flaky.applyCount(); got != tries || tries < 3 {
		t.Fatalf("%d apply calls after the first Stop, %d after the second; want the tick and at least two tries of the first Stop, none of the second", tries, got)
	}
}

// TestRunnerCloseDuringSlowApply: with default settings, Close during an apply that would
// take longer than CloseTimeout cancels it and writes everything pending itself: nothing
// is left in a closed runner. Then a flush that cannot finish is reported as given up.
func TestRunnerCloseDuringSlowApply(t *testing.T) {
	t.Parallel()
	b := memoryBackend(t, scenarioPlayers()...)
	store := &flakyStore{PlayerStore: b.store, applyDelay: time.Hour}
	r, err := flux.NewRunner(store, memoryRooms(t, scenarioRooms()...), flux.RunnerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ticked := make(chan error, 1)
	go func() {
		_, err := r.Tick(context.Background(), rtNight)
		ticked <- err
	}()
	for store.applyCount() == 0 {
		time.Sleep(time.Millisecond)
	}
	store.setApplyDelay(0) // the database recovers while the first apply still hangs
	start := time.Now()
	if err := r.Close(); err != nil {
		t.Fatalf("Close during a slow apply: %v", err)
	}
	if d := time.Since(start); d > flux.DefaultApplyTimeout/2 {
		t.Fatalf("Close took %v: it waited for the slow apply", d)
	}
	if err := <-ticked; !errors.Is(err, flux.ErrApplyFailed) || !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled tick: %v", err)
	}
	checkLucidity(t, b.lucidity(), scenarioExpect[0])
	if st := r.Stats(); st.PendingPlayers != 0 {
		t.Fatalf("pending after Close: %+v", st)
	}

	// A database that never answers: Close gives up at CloseTimeout and says so.
	b2 := memoryBackend(t, scenarioPlayers()...)
	dead := &flakyStore{PlayerStore: b2.store, failApply: 1}
	r2, err := flux.NewRunner(dead, memoryRooms(t, scenarioRooms()...), flux.RunnerConfig{CloseTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Tick(context.Background(), rtNight); !errors.Is(err, flux.ErrApplyFailed) {
		t.Fatal(err)
	}
	dead.setApplyDelay(time.Hour)
	start = time.Now()
	err = r2.Close()
	if !errors.Is(err, flux.ErrFlushIncomplete) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("Close against a dead database: %v after %v", err, time.Since(start))
	}
	dead.setApplyDelay(0)
	if err2 := r2.Close(); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("second Close: %v, want the first one's error", err2)
	}
}

// TestRunnerRunSkipsOverrunTicks: with every tick taking 6 intervals, Run skips the missed
// ticks and counts them instead of running them back to back, and returns when ctx ends.
func TestRunnerRunSkipsOverrunTicks(t *testing.T) {
	t.Parallel()
	const interval = 20 * time.Millisecond
	b := memoryBackend(t, scenarioPlayers()...)
	slow := &flakyStore{PlayerStore: b.store, loadDelay: 6 * interval}
	r := newRunner(t, slow, memoryRooms(t, scenarioRooms()...), flux.RunnerConfig{Now: func() time.Time { return rtNight }})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := r.Run(ctx, interval); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	st := r.Stats()
	if st.Ticks < 1 || st.SkippedTicks < 6*st.Ticks-st.Ticks {
		t.Fatalf("ticks %d skipped %d", st.Ticks, st.SkippedTicks)
	}
	if max := int64(elapsed/(6*interval)) + 1; st.Ticks > max {
		t.Fatalf("%d ticks in %v of 120 ms ticks: ticks piled up", st.Ticks, elapsed)
	}
}

// TestRunnerConfigInvalid: bad config is an error wrapping ErrInvalidConfig, never a panic.
func TestRunnerConfigInvalid(t *testing.T) {
	t.Parallel()
	m := flux.NewMemoryPlayers(flux.DefaultRules())
	rooms := memoryRooms(t)
	bad := flux.DefaultRules()
	bad.MinLucidity = 200
	for name, cfg := range map[string]flux.RunnerConfig{
		"negative timeout":     {ApplyTimeout: -time.Second},
		"negative batch":       {MaxWriteBatch: -1},
		"huge batch":           {MaxWriteBatch: flux.MaxWriteBatchLimit + 1},
		"negative close":       {CloseTimeout: -time.Second},
		"negative tick length": {TickLength: -time.Minute},
		"bad rules":            {Rules: &bad},
		"runner id with NUL":   {RunnerID: "srv\x00"},
		"runner id not UTF-8":  {RunnerID: "srv\xff"},
		"runner id too long":   {RunnerID: strings.Repeat("s", flux.MaxRunnerIDLength+1)},
		"scope with NUL":       {Scope: "a\x00"},
		"scope too long":       {Scope: strings.Repeat("s", flux.MaxScopeLength+1)},
	} {
		if _, err := flux.NewRunner(m, rooms, cfg); !errors.Is(err, flux.ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := flux.NewRunner(nil, rooms, flux.RunnerConfig{}); !errors.Is(err, flux.ErrInvalidConfig) {
		t.Errorf("nil store: %v", err)
	}
	r := newRunner(t, m, rooms, flux.RunnerConfig{})
	if err := r.Run(context.Background(), 0); !errors.Is(err, flux.ErrInvalidConfig) {
		t.Errorf("Run(0): %v", err)
	}
	if _, err := flux.NewPostgresPlayers(nil, flux.PostgresConfig{}); !errors.Is(err, flux.ErrInvalidConfig) {
		t.Errorf("nil pool: %v", err)
	}
}
