// Package tickload runs the architecture page's (docs/ARCHITECTURE.md) tick workloads on a real PostgreSQL database, for the
// flux benchmark and examples/tickbench alike, so both measure exactly the same thing:
//
//   - W1, the library: a flux.Runner over flux.PostgresPlayers and a roomstore.Cached in
//     front of the Postgres room store (one load query, one cached GetRooms, the pure
//     evaluation, one apply statement);
//   - the floor: the pure evaluation over players held in memory plus the same single apply
//     statement issued directly with pgx;
//   - the hand-written tick: the floor plus the same active-player load query, written
//     directly with pgx — what the Runner costs over doing its work by hand;
//   - W2, the seed pattern the audit found: the active players loaded, then one room query
//     per player and one UPDATE statement per changed player;
//   - the audit's literal description of its tick: one room query per player, and the
//     tick's UPDATEs committed in 3 flushes (3 transactions, one round trip each), which
//     splits W2's cost into its causes (per-player room reads, per-change writes).
//
// Each path has its own copy of the players (its own tables in one schema) and all read
// the same rooms, so every path computes the same changes tick after tick: every Sample
// carries its changes by value (ChangeSet, Digest) and Compare checks them.
package tickload

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/pgcount"
	"github.com/gamepersist/gamepersist/internal/workload/worldgen"
	"github.com/gamepersist/gamepersist/roomstore"
)

// Config sizes a workload. W1 is 10,000 players over 2,000 rooms.
type Config struct {
	Players int
	Rooms   int
	Seed    uint64
	// Start is the game time of the first tick; ticks are one game minute apart.
	Start time.Time
	// Prefix prefixes every table this workload creates (default "tl_"), so several
	// workloads can share a schema.
	Prefix string
}

// Path names one way of doing a tick.
type Path string

// The paths a Workload measures.
const (
	Library Path = "library"
	Floor   Path = "floor"
	// Step is the Runner's non-blocking mode (Start, Step): the Sample's Duration is the
	// caller's stall only; the background write and load run after it, before the next
	// tick (Run waits for them with Sync, outside the measured time).
	Step Path = "step"
	// Evaluate is the pure evaluation alone over players held in memory: what the game
	// loop should wait for in the non-blocking mode.
	Evaluate Path = "evaluate"
	// Hand is the hand-written tick: the library's load statement, the evaluation and the
	// library's apply statement, sent with pgx without a Runner (rooms held in memory).
	Hand Path = "hand"
	// SeedPattern is the audit's pattern as found: a room query per player, an UPDATE per
	// change, each its own round trip and transaction.
	SeedPattern Path = "seed_pattern"
	// SeedFlush3 is the audit's literal description: a room query per player, and the
	// same UPDATEs committed in 3 flushes (a pipelined batch each, one implicit
	// transaction and one round trip per flush).
	SeedFlush3 Path = "seed_flush3"
)

// Flushes is the number of flushes (transactions) of SeedFlush3's tick.
const Flushes = 3

// Sample is one tick of one path.
type Sample struct {
	Duration time.Duration
	// Statements counts single statements sent on the pool during the tick; RoundTrips
	// adds the pipelined batches (SeedFlush3's flushes), one round trip each.
	Statements, RoundTrips int64
	Changes                int
	// Changed is the tick's changes by value, sorted by player, and Digest their hash
	// (ChangeSet.Digest); computed after the measured time.
	Changed ChangeSet
	Digest  uint64
	// Report is the Runner's report (Library and Step only).
	Report flux.TickReport

	raw []flux.Change // the path's changes, valid until its next tick
}

// Workload holds the world, the stores of every path and the tick counter.
type Workload struct {
	pool    *pgxpool.Pool
	counter *pgcount.StatementCounter
	cfg     Config
	world   *worldgen.World
	tick    int

	roomsPG    *roomstore.Postgres
	rooms      *roomstore.Cached
	runner     *flux.Runner
	stepRunner *flux.Runner
	stepRooms  *roomstore.Cached // the step runner's own cache: the paths share no warm state

	evalEval    *flux.Evaluator
	evalLedger  flux.Ledger
	evalPlayers []flux.Player
	evalIndex   map[string]int

	floorStore   *flux.PostgresPlayers
	floorEval    *flux.Evaluator
	floorLedger  flux.Ledger
	floorPlayers []flux.Player
	floorIndex   map[string]int
	roomInfos    map[string]flux.RoomInfo

	handStore   *flux.PostgresPlayers
	handEval    *flux.Evaluator
	handLedger  flux.Ledger
	handPlayers []flux.Player

	writes []flux.PlayerWrite // the floor's and the hand-written tick's, reused

	seed, seed3 seedState
}

// seedState is one audit path's players, evaluation state and statements.
type seedState struct {
	path    Path
	eval    *flux.Evaluator
	ledger  flux.Ledger
	players []flux.Player
	rooms   map[string]flux.RoomInfo
	loadSQL string
	roomSQL string
	updSQL  string
	flushes int // 0: one UPDATE per change, each its own round trip
	batch   pgx.Batch
}

// Setup creates the tables of every path in pool's current schema, writes the world (rooms
// once, players once per path) and returns the workload. counter must be the tracer of
// pool's connections (see pgcount.NewPool). Close releases what Setup made (not the pool).
func Setup(ctx context.Context, pool *pgxpool.Pool, counter *pgcount.StatementCounter, cfg Config) (*Workload, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "tl_"
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	}
	w := &Workload{pool: pool, counter: counter, cfg: cfg}
	w.world = worldgen.New(worldgen.Config{Rooms: cfg.Rooms, Players: cfg.Players, Seed: cfg.Seed, Now: cfg.Start})
	// Every player stays active for the whole run: the workload measures ticks of N
	// active players.
	for i := range w.world.Players {
		w.world.Players[i].LastActive = cfg.Start.Add(30 * 24 * time.Hour)
	}
	rules := flux.DefaultRules()

	var err error
	if w.roomsPG, err = roomstore.NewPostgres(pool, roomstore.PostgresConfig{Table: cfg.Prefix + "rooms"}); err != nil {
		return nil, err
	}
	if err := w.roomsPG.Migrate(ctx); err != nil {
		return nil, err
	}
	if err := w.world.PutRooms(ctx, w.roomsPG); err != nil {
		return nil, fmt.Errorf("tickload: put rooms: %w", err)
	}
	if w.rooms, err = roomstore.NewCached(w.roomsPG, roomstore.CacheConfig{}); err != nil {
		return nil, err
	}

	players := func(name string) (*flux.PostgresPlayers, error) {
		pc := flux.PostgresConfig{
			PlayersTable: cfg.Prefix + name + "_players",
			StateTable:   cfg.Prefix + name + "_state",
			Rules:        &rules,
		}
		s, err := flux.NewPostgresPlayers(pool, pc)
		if err != nil {
			return nil, err
		}
		if err := s.Migrate(ctx); err != nil {
			return nil, err
		}
		if err := w.world.CopyPlayers(ctx, pool, pc); err != nil {
			return nil, fmt.Errorf("tickload: copy players: %w", err)
		}
		return s, nil
	}
	libStore, err := players("lib")
	if err != nil {
		return nil, err
	}
	if w.runner, err = flux.NewRunner(libStore, w.rooms, flux.RunnerConfig{RunnerID: "tickload"}); err != nil {
		return nil, err
	}
	if w.floorStore, err = players("floor"); err != nil {
		return nil, err
	}
	stepStore, err := players("step")
	if err != nil {
		return nil, err
	}
	if w.stepRooms, err = roomstore.NewCached(w.roomsPG, roomstore.CacheConfig{}); err != nil {
		return nil, err
	}
	if w.stepRunner, err = flux.NewRunner(stepStore, w.stepRooms, flux.RunnerConfig{RunnerID: "tickload-step"}); err != nil {
		return nil, err
	}
	if err := w.stepRunner.Start(cfg.Start); err != nil {
		return nil, err
	}
	if w.handStore, err = players("hand"); err != nil {
		return nil, err
	}
	if _, err = players("seed"); err != nil {
		return nil, err
	}
	if _, err = players("seed3"); err != nil {
		return nil, err
	}

	w.roomInfos = make(map[string]flux.RoomInfo, len(w.world.Rooms))
	for _, r := range w.world.Rooms {
		w.roomInfos[r.ID] = flux.RoomInfoOf(r)
	}
	w.floorPlayers = slices.Clone(w.world.Players)
	w.floorIndex = make(map[string]int, len(w.floorPlayers))
	for i, p := range w.floorPlayers {
		w.floorIndex[p.ID] = i
	}
	w.evalPlayers = slices.Clone(w.world.Players)
	w.evalIndex = make(map[string]int, len(w.evalPlayers))
	for i, p := range w.evalPlayers {
		w.evalIndex[p.ID] = i
	}
	w.evalLedger = flux.Ledger{}
	for _, e := range []**flux.Evaluator{&w.floorEval, &w.handEval, &w.evalEval, &w.seed.eval, &w.seed3.eval} {
		if *e, err = flux.NewEvaluator(rules); err != nil {
			return nil, err
		}
	}
	w.floorLedger, w.handLedger = flux.Ledger{}, flux.Ledger{}

	for _, st := range []struct {
		s       *seedState
		path    Path
		table   string
		flushes int
	}{{&w.seed, SeedPattern, "seed", 0}, {&w.seed3, SeedFlush3, "seed3", Flushes}} {
		s := st.s
		s.path, s.flushes, s.ledger = st.path, st.flushes, flux.Ledger{}
		s.rooms = make(map[string]flux.RoomInfo, len(w.world.Rooms))
		players := ident(cfg.Prefix + st.table + "_players")
		s.loadSQL = `SELECT id, room_id, lucidity, last_active, created_at FROM ` + players + ` WHERE last_active >= $1 OR created_at >= $2`
		s.roomSQL = `SELECT plane, zone, sub_zone, environment FROM ` + ident(cfg.Prefix+"rooms") + ` WHERE id = $1`
		s.updSQL = `UPDATE ` + players + ` SET lucidity = $2, tier = $3 WHERE id = $1`
	}
	return w, nil
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// Now returns the game time of the next tick.
func (w *Workload) Now() time.Time { return w.cfg.Start.Add(time.Duration(w.tick) * time.Minute) }

// Next advances to the next tick.
func (w *Workload) Next() { w.tick++ }

// Run does the current tick on one path.
func (w *Workload) Run(ctx context.Context, p Path) (Sample, error) {
	now := w.Now()
	before, beforeRT := w.counter.Statements(), w.counter.RoundTrips()
	var s Sample
	var err error
	switch p {
	case Library:
		s, err = w.library(ctx, now)
	case Floor:
		s, err = w.floor(ctx, now)
	case Step:
		s, err = w.step(ctx, now)
	case Evaluate:
		s = w.evaluate(now)
	case Hand:
		s, err = w.hand(ctx, now)
	case SeedPattern:
		s, err = w.seedTick(ctx, &w.seed, now)
	case SeedFlush3:
		s, err = w.seedTick(ctx, &w.seed3, now)
	default:
		return Sample{}, fmt.Errorf("tickload: unknown path %q", p)
	}
	s.Statements = w.counter.Statements() - before
	s.RoundTrips = w.counter.RoundTrips() - beforeRT
	s.Changed = NewChangeSet(s.raw)
	s.Digest = s.Changed.Digest()
	s.raw = nil
	return s, err
}

func (w *Workload) library(ctx context.Context, now time.Time) (Sample, error) {
	rep, err := w.runner.Tick(ctx, now)
	if err != nil {
		return Sample{}, fmt.Errorf("tickload: library tick: %w", err)
	}
	return Sample{Duration: rep.Total, Changes: rep.Counts.Changed, Report: rep, raw: rep.Changes}, nil
}

// step does the non-blocking tick: the Sample's Duration is Step's alone; then it waits
// (unmeasured) for the background write and load, as a game loop's interval would. A
// Step before the first load arrived (ErrNoState) waits for it and steps again.
func (w *Workload) step(ctx context.Context, now time.Time) (Sample, error) {
	rep, err := w.stepRunner.Step(now)
	if errors.Is(err, flux.ErrNoState) {
		// The first background load (sent by Start in Setup) has not arrived yet: wait
		// for it, unmeasured, and step again. Nothing was written.
		if err := w.stepRunner.Sync(ctx); err != nil {
			return Sample{}, fmt.Errorf("tickload: step sync before the first load: %w", err)
		}
		rep, err = w.stepRunner.Step(now)
	}
	if err != nil {
		return Sample{}, fmt.Errorf("tickload: step: %w", err)
	}
	if err := w.stepRunner.Sync(ctx); err != nil {
		return Sample{}, fmt.Errorf("tickload: step sync: %w", err)
	}
	return Sample{Duration: rep.Total, Changes: rep.Counts.Changed, Report: rep, raw: rep.Changes}, nil
}

// evaluate is the pure evaluation alone, over players held in memory.
func (w *Workload) evaluate(now time.Time) Sample {
	t0 := time.Now()
	res := w.evalEval.Evaluate(w.evalPlayers, w.roomInfos, now, w.evalLedger)
	d := time.Since(t0)
	for _, c := range res.Changes {
		w.evalPlayers[w.evalIndex[c.PlayerID]].Lucidity = c.NewLucidity
	}
	return Sample{Duration: d, Changes: len(res.Changes), raw: res.Changes}
}

// StepStats returns the non-blocking Runner's stats (durable lag, background work).
func (w *Workload) StepStats() flux.RunnerStats { return w.stepRunner.Stats() }

// apply sends the library's own apply statement for one write per evaluated player (its
// new flux state and lucidity change), as the Runner does, and sets the players' stored
// tick in memory. Like the Runner, it sends nothing when there is nothing to write.
func (w *Workload) apply(ctx context.Context, store *flux.PostgresPlayers, path string, players []flux.Player,
	res flux.Result, ledger flux.Ledger, now time.Time) error {
	tick := flux.TickNumber(now, flux.DefaultTickLength)
	rules := flux.DefaultRules()
	w.writes = w.writes[:0]
	j := 0
	for i := range players {
		p := &players[i]
		delta := 0
		if j < len(res.Changes) && res.Changes[j].PlayerID == p.ID {
			delta = res.Changes[j].NewLucidity - res.Changes[j].OldLucidity
			j++
		}
		if _, ok := w.roomInfos[p.RoomID]; !ok || !rules.IsActive(*p, now) {
			continue
		}
		w.writes = append(w.writes, flux.PlayerWrite{
			PlayerID: p.ID, FromTick: p.Flux.Tick, FromWriter: p.Flux.Writer, Delta: delta, Ticks: 1,
			State:       flux.TickState{Tick: tick, Carry: ledger[p.ID], LastDelta: delta, Writer: 1},
			OldLucidity: p.Lucidity, NewLucidity: p.Lucidity + delta, RoomID: p.RoomID,
		})
		p.Flux.Tick, p.Flux.Writer = tick, 1
	}
	if len(w.writes) == 0 {
		return nil
	}
	sql, args := store.ApplyStatement(w.writes)
	var written, updated int32
	if err := w.pool.QueryRow(ctx, sql, args...).Scan(&written, &updated); err != nil {
		return fmt.Errorf("tickload: %s apply: %w", path, err)
	}
	if int(written) != len(w.writes) {
		return fmt.Errorf("tickload: %s apply wrote %d of %d players", path, written, len(w.writes))
	}
	return nil
}

func (w *Workload) floor(ctx context.Context, now time.Time) (Sample, error) {
	t0 := time.Now()
	res := w.floorEval.Evaluate(w.floorPlayers, w.roomInfos, now, w.floorLedger)
	if err := w.apply(ctx, w.floorStore, "floor", w.floorPlayers, res, w.floorLedger, now); err != nil {
		return Sample{}, err
	}
	d := time.Since(t0)
	for _, c := range res.Changes {
		w.floorPlayers[w.floorIndex[c.PlayerID]].Lucidity = c.NewLucidity
	}
	return Sample{Duration: d, Changes: len(res.Changes), raw: res.Changes}, nil
}

// loadLibrary runs the library's own load query (with the stored flux state) directly.
func (w *Workload) loadLibrary(ctx context.Context, store *flux.PostgresPlayers, now time.Time, dst []flux.Player) ([]flux.Player, error) {
	sql, args := store.LoadStatement(flux.ActiveQueryFor(flux.DefaultRules(), now))
	rows, err := w.pool.Query(ctx, sql, args...)
	if err != nil {
		return dst, fmt.Errorf("tickload: load players: %w", err)
	}
	defer rows.Close()
	dst = dst[:0]
	var p flux.Player
	for rows.Next() {
		if err := rows.Scan(&p.ID, &p.RoomID, &p.Lucidity, &p.LastActive, &p.CreatedAt, &p.Scope, &p.Flux.Tick,
			&p.Flux.Carry.Residual, &p.Flux.Carry.RoomID, &p.Flux.Carry.Evaluations, &p.Flux.LastDelta, &p.Flux.Writer); err != nil {
			return dst, fmt.Errorf("tickload: scan player: %w", err)
		}
		dst = append(dst, p)
	}
	if err := rows.Err(); err != nil {
		return dst, fmt.Errorf("tickload: load players: %w", err)
	}
	return dst, nil
}

func (w *Workload) load(ctx context.Context, sql string, now time.Time, dst []flux.Player) ([]flux.Player, error) {
	rows, err := w.pool.Query(ctx, sql, now.Add(-5*time.Minute), now.Add(-time.Hour))
	if err != nil {
		return dst, fmt.Errorf("tickload: load players: %w", err)
	}
	defer rows.Close()
	dst = dst[:0]
	var p flux.Player
	for rows.Next() {
		if err := rows.Scan(&p.ID, &p.RoomID, &p.Lucidity, &p.LastActive, &p.CreatedAt); err != nil {
			return dst, fmt.Errorf("tickload: scan player: %w", err)
		}
		dst = append(dst, p)
	}
	if err := rows.Err(); err != nil {
		return dst, fmt.Errorf("tickload: load players: %w", err)
	}
	return dst, nil
}

func (w *Workload) hand(ctx context.Context, now time.Time) (Sample, error) {
	t0 := time.Now()
	var err error
	if w.handPlayers, err = w.loadLibrary(ctx, w.handStore, now, w.handPlayers); err != nil {
		return Sample{}, err
	}
	clear(w.handLedger)
	for _, p := range w.handPlayers {
		w.handLedger[p.ID] = p.Flux.Carry
	}
	res := w.handEval.Evaluate(w.handPlayers, w.roomInfos, now, w.handLedger)
	if err := w.apply(ctx, w.handStore, "hand", w.handPlayers, res, w.handLedger, now); err != nil {
		return Sample{}, err
	}
	return Sample{Duration: time.Since(t0), Changes: len(res.Changes), raw: res.Changes}, nil
}

// seedTick is an audit path's tick: the active players loaded, one room query per
// player, the evaluation, then the changes written with one UPDATE each — each its own
// round trip and implicit transaction (SeedPattern), or queued into s.flushes pipelined
// batches, each one round trip and one implicit transaction (SeedFlush3).
func (w *Workload) seedTick(ctx context.Context, s *seedState, now time.Time) (Sample, error) {
	t0 := time.Now()
	var err error
	if s.players, err = w.load(ctx, s.loadSQL, now, s.players); err != nil {
		return Sample{}, err
	}
	clear(s.rooms)
	for _, p := range s.players {
		var ri flux.RoomInfo
		err := w.pool.QueryRow(ctx, s.roomSQL, p.RoomID).Scan(&ri.Plane, &ri.Zone, &ri.SubZone, &ri.Environment)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return Sample{}, fmt.Errorf("tickload: %s room query: %w", s.path, err)
		}
		ri.ID = p.RoomID
		s.rooms[p.RoomID] = ri
	}
	res := s.eval.Evaluate(s.players, s.rooms, now, s.ledger)
	if s.flushes == 0 {
		for _, c := range res.Changes {
			if _, err := w.pool.Exec(ctx, s.updSQL, c.PlayerID, c.NewLucidity, string(c.NewTier)); err != nil {
				return Sample{}, fmt.Errorf("tickload: %s update: %w", s.path, err)
			}
		}
	} else if err := w.flush(ctx, s, res.Changes); err != nil {
		return Sample{}, err
	}
	return Sample{Duration: time.Since(t0), Changes: len(res.Changes), raw: res.Changes}, nil
}

// flush writes changes in s.flushes pipelined batches of UPDATEs of even size (fewer
// batches when there are fewer changes, none when there is none), each one implicit
// transaction and one round trip.
func (w *Workload) flush(ctx context.Context, s *seedState, changes []flux.Change) error {
	n := len(changes)
	for i := range s.flushes {
		part := changes[i*n/s.flushes : (i+1)*n/s.flushes]
		if len(part) == 0 {
			continue
		}
		s.batch = pgx.Batch{QueuedQueries: s.batch.QueuedQueries[:0]}
		for _, c := range part {
			s.batch.Queue(s.updSQL, c.PlayerID, c.NewLucidity, string(c.NewTier))
		}
		if err := w.pool.SendBatch(ctx, &s.batch).Close(); err != nil {
			return fmt.Errorf("tickload: %s flush: %w", s.path, err)
		}
	}
	return nil
}

// Close stops the runner (flushing nothing: every tick applied or failed loudly) and the
// room cache. The pool is the caller's.
func (w *Workload) Close() error {
	return errors.Join(w.runner.Close(), w.stepRunner.Close(), w.rooms.Close(), w.stepRooms.Close(), w.roomsPG.Close())
}
