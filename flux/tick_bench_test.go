package flux_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/internal/testkit/pgcount"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/internal/workload/tickload"
)

// W1 sizes (docs/ARCHITECTURE.md): 10,000 active players over 2,000 rooms.
const (
	w1Players = 10_000
	w1Rooms   = 2_000
)

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func w1Workload(b *testing.B, players int) *tickload.Workload {
	b.Helper()
	ctx := context.Background()
	cs, _ := testdb.NewSchema(b)
	pool, counter, err := pgcount.NewPool(ctx, cs)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	w, err := tickload.Setup(ctx, pool, counter, tickload.Config{Players: players, Rooms: w1Rooms, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := w.Close(); err != nil {
			b.Error(err)
		}
	})
	return w
}

// BenchmarkTickW1 measures the whole Postgres tick of the Runner (load 10,000 active
// players, one cached GetRooms over 2,000 rooms, evaluate, one apply statement) against,
// in the same run and interleaved tick by tick (internal/tickload):
//
//   - the in-memory floor: the pure evaluation over players held in memory plus the
//     same single apply statement issued directly with pgx;
//   - the hand-written tick: the floor plus the same active-player load query written
//     directly with pgx. The floor has its players in memory, which a tick that reads
//     the database cannot, so ratio-hand-p50 is the Runner's own overhead.
//
// Run it with -benchtime=600x for the architecture page's (docs/ARCHITECTURE.md) 600 ticks. Metrics: tick-p50-ms/tick-p99-ms
// (Runner), floor-p50-ms/floor-p99-ms, ratio-p50 (Runner/floor), hand-p50-ms and
// ratio-hand-p50 (Runner/hand-written), the Runner's phases (load, rooms, eval, apply),
// statements/tick (counted by a tracer on the pool), rows/tick (players written), drift
// (p50 of the last 50 ticks / p50 of the first 50).
func BenchmarkTickW1(b *testing.B) {
	ctx := context.Background()
	w := w1Workload(b, w1Players)
	order := [][]tickload.Path{
		{tickload.Library, tickload.Floor, tickload.Hand},
		{tickload.Floor, tickload.Hand, tickload.Library},
		{tickload.Hand, tickload.Library, tickload.Floor},
	}
	// Warm up: the first tick fills the room cache and prepares the statements.
	for range 3 {
		for _, p := range order[0] {
			if _, err := w.Run(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
		w.Next()
	}

	var lib, floor, hand, load, apply, roomsD, evalD []time.Duration
	var rows, statements int64
	b.ResetTimer()
	for i := range b.N {
		got := map[tickload.Path]tickload.Sample{}
		for _, p := range order[i%len(order)] {
			s, err := w.Run(ctx, p)
			if err != nil {
				b.Fatal(err)
			}
			got[p] = s
		}
		l := got[tickload.Library]
		if got[tickload.Floor].Changes != l.Changes || l.Report.Counts.Evaluated != w1Players {
			b.Fatalf("tick %d: runner %+v, floor %d changes", i, l.Report.Counts, got[tickload.Floor].Changes)
		}
		lib, floor, hand = append(lib, l.Duration), append(floor, got[tickload.Floor].Duration), append(hand, got[tickload.Hand].Duration)
		load, apply = append(load, l.Report.Load), append(apply, l.Report.Apply)
		roomsD, evalD = append(roomsD, l.Report.Rooms), append(evalD, l.Report.Evaluate)
		rows += int64(l.Report.Applied.LucidityUpdated)
		statements += l.Statements
		w.Next()
	}
	b.StopTimer()

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

// BenchmarkTickW2 is the architecture page's (docs/ARCHITECTURE.md) W2: the same world ticked the way the audit found it —
// one room query per player and one UPDATE per changed player — against the Runner in the
// same run. It reports both p50s, the statements of each, and speedup (seed p50 / library
// p50). Each iteration is one tick of each; -benchtime=20x is plenty (a seed-pattern tick
// of 10,000 players makes over 10,000 round trips).
func BenchmarkTickW2(b *testing.B) {
	ctx := context.Background()
	w := w1Workload(b, w1Players)
	for _, p := range []tickload.Path{tickload.Library, tickload.SeedPattern} { // warm up
		if _, err := w.Run(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	w.Next()
	var lib, seed []time.Duration
	var libStmts, seedStmts int64
	b.ResetTimer()
	for i := range b.N {
		paths := []tickload.Path{tickload.Library, tickload.SeedPattern}
		if i%2 == 1 {
			slices.Reverse(paths)
		}
		got := map[tickload.Path]tickload.Sample{}
		for _, p := range paths {
			s, err := w.Run(ctx, p)
			if err != nil {
				b.Fatal(err)
			}
			got[p] = s
		}
		if got[tickload.Library].Changes != got[tickload.SeedPattern].Changes {
			b.Fatalf("tick %d: library %d changes, seed pattern %d", i, got[tickload.Library].Changes, got[tickload.SeedPattern].Changes)
		}
		lib, seed = append(lib, got[tickload.Library].Duration), append(seed, got[tickload.SeedPattern].Duration)
		libStmts += got[tickload.Library].Statements
		seedStmts += got[tickload.SeedPattern].Statements
		w.Next()
	}
	b.StopTimer()
	b.ReportMetric(ms(percentile(lib, 50)), "library-p50-ms")
	b.ReportMetric(ms(percentile(seed, 50)), "seed-p50-ms")
	b.ReportMetric(float64(percentile(seed, 50))/float64(percentile(lib, 50)), "speedup")
	b.ReportMetric(float64(libStmts)/float64(b.N), "library-statements/tick")
	b.ReportMetric(float64(seedStmts)/float64(b.N), "seed-statements/tick")
}

// BenchmarkStepW1 is W1 in the non-blocking mode beside the blocking Tick, interleaved in
// one run (internal/tickload): the caller's stall of Step (evaluation of the background
// worker's latest load, writes handed over) against the pure evaluation of the same tick
// over players in memory, and the blocking Tick's whole duration. Between ticks the
// benchmark waits, unmeasured, for the worker's write and load (Sync), as a 0.6 s flux
// interval would allow. Metrics: stall-p50-ms/stall-p99-ms, eval-p50-ms, ratio-stall-eval
// (stall p50 / evaluation p50), ratio-stall-p99-eval (stall p99 / evaluation p50),
// tick-p50-ms (blocking), durable-lag-p50-ms/durable-lag-p99-ms (Step → its writes
// committed).
func BenchmarkStepW1(b *testing.B) {
	benchStep(b, w1Players)
}

// BenchmarkStepW1x5 is BenchmarkStepW1 at 50,000 players (5 × W1): the stall's cost per
// player (stall-us-per-player) compared with W1's.
func BenchmarkStepW1x5(b *testing.B) {
	benchStep(b, 5*w1Players)
}

func benchStep(b *testing.B, players int) {
	ctx := context.Background()
	w := w1Workload(b, players)
	paths := []tickload.Path{tickload.Step, tickload.Evaluate, tickload.Library}
	for range 3 { // warm up: the room cache, the statements, the worker's first load
		for _, p := range paths {
			if _, err := w.Run(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
		w.Next()
	}
	var stall, eval, tick []time.Duration
	b.ResetTimer()
	for i := range b.N {
		got := map[tickload.Path]tickload.Sample{}
		for k := range paths {
			p := paths[(i+k)%len(paths)]
			s, err := w.Run(ctx, p)
			if err != nil {
				b.Fatal(err)
			}
			got[p] = s
		}
		if got[tickload.Step].Changes != got[tickload.Evaluate].Changes || got[tickload.Step].Report.Counts.Evaluated != players {
			b.Fatalf("tick %d: step %+v, evaluation %d changes", i, got[tickload.Step].Report.Counts, got[tickload.Evaluate].Changes)
		}
		stall = append(stall, got[tickload.Step].Duration)
		eval = append(eval, got[tickload.Evaluate].Duration)
		tick = append(tick, got[tickload.Library].Duration)
		w.Next()
	}
	b.StopTimer()
	st := w.StepStats()
	b.ReportMetric(ms(percentile(stall, 50)), "stall-p50-ms")
	b.ReportMetric(ms(percentile(stall, 99)), "stall-p99-ms")
	b.ReportMetric(ms(percentile(eval, 50)), "eval-p50-ms")
	b.ReportMetric(float64(percentile(stall, 50))/float64(percentile(eval, 50)), "ratio-stall-eval")
	b.ReportMetric(float64(percentile(stall, 99))/float64(percentile(eval, 50)), "ratio-stall-p99-eval")
	b.ReportMetric(ms(percentile(tick, 50)), "tick-p50-ms")
	b.ReportMetric(ms(st.DurableLagP50), "durable-lag-p50-ms")
	b.ReportMetric(ms(st.DurableLagP99), "durable-lag-p99-ms")
	b.ReportMetric(float64(percentile(stall, 50).Microseconds())/float64(players), "stall-us-per-player")
}
