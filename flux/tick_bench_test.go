package flux_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/worldgen"
	"github.com/jackc/pgx/v5/pgxpool"
)

// W1 sizes (DESIGN.md): 10,000 active players over 2,000 rooms.
const (
	w1Players = 10_000
	w1Rooms   = 2_000
)

// w1World generates the W1 world with every player active for the whole run (LastActive
// in the future counts as active), and writes its players to the default table of pool.
func w1World(b *testing.B, pool *pgxpool.Pool, start time.Time) *worldgen.World {
	b.Helper()
	w := worldgen.New(worldgen.Config{Rooms: w1Rooms, Players: w1Players, Seed: 1, Now: start})
	for i := range w.Players {
		w.Players[i].LastActive = start.Add(72 * time.Hour)
	}
	postgresPlayers(b, pool, flux.PostgresConfig{})
	if err := w.CopyPlayers(context.Background(), pool, flux.DefaultPlayersTable, flux.DefaultRules()); err != nil {
		b.Fatal(err)
	}
	return w
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkTickW1 measures the whole Postgres tick of the Runner (load 10,000 active
// players, one cached GetRooms over 2,000 rooms, evaluate, one apply statement) against the
// floor measured in the same run on an identical copy of the data: the pure evaluation
// plus the same single apply statement issued directly with pgx. Each iteration is one
// tick of each, interleaved. Run it with -benchtime=600x for DESIGN.md's 600 ticks.
//
// A third side, the hand-written tick, adds the same active-player load query (written
// directly with pgx) to the floor: the floor has its players in memory, which a tick that
// reads the database cannot, so ratio-hand-p50 is the Runner's own overhead.
//
// Metrics: tick-p50-ms/tick-p99-ms (Runner), floor-p50-ms/floor-p99-ms, ratio-p50
// (Runner/floor, target ≤ 1.25), hand-p50-ms and ratio-hand-p50 (Runner/hand-written),
// load-p50-ms/apply-p50-ms (the Runner's phases),
// statements/tick (Postgres statements counted by a tracer on the Runner's pool),
// rows/tick (players written), drift (p50 of the last 50 ticks / p50 of the first 50).
func BenchmarkTickW1(b *testing.B) {
	ctx := context.Background()
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

	libPool, counter, _ := tracedPool(b)
	world := w1World(b, libPool, start)
	floorPool, _, _ := tracedPool(b)
	w1World(b, floorPool, start)

	rooms := cachedRooms(b)
	if err := world.PutRooms(ctx, rooms); err != nil {
		b.Fatal(err)
	}
	store := postgresPlayers(b, libPool, flux.PostgresConfig{})
	runner := newRunner(b, store, rooms, flux.RunnerConfig{RunnerID: "bench"})

	// The floor: players in memory, the pure evaluation, the same statement via pgx.
	floorStore := postgresPlayers(b, floorPool, flux.PostgresConfig{})
	floorEval, err := flux.NewEvaluator(flux.DefaultRules())
	if err != nil {
		b.Fatal(err)
	}
	floorLedger := flux.Ledger{}
	floorPlayers := slices.Clone(world.Players)
	index := make(map[string]int, len(floorPlayers))
	for i, p := range floorPlayers {
		index[p.ID] = i
	}
	floorRooms := make(map[string]flux.RoomInfo, len(world.Rooms))
	for _, r := range world.Rooms {
		floorRooms[r.ID] = flux.RoomInfoOf(r)
	}
	floorTick := func(k int, now time.Time) (time.Duration, int) {
		t0 := time.Now()
		res := floorEval.Evaluate(floorPlayers, floorRooms, now, floorLedger)
		sql, args := floorStore.ApplyStatement([]flux.TickChanges{{TickID: "floor:" + time.Duration(k).String(), Changes: res.Changes}})
		var applied, updated int32
		if err := floorPool.QueryRow(ctx, sql, args...).Scan(&applied, &updated); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		for _, c := range res.Changes {
			floorPlayers[index[c.PlayerID]].Lucidity = c.NewLucidity
		}
		return d, len(res.Changes)
	}

	// The hand-written tick: the same load query, evaluation and apply statement written
	// directly with pgx, on a third copy of the data: what the Runner costs over doing it
	// by hand.
	handPool, _, _ := tracedPool(b)
	w1World(b, handPool, start)
	handStore := postgresPlayers(b, handPool, flux.PostgresConfig{})
	handEval, err := flux.NewEvaluator(flux.DefaultRules())
	if err != nil {
		b.Fatal(err)
	}
	handLedger := flux.Ledger{}
	var handPlayers []flux.Player
	handTick := func(k int, now time.Time) time.Duration {
		t0 := time.Now()
		rows, err := handPool.Query(ctx, `SELECT id, room_id, lucidity, last_active, created_at FROM flux_players
			WHERE last_active >= $1 OR created_at >= $2`, now.Add(-5*time.Minute), now.Add(-time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		handPlayers = handPlayers[:0]
		var p flux.Player
		for rows.Next() {
			if err := rows.Scan(&p.ID, &p.RoomID, &p.Lucidity, &p.LastActive, &p.CreatedAt); err != nil {
				b.Fatal(err)
			}
			handPlayers = append(handPlayers, p)
		}
		if rows.Err() != nil {
			b.Fatal(rows.Err())
		}
		res := handEval.Evaluate(handPlayers, floorRooms, now, handLedger)
		sql, args := handStore.ApplyStatement([]flux.TickChanges{{TickID: "hand:" + time.Duration(k).String(), Changes: res.Changes}})
		var applied, updated int32
		if err := handPool.QueryRow(ctx, sql, args...).Scan(&applied, &updated); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}

	// Warm up: the first tick fills the room cache and prepares the statements.
	tick := 0
	for range 3 {
		now := start.Add(time.Duration(tick) * time.Minute)
		if _, err := runner.Tick(ctx, now); err != nil {
			b.Fatal(err)
		}
		floorTick(tick, now)
		handTick(tick, now)
		tick++
	}

	var lib, floor, hand, load, apply, roomsD, evalD []time.Duration
	rows := 0
	stmtBefore := counter.n.Load()
	b.ResetTimer()
	for i := range b.N {
		now := start.Add(time.Duration(tick) * time.Minute)
		var rep flux.TickReport
		var fd time.Duration
		var fn int
		runLib := func() {
			var err error
			if rep, err = runner.Tick(ctx, now); err != nil {
				b.Fatal(err)
			}
		}
		switch i % 3 {
		case 0:
			runLib()
			fd, fn = floorTick(tick, now)
			hand = append(hand, handTick(tick, now))
		case 1:
			fd, fn = floorTick(tick, now)
			hand = append(hand, handTick(tick, now))
			runLib()
		default:
			hand = append(hand, handTick(tick, now))
			runLib()
			fd, fn = floorTick(tick, now)
		}
		if fn != rep.Counts.Changed || rep.Counts.Evaluated != w1Players {
			b.Fatalf("tick %d: runner %+v, floor %d changes", tick, rep.Counts, fn)
		}
		lib, floor = append(lib, rep.Total), append(floor, fd)
		load, apply = append(load, rep.Load), append(apply, rep.Apply)
		roomsD, evalD = append(roomsD, rep.Rooms), append(evalD, rep.Evaluate)
		rows += rep.Applied.PlayersUpdated
		tick++
	}
	b.StopTimer()
	statements := counter.n.Load() - stmtBefore

	b.ReportMetric(ms(percentile(lib, 50)), "tick-p50-ms")
	b.ReportMetric(ms(percentile(lib, 99)), "tick-p99-ms")
	b.ReportMetric(ms(percentile(floor, 50)), "floor-p50-ms")
	b.ReportMetric(ms(percentile(floor, 99)), "floor-p99-ms")
	b.ReportMetric(float64(percentile(lib, 50))/float64(percentile(floor, 50)), "ratio-p50")
	b.ReportMetric(ms(percentile(hand, 50)), "hand-p50-ms")
	b.ReportMetric(float64(percentile(lib, 50))/float64(percentile(hand, 50)), "ratio-hand-p50")
	b.ReportMetric(ms(percentile(load, 50)), "load-p50-ms")
	b.ReportMetric(ms(percentile(apply, 50)), "apply-p50-ms")
	b.ReportMetric(ms(percentile(roomsD, 50)), "rooms-p50-ms")
	b.ReportMetric(ms(percentile(evalD, 50)), "eval-p50-ms")
	b.ReportMetric(float64(statements)/float64(b.N), "statements/tick")
	b.ReportMetric(float64(rows)/float64(b.N), "rows/tick")
	if n := len(lib); n >= 100 {
		b.ReportMetric(float64(percentile(lib[n-50:], 50))/float64(percentile(lib[:50], 50)), "drift")
	}
}
