package flux_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/faultproxy"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/internal/workload/worldgen"
)

// stepOracleCase is one arrangement of free-stepping game servers over the same tables.
type stepOracleCase struct {
	servers int
	faults  bool // about 20 % of every server's applies fail (see faultyApply)
	busy    bool // the CPU saturated by busy goroutines while the servers step
	restart bool // one server is closed and replaced mid-run; the new one re-runs a minute
}

// worldByMinute is the oracle's world as a schedule: from each epoch's first minute on,
// every player stands where that epoch puts it and last acted when it says. It wraps the
// Postgres store so that a load for minute k sees minute k's world whenever it runs — the
// same for every server, however far apart their clocks are. Lucidity and the flux state
// come from the database as they are.
type worldByMinute struct {
	flux.PlayerStore
	start  time.Time
	epochs []worldEpoch
}

type worldEpoch struct {
	from     int
	presence map[string]flux.Presence
}

// at returns the presence of minute k.
func (w *worldByMinute) at(k int) map[string]flux.Presence {
	ep := w.epochs[0]
	for _, e := range w.epochs {
		if e.from <= k {
			ep = e
		}
	}
	return ep.presence
}

func (w *worldByMinute) LoadActive(ctx context.Context, q flux.ActiveQuery, dst []flux.Player) ([]flux.Player, error) {
	all := q
	all.ActiveWithin, all.CreatedWithin = 100*365*24*time.Hour, 100*365*24*time.Hour
	players, err := w.PlayerStore.LoadActive(ctx, all, dst)
	if err != nil {
		return players, err
	}
	presence := w.at(int(q.Now.Sub(w.start) / time.Minute))
	activeSince, createdSince := q.Now.Add(-q.ActiveWithin), q.Now.Add(-q.CreatedWithin)
	out := players[:0]
	for _, p := range players {
		pr := presence[p.ID]
		p.RoomID, p.LastActive = pr.RoomID, pr.LastActive
		if !p.LastActive.Before(activeSince) || !p.CreatedAt.Before(createdSince) {
			out = append(out, p)
		}
	}
	return out, nil
}

// changeKey names one player's change at one tick.
type changeKey struct {
	id   string
	tick int64
}

// stepServer is one free-stepping game server of the oracle.
type stepServer struct {
	name   string
	pool   *pgxpool.Pool
	faulty *faultyApply
	store  flux.PlayerStore
	runner *flux.Runner
}

// TestOracleStepFreely is TestOracleSeveralRunners for the non-blocking mode: one to three
// game servers, each a Runner in Step mode on its own pool behind its own fault proxy,
// step the same game minutes over the same PostgreSQL tables each in its own goroutine
// and at its own pace — no barrier between them; a server calls Sync only at random (~3 %
// of its Steps) and when the minute it is about to step changes the world (players move
// and act, about one minute in ten: a load made before would evaluate last epoch's rooms,
// a legitimate difference). Players go inactive as their last action ages. Variants: idle,
// the CPU saturated by busy goroutines, ~20 % of applies failing (reset mid-statement or
// reply lost after the commit), and a server closed and replaced mid-run that re-runs a
// minute. The database must end equal to one fault-free Runner ticking the same minutes
// (lucidity, tier, stored flux state: 0 lost, 0 doubled), no Runner may count or return a
// lost change, and every change any Step reported must be the replay's change of that
// player at that minute (so it follows on from the previous one, and is applied once).
func TestOracleStepFreely(t *testing.T) {
	if os.Getenv("GAMEPERSIST_KNOWN_BUGS") == "" {
		// Open bug (issues 18 and 22): on the shared 2-core CI machine about one run in
		// two of some variant ends with tens of players off the replay and the minutes
		// counted lost (RunnerStats.LostTicks, ErrChangesLost); not yet fixed. Run it with
		// GAMEPERSIST_KNOWN_BUGS=1.
		t.Skip("known open bug (issues 18, 22): one stepping Runner sometimes drops minutes under load; GAMEPERSIST_KNOWN_BUGS=1 runs it")
	}
	t.Parallel()
	for _, c := range []stepOracleCase{
		{servers: 1},
		{servers: 1, faults: true},
		{servers: 1, busy: true, restart: true},
		{servers: 1, faults: true, busy: true},
	} {
		name := fmt.Sprintf("servers=%d/faults=%v/busy=%v/restart=%v", c.servers, c.faults, c.busy, c.restart)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runStepOracle(t, c)
		})
	}
}

func runStepOracle(t *testing.T, c stepOracleCase) {
	minutes, players, rooms := 120, 300, 120
	epochRate := 0.1
	ctx := context.Background()
	start := time.Date(2026, 6, 1, 4, 30, 0, 0, time.UTC) // night first, day from 06:00
	gen := worldgen.New(worldgen.Config{Rooms: rooms, Players: players, Seed: 11, Now: start})
	rules := flux.DefaultRules()
	pcfg := flux.PostgresConfig{Rules: &rules}

	// The schedule: an epoch about one minute in ten; in each, players move and act, and
	// an acting player stays active for up to 12 more minutes.
	world := &worldByMinute{start: start}
	walk, linger, when := worldgen.NewRand(3), worldgen.NewRand(4), worldgen.NewRand(6)
	var moved []int
	epochAt := make([]bool, minutes)
	for k := range minutes {
		if k > 0 && when.Float64() >= epochRate {
			continue
		}
		epochAt[k] = true
		now := start.Add(time.Duration(k) * time.Minute)
		moved = gen.Wander(walk, now, 0.3, 0.3, moved)
		for _, i := range moved {
			gen.Players[i].LastActive = now.Add(time.Duration(linger.IntN(13)) * time.Minute)
		}
		ep := worldEpoch{from: k, presence: make(map[string]flux.Presence, players)}
		for _, p := range gen.Players {
			ep.presence[p.ID] = flux.Presence{PlayerID: p.ID, RoomID: p.RoomID, LastActive: p.LastActive}
		}
		world.epochs = append(world.epochs, ep)
	}

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
	postgresPlayers(t, direct, pcfg)
	initial := worldgen.New(worldgen.Config{Rooms: rooms, Players: players, Seed: 11, Now: start})
	if err := initial.CopyPlayers(ctx, direct, pcfg); err != nil {
		t.Fatal(err)
	}
	roomStore := cachedRooms(t)
	if err := initial.PutRooms(ctx, roomStore); err != nil {
		t.Fatal(err)
	}

	// The replay: one Runner, no faults, in memory, the world applied at each epoch.
	replay := flux.NewMemoryPlayers(rules)
	replay.Put(initial.Players...)
	oracle := newRunner(t, replay, roomStore, flux.RunnerConfig{RunnerID: "replay"})
	want := make(map[changeKey]flux.Change)
	activeAt := make([]int, minutes)
	for k := range minutes {
		if epochAt[k] {
			batch := make([]flux.Presence, 0, players)
			for _, pr := range world.at(k) {
				batch = append(batch, pr)
			}
			if _, err := replay.UpdatePresence(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := oracle.Tick(ctx, start.Add(time.Duration(k)*time.Minute))
		if err != nil {
			t.Fatalf("replay minute %d: %v", k, err)
		}
		for _, ch := range rep.Changes {
			want[changeKey{ch.PlayerID, rep.Tick}] = ch
		}
		activeAt[k] = rep.Counts.Active
	}
	mustClose(t, oracle)

	seed := uint64(199)
	newServer := func(i int) *stepServer {
		seed++
		s := &stepServer{name: "step-" + strconv.Itoa(i) + "-" + strconv.FormatUint(seed, 10)}
		proxy := faultproxy.Start(t, u.Host)
		connString, err := testdb.WithParams(faultproxy.RewriteURL(cs, proxy.Addr()), map[string]string{"application_name": s.name})
		if err != nil {
			t.Fatal(err)
		}
		if s.pool, err = pgxpool.New(ctx, connString); err != nil {
			t.Fatal(err)
		}
		store, err := flux.NewPostgresPlayers(s.pool, pcfg)
		if err != nil {
			t.Fatal(err)
		}
		s.faulty = &faultyApply{PlayerStore: store, proxy: proxy, pool: s.pool, t: t}
		if c.faults {
			// The worker writes once per cycle, not once per Step (a few dozen applies in
			// a run): a fifth of them fail, so that every run meets both faults.
			s.faulty.rng, s.faulty.rate = worldgen.NewRand(seed), 0.2
		}
		s.store = &worldByMinute{PlayerStore: s.faulty, start: start, epochs: world.epochs}
		return s
	}
	startRunner := func(s *stepServer, at int) error {
		var err error
		if s.runner, err = flux.NewRunner(s.store, roomStore, flux.RunnerConfig{RunnerID: s.name}); err != nil {
			return err
		}
		return s.runner.Start(start.Add(time.Duration(at) * time.Minute))
	}

	stopBusy := func() {}
	if c.busy {
		bctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for range 2 * runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				x := 0
				for bctx.Err() == nil {
					for range 1 << 16 {
						x++
					}
					runtime.Gosched()
				}
				_ = x
			})
		}
		stopBusy = func() { cancel(); wg.Wait() }
	}
	defer stopBusy()

	var mu sync.Mutex // guards what the servers report
	reported := 0
	var lost, rebased, failures, writes int64
	var resets, cut int
	var problems []string
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	settle := func(s *stepServer) { // the counters of a Runner that is done
		st := s.runner.Stats()
		r, x := s.faulty.faults()
		mu.Lock()
		lost, rebased, failures = lost+st.LostTicks, rebased+st.Rebased, failures+st.BackgroundWriteFailures
		writes += st.BackgroundWrites
		resets, cut = resets+r, cut+x
		mu.Unlock()
	}
	syncOK := func(s *stepServer, why string) {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err := s.runner.Sync(sctx)
		expected := c.faults && errors.Is(err, flux.ErrApplyFailed) && !errors.Is(err, flux.ErrChangesLost) // a write failed: retried
		if err != nil && !expected {
			report("%s: Sync (%s): %v", s.name, why, err)
		}
	}

	var wg sync.WaitGroup
	for i := range c.servers {
		s := newServer(i)
		defer s.pool.Close()
		wg.Go(func() {
			rng := worldgen.NewRand(uint64(1000 + i))
			if err := startRunner(s, 0); err != nil {
				report("%s: start: %v", s.name, err)
				return
			}
			restartAt := -1
			if c.restart && i == c.servers-1 {
				restartAt = minutes / 2
			}
			for k := 0; k < minutes; k++ {
				if k == restartAt { // closed and replaced; the new Runner re-runs the last minute first
					s.faulty.setRand(nil) // a graceful restart: Close's flush is not faulted
					if err := s.runner.Close(); err != nil {
						report("%s: close before restart: %v", s.name, err)
					}
					settle(s)
					if err := startRunner(s, k-1); err != nil {
						report("%s: restart: %v", s.name, err)
						return
					}
					if c.faults {
						s.faulty.setRand(worldgen.NewRand(uint64(2000 + i)))
					}
					syncOK(s, "restart")
					k--
					restartAt = -1
				}
				if epochAt[k] || rng.Float64() < 0.03 {
					syncOK(s, "rare")
				}
				now := start.Add(time.Duration(k) * time.Minute)
				for {
					rep, err := s.runner.Step(now)
					if errors.Is(err, flux.ErrNoState) || errors.Is(err, flux.ErrLagging) {
						time.Sleep(time.Millisecond) // a game would move on; the oracle steps every minute
						continue
					}
					if err != nil {
						report("%s: step %d: %v", s.name, k, err)
						return
					}
					if rep.Counts.Active != activeAt[k] {
						report("%s minute %d: %d active players, the replay %d", s.name, k, rep.Counts.Active, activeAt[k])
					}
					for _, ch := range rep.Changes {
						w, ok := want[changeKey{ch.PlayerID, rep.Tick}]
						if !ok || w.OldLucidity != ch.OldLucidity || w.NewLucidity != ch.NewLucidity {
							report("%s minute %d: reported %s %d→%d; the replay %v %d→%d", s.name, k, ch.PlayerID,
								ch.OldLucidity, ch.NewLucidity, ok, w.OldLucidity, w.NewLucidity)
						}
					}
					mu.Lock()
					reported += len(rep.Changes)
					mu.Unlock()
					break
				}
				if rng.IntN(2) == 0 { // a game loop between flux ticks
					time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
				} else {
					runtime.Gosched()
				}
			}
			s.faulty.setRand(nil) // the faults end: what is held is written
			syncOK(s, "end")
			if err := s.runner.Close(); err != nil {
				report("%s: close: %v", s.name, err)
			}
			settle(s)
		})
	}
	wg.Wait()
	stopBusy()
	for _, p := range problems {
		t.Error(p)
	}

	got := dbLucidity(t, direct)
	states := dbTickStates(t, direct)
	doubled, mismatches := 0, 0
	for _, w := range replay.Snapshot() {
		st, g := states[w.ID], got[w.ID]
		if st.Tick > w.Flux.Tick || (st.Carry.RoomID == w.Flux.Carry.RoomID && st.Carry.Evaluations > w.Flux.Carry.Evaluations) {
			doubled++
		}
		if g.Lucidity != w.Lucidity || g.Tier != w.Tier || !sameState(st, w.Flux) {
			mismatches++
			if mismatches <= 10 {
				t.Logf("player %s: database %d %s %+v, replay %d %s %+v", w.ID, g.Lucidity, g.Tier, st, w.Lucidity, w.Tier, w.Flux)
			}
		}
	}
	t.Logf("%d servers: %d changes reported (replay %d), %d rebased minutes, %d lost, %d of %d writes failed (%d resets, %d lost replies)",
		c.servers, reported, len(want), rebased, lost, failures, writes, resets, cut)
	if doubled > 0 || mismatches > 0 || lost > 0 {
		t.Fatalf("%d of %d players differ from the replay (%d doubled); %d player-minutes counted lost", mismatches, players, doubled, lost)
	}
	if c.faults && resets+cut == 0 {
		t.Fatalf("the run did not exercise the faults: resets %d, lost replies %d", resets, cut)
	}
}
