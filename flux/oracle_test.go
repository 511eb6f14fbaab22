package flux_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/url"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/faultproxy"
	"github.com/gamepersist/gamepersist/internal/testdb"
	"github.com/gamepersist/gamepersist/internal/worldgen"
	"github.com/jackc/pgx/v5/pgxpool"
)

// faultyApply wraps the Postgres store so that about 10 % of the apply statements fail at
// the network level, through a real TCP fault proxy: a connection reset mid-statement (the
// statement never runs), or the reply dropped after the server committed (the store sees
// an error; the tick is in fact applied). Loads are never faulted, so the runner's
// evaluations stay comparable with the replay's.
type faultyApply struct {
	flux.PlayerStore
	proxy  *faultproxy.Proxy
	pool   *pgxpool.Pool // the proxied pool, reset after a lost reply
	direct *pgxpool.Pool // watches commits, bypassing the proxy
	rng    *rand.Rand
	t      testing.TB

	resets, lost, lostCommitted int
}

func (f *faultyApply) Apply(ctx context.Context, ticks []flux.TickChanges) (flux.ApplyResult, error) {
	x := f.rng.Float64()
	switch {
	case x < 0.06:
		f.resets++
		if err := f.proxy.ResetPeer(0); err != nil {
			f.t.Error(err)
		}
		defer f.proxy.RemoveToxics()
		return f.PlayerStore.Apply(ctx, ticks)
	case x < 0.10:
		f.lost++
		if err := f.proxy.DropReplies(); err != nil {
			f.t.Error(err)
		}
		ids := make([]string, len(ticks))
		for i, tc := range ticks {
			ids[i] = tc.TickID
		}
		committed := make(chan bool, 1)
		go func() {
			// Wait until the statement committed, then cut the connections: the reply
			// is lost after the commit. (On a connection where pgx must first prepare
			// the statement, the prepare's reply is the one lost and nothing commits:
			// then this is one more failure before the statement ran.)
			deadline := time.Now().Add(500 * time.Millisecond) // a real apply takes milliseconds
			ok := false
			for !ok && time.Now().Before(deadline) {
				var n int
				err := f.direct.QueryRow(context.Background(),
					`SELECT count(*) FROM flux_applied_ticks WHERE tick_id = ANY($1)`, ids).Scan(&n)
				ok = err == nil && n == len(ids)
				if !ok {
					time.Sleep(2 * time.Millisecond)
				}
			}
			_ = f.proxy.CloseConnections()
			committed <- ok
		}()
		res, err := f.PlayerStore.Apply(ctx, ticks)
		if <-committed {
			f.lostCommitted++
		}
		f.proxy.RemoveToxics()
		f.pool.Reset()
		if err == nil {
			f.t.Error("apply with a dropped reply succeeded")
		}
		return res, err
	}
	return f.PlayerStore.Apply(ctx, ticks)
}

// moveInDB writes the walk's moves to the player table (the game's own writes).
func moveInDB(t testing.TB, pool *pgxpool.Pool, w *worldgen.World, moved []int) {
	t.Helper()
	if len(moved) == 0 {
		return
	}
	ids, roomIDs, at := make([]string, len(moved)), make([]string, len(moved)), make([]time.Time, len(moved))
	for i, k := range moved {
		p := w.Players[k]
		ids[i], roomIDs[i], at[i] = p.ID, p.RoomID, p.LastActive
	}
	_, err := pool.Exec(context.Background(), `UPDATE flux_players p SET room_id = m.room, last_active = m.at
		FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS m(id, room, at) WHERE p.id = m.id`, ids, roomIDs, at)
	if err != nil {
		t.Fatal(err)
	}
}

// TestOracleFaultyApplies runs about 1,000 ticks of a few hundred players wandering a
// generated world, with about 10 % of the apply statements failing through a real TCP fault
// proxy (reset mid-statement, or reply lost after commit), and checks that the database
// ends exactly equal — lucidity, tier and carry-over ledger of every player — to an
// in-memory replay of the same ticks with no faults (a second Evaluator, ledger and
// MemoryPlayers). Every tick's number of changes must match the replay's too.
func TestOracleFaultyApplies(t *testing.T) {
	t.Parallel()
	ticks, players, rooms := 1000, 300, 120
	if testing.Short() {
		ticks, players = 400, 200
	}
	ctx := context.Background()
	start := time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC) // night first, day from 06:00
	world := worldgen.New(worldgen.Config{Rooms: rooms, Players: players, Seed: 7, Now: start})
	rules := flux.DefaultRules()

	cs, _ := testdb.NewSchema(t)
	u, err := url.Parse(cs)
	if err != nil {
		t.Fatal(err)
	}
	proxy := faultproxy.Start(t, u.Host)
	direct, err := pgxpool.New(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	proxied, err := pgxpool.New(ctx, faultproxy.RewriteURL(cs, proxy.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer proxied.Close()

	postgresPlayers(t, direct, flux.PostgresConfig{}) // migrates
	if err := world.CopyPlayers(ctx, direct, flux.PostgresConfig{Rules: &rules}); err != nil {
		t.Fatal(err)
	}
	store, err := flux.NewPostgresPlayers(proxied, flux.PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	roomStore := cachedRooms(t)
	if err := world.PutRooms(ctx, roomStore); err != nil {
		t.Fatal(err)
	}
	faulty := &faultyApply{PlayerStore: store, proxy: proxy, pool: proxied, direct: direct, rng: worldgen.NewRand(99), t: t}
	runner, err := flux.NewRunner(faulty, roomStore, flux.RunnerConfig{RunnerID: "oracle", ApplyTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	// The replay: same rules, no faults, no runner.
	replay := flux.NewMemoryPlayers(rules)
	replay.Put(world.Players...)
	oracle, err := flux.NewEvaluator(rules)
	if err != nil {
		t.Fatal(err)
	}
	oracleLedger := flux.Ledger{}
	allRooms := map[string]flux.RoomInfo{}
	for _, r := range world.Rooms {
		allRooms[r.ID] = flux.RoomInfoOf(r)
	}

	walk := worldgen.NewRand(3)
	var moved []int
	var buf []flux.Player
	var notEvaluated, committedFound, changes int
	for k := range ticks {
		now := start.Add(time.Duration(k) * time.Minute)
		moved = world.Wander(walk, now, 0.08, 0.15, moved)
		moveInDB(t, direct, world, moved)
		for _, i := range moved {
			p := world.Players[i]
			if err := replay.Touch(p.ID, p.RoomID, p.LastActive); err != nil {
				t.Fatal(err)
			}
		}

		rep, err := runner.Tick(ctx, now)
		if err != nil && !errors.Is(err, flux.ErrApplyFailed) {
			t.Logf("tick %d: %v", k, err)
		}
		committedFound += rep.CommittedFound
		if !rep.Evaluated {
			notEvaluated++
			continue
		}
		loaded, err := replay.LoadActive(ctx, flux.ActiveQueryFor(rules, now), buf)
		if err != nil {
			t.Fatal(err)
		}
		buf = loaded.Players
		res := oracle.Evaluate(loaded.Players, allRooms, now, oracleLedger)
		if res.Counts.Changed != rep.Counts.Changed || res.Counts.Evaluated != rep.Counts.Evaluated {
			t.Fatalf("tick %d: runner %+v, replay %+v", k, rep.Counts, res.Counts)
		}
		changes += len(res.Changes)
		if _, err := replay.Apply(ctx, []flux.TickChanges{{TickID: rep.TickID, Changes: res.Changes}}); err != nil {
			t.Fatal(err)
		}
	}
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := runner.Stop(closeCtx); err != nil {
		t.Fatalf("final flush: %v", err)
	}

	got := dbLucidity(t, direct)
	for _, want := range replay.Snapshot() {
		g := got[want.ID]
		if g.Lucidity != want.Lucidity || g.Tier != want.Tier {
			t.Errorf("player %s: database %d %s, replay %d %s", want.ID, g.Lucidity, g.Tier, want.Lucidity, want.Tier)
		}
	}
	ledger, err := runner.Ledger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ledger) != len(oracleLedger) {
		t.Errorf("ledger has %d players, replay %d", len(ledger), len(oracleLedger))
	}
	for id, c := range oracleLedger {
		if ledger[id] != c {
			t.Errorf("ledger of %s: %+v, replay %+v", id, ledger[id], c)
		}
	}
	st := runner.Stats()
	t.Logf("%d ticks, %d changes, %d resets, %d lost replies (%d committed), %d found committed by a load, %d ticks not evaluated, apply failures %d",
		ticks, changes, faulty.resets, faulty.lost, faulty.lostCommitted, committedFound, notEvaluated, st.ApplyFailures)
	if faulty.resets == 0 || faulty.lostCommitted == 0 || committedFound == 0 || changes < ticks {
		t.Fatalf("the run did not exercise both faults: resets %d, lost-and-committed %d, found %d, changes %d",
			faulty.resets, faulty.lostCommitted, committedFound, changes)
	}
	if st.ApplyFailures < int64(faulty.resets) {
		t.Fatalf("%d apply failures counted for %d resets", st.ApplyFailures, faulty.resets)
	}
}
