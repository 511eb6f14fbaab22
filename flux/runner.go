package flux

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gamepersist/gamepersist/internal/lifecycle"
	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/rs/zerolog"
)

// Errors of the Runner. Match them with errors.Is.
var (
	// ErrClosed is returned by Tick, Run, Step and AddLucidity after Stop or Close (wrapped,
	// by an AddLucidity that Stop cancelled).
	ErrClosed = errors.New("flux: runner closed")
	// ErrApplyFailed wraps the store's error when a tick's writes could not be applied;
	// they are kept pending (summed per player) and retried by the next Tick, Stop or
	// Close.
	ErrApplyFailed = errors.New("flux: apply failed, writes kept pending")
	// ErrFlushIncomplete is returned by Stop and Close when the final flush gave up with
	// writes still pending (the error says how many players).
	ErrFlushIncomplete = errors.New("flux: final flush incomplete, writes still pending")
)

// TickReport says what one Tick did.
type TickReport struct {
	// Tick is the tick's number (TickNumber of Now and RunnerConfig.TickLength): the
	// fence that applies it at most once to each player, whichever Runner ticks it.
	Tick int64
	// Now is the tick's time.
	Now time.Time
	// Evaluated is true when the tick got as far as the evaluation; false when loading
	// players or rooms failed.
	Evaluated bool
	// Counts are the evaluation's counts (players seen, active, evaluated, changed, rooms
	// needed and missing, players skipped in missing rooms). Players already ticked are
	// evaluated as companions but not written (AlreadyTicked).
	Counts Counts
	// AlreadyTicked counts loaded players whose stored tick is this one or a later one
	// (another server ticked them, or this tick is re-run): they are not written again.
	AlreadyTicked int
	// Superseded counts pending writes dropped because the load showed the player's
	// stored tick had moved: the write was applied after all (a lost reply) or another
	// Runner ticked the player first.
	Superseded int
	// InvalidRoomIDs counts active players' room ids that no RoomStore accepts (empty, …);
	// they are not read and their players are skipped as in a missing room.
	InvalidRoomIDs int
	// Changes are this tick's lucidity changes (players already ticked left out), owned
	// by the Runner and valid until its next Tick (for publishing events). They are
	// applied when ApplyErr is nil.
	Changes []Change
	// Per-phase durations and the total.
	Load, Rooms, Evaluate, Apply, Total time.Duration
	// Statements is the number of player-store round trips (one load, and one apply per
	// RunnerConfig.MaxWriteBatch pending players); RoomReads the number of room reads:
	// one GetRooms call, or one VisitRooms call when the RoomStore implements
	// roomstore.RoomVisitor (served from cache in steady state when the RoomStore is a
	// roomstore.Cached).
	Statements int
	RoomReads  int
	// Applied is what the apply statements did.
	Applied ApplyResult
	// ApplyErr is the apply's error, if any (the writes are then pending).
	ApplyErr error
	// PendingPlayers is the number of players whose writes are left to apply.
	PendingPlayers int
}

// Runner does flux ticks for a caller that drives it: Tick does one and Run ticks on an
// interval, both in the caller's goroutine; after Start, Step does one without waiting for
// the database, and the Runner's one worker goroutine (stopped by Stop and Close) writes
// and loads. Any number of Runners, on any number of servers, can tick the same players:
// each write is a compare-and-set on the player's stored tick (see the package doc).
// Methods are safe to call from different goroutines; ticks never overlap. Stop or Close
// it at shutdown: that is the final flush of what is pending.
type Runner struct {
	players PlayerStore
	rooms   roomstore.RoomStore
	visitor roomstore.RoomVisitor // rooms, when it offers VisitRooms; else nil
	cfg     RunnerConfig
	rules   Rules
	eval    *Evaluator
	log     zerolog.Logger

	sem     chan struct{} // one slot, held while ticking or flushing
	closed  atomic.Bool
	stopped chan struct{} // closed when the first Stop begins, so a waiting Run returns
	down    lifecycle.Shutdown
	workers lifecycle.Group         // the non-blocking mode's worker (Start); Stop waits for it
	life    context.Context         // cancelled by Stop: aborts a running tick's I/O
	endLife context.CancelCauseFunc // cancels life
	startMu sync.Mutex              // guards step's creation
	step    *stepper                // the non-blocking mode's state, after Start
	writer  int64                   // TickState.Writer of this Runner's writes

	// Owned by the holder of sem.
	buf     []Player
	ids     []string
	seen    map[string]struct{} // the set of ids, reused
	infos   map[string]RoomInfo
	addInfo func(roomstore.Room) // puts RoomInfoOf a room into infos; made once
	ledger  Ledger               // this tick's carry-overs, loaded with the players
	skip    []bool               // per loaded player: already ticked, not written
	pending map[string]PlayerWrite
	behind  map[string]PlayerWrite // per player, a write queued behind its pending one (see mergeDoubt)
	batch   []PlayerWrite          // this tick's writes (Tick), reused
	writes  []PlayerWrite
	wrote   []int32 // per write of tickWrites' last call, the index of its player
	changes []Change

	stats   runnerStats
	metrics *runnerMetrics
}

// NewRunner returns a Runner reading players from players and rooms from rooms (neither is
// closed by the Runner). Invalid config returns an error wrapping ErrInvalidConfig. It does
// no I/O; it draws the random id that marks its writes (TickState.Writer).
func NewRunner(players PlayerStore, rooms roomstore.RoomStore, cfg RunnerConfig) (*Runner, error) {
	if players == nil || rooms == nil {
		return nil, fmt.Errorf("%w: nil player or room store", ErrInvalidConfig)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := checkScope(players, cfg.Scope); err != nil {
		return nil, err
	}
	eval, err := NewEvaluator(*cfg.Rules)
	if err != nil {
		return nil, rulesConfigError("RunnerConfig.Rules", err)
	}
	life, endLife := context.WithCancelCause(context.Background())
	lc := cfg.Logger.With().Str("component", "flux.runner").Str("runner_id", cfg.RunnerID)
	if cfg.Scope != "" {
		lc = lc.Str("scope", cfg.Scope)
	}
	r := &Runner{
		players: players, rooms: rooms, cfg: cfg, rules: *cfg.Rules, eval: eval,
		log:     lc.Logger(),
		sem:     make(chan struct{}, 1),
		stopped: make(chan struct{}),
		life:    life, endLife: endLife,
		seen:    make(map[string]struct{}),
		infos:   make(map[string]RoomInfo),
		ledger:  make(Ledger),
		pending: make(map[string]PlayerWrite),
		behind:  make(map[string]PlayerWrite),
		stats:   newRunnerStats(),
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("flux: runner writer id: %w", err)
	}
	r.writer = int64(binary.LittleEndian.Uint64(b[:])&math.MaxInt64) | 1 // positive, never 0
	r.visitor, _ = rooms.(roomstore.RoomVisitor)
	if r.metrics, err = newRunnerMetrics(cfg.MeterProvider, r); err != nil {
		return nil, err
	}
	r.addInfo = func(room roomstore.Room) { r.infos[room.ID] = RoomInfoOf(room) }
	return r, nil
}

func (r *Runner) acquire(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flux: waiting for the running tick: %w", ctx.Err())
	}
}

func (r *Runner) release() { <-r.sem }

// bound returns ctx, also cancelled (with cause ErrClosed) when Stop is called, so that
// Stop never waits for a running tick's database call.
func (r *Runner) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(r.life, func() { cancel(context.Cause(r.life)) })
	return ctx, func() { stop(); cancel(nil) }
}

// Tick does one flux tick at now: load the active players with their stored flux state
// (one query), reconcile and overlay the pending writes, read their rooms (one GetRooms,
// or one VisitRooms when the RoomStore implements roomstore.RoomVisitor), evaluate, and
// apply this tick's writes together with the pending ones (one statement per
// MaxWriteBatch players). Players whose stored tick is already this tick's number or
// later are not written (AlreadyTicked). It returns the report and, when a phase failed,
// an error: loading failures leave everything as it was; an apply failure
// (ErrApplyFailed) keeps the writes pending for the next Tick, Stop or Close. It waits for
// a running Tick (or Stop) to finish.
func (r *Runner) Tick(ctx context.Context, now time.Time) (TickReport, error) {
	if r.closed.Load() {
		return TickReport{}, ErrClosed
	}
	if r.started() {
		return TickReport{}, ErrStarted
	}
	if err := checkGameTime(now, r.cfg.TickLength); err != nil {
		return TickReport{}, err
	}
	if err := r.acquire(ctx); err != nil {
		return TickReport{}, err
	}
	defer r.release()
	if r.closed.Load() {
		return TickReport{}, ErrClosed
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	start := time.Now()
	rep, err := r.tick(ctx, now)
	rep.Total = time.Since(start)
	rep.PendingPlayers = len(r.pending)
	r.stats.record(rep, err)
	r.metrics.recordTick(&rep)
	if err != nil {
		r.log.Warn().Err(err).Int64("tick", rep.Tick).Int("pending_players", rep.PendingPlayers).
			Msg("flux tick failed")
	}
	return rep, err
}

func (r *Runner) tick(ctx context.Context, now time.Time) (TickReport, error) {
	tick := TickNumber(now, r.cfg.TickLength)
	rep := TickReport{Tick: tick, Now: now}

	// Load (one query), with each player's stored flux state.
	t0 := time.Now()
	q := ActiveQueryFor(r.rules, now)
	q.Scope = r.cfg.Scope
	lctx, cancel := context.WithTimeout(ctx, r.cfg.LoadTimeout)
	players, err := r.players.LoadActive(lctx, q, r.buf)
	cancel()
	rep.Statements++
	rep.Load = time.Since(t0)
	if err != nil {
		return rep, err
	}
	r.buf = players
	rep.Superseded = r.reconcile(players)

	// Rooms (one GetRooms or VisitRooms call).
	t0 = time.Now()
	r.ids = activeRoomIDs(r.rules, players, now, r.ids[:0], r.seen)
	valid := r.ids[:0]
	for _, id := range r.ids {
		if roomstore.ValidateID(id) != nil {
			rep.InvalidRoomIDs++
			continue
		}
		valid = append(valid, id)
	}
	r.ids = valid
	clear(r.infos)
	if len(valid) > 0 {
		rctx, cancel := context.WithTimeout(ctx, r.cfg.RoomsTimeout)
		err := r.readRooms(rctx, valid)
		cancel()
		rep.RoomReads++
		if err != nil {
			clear(r.infos)
			rep.Rooms = time.Since(t0)
			return rep, fmt.Errorf("flux: read rooms: %w", err)
		}
	}
	rep.Rooms = time.Since(t0)

	// Evaluate (pure), from the carry-overs loaded with the players.
	t0 = time.Now()
	rep.AlreadyTicked = r.prepare(players, tick)
	res := r.eval.Evaluate(players, r.infos, now, r.ledger)
	r.collect(players, res, tick, now)
	rep.Evaluate = time.Since(t0)
	rep.Evaluated = true
	rep.Counts = res.Counts
	rep.Changes = r.changes

	// Apply (one statement for this tick and everything pending, per MaxWriteBatch).
	return rep, r.flush(ctx, &rep, nil)
}

// reconcile matches the pending writes with the loaded players: a write whose FromTick is
// still the player's stored tick is overlaid on the player (lucidity plus its delta, its
// flux state), so the evaluation continues from it; any other pending write of a loaded
// player is dropped (applied after all, or superseded by another Runner) and counted.
// Pending writes of players not loaded stay pending.
func (r *Runner) reconcile(players []Player) int {
	if len(r.pending) == 0 && len(r.behind) == 0 {
		return 0
	}
	dropped := 0
	for i := range players {
		p := &players[i]
		w, ok := r.pending[p.ID]
		if b, held := r.behind[p.ID]; held { // settled by this load: no need to wait
			w, ok = b, true
			if e, has := r.pending[p.ID]; has && p.Flux.Tick == e.FromTick && p.Flux.Writer == e.FromWriter {
				w = sum(e, b) // the write ahead of b did not land
			}
			delete(r.behind, p.ID)
			r.pending[p.ID] = w
		}
		if !ok {
			continue
		}
		if p.Flux.Tick != w.FromTick || p.Flux.Writer != w.FromWriter {
			delete(r.pending, p.ID)
			dropped++
			continue
		}
		p.Lucidity = clampLucidity(p.Lucidity+w.Delta, r.rules.MinLucidity, r.rules.MaxLucidity)
		p.Flux = w.State
	}
	return dropped
}

// prepare fills the ledger with the players' stored carry-overs and marks the players
// already ticked at tick or later; those already ticked at tick itself enter the
// evaluation with their lucidity as it stood at the tick's start, so that they count as
// the same companions as in the Runner that ticked them. It returns how many it marked.
func (r *Runner) prepare(players []Player, tick int64) int {
	clear(r.ledger)
	r.skip = slices.Grow(r.skip[:0], len(players))[:len(players)]
	n := 0
	for i := range players {
		p := &players[i]
		r.ledger[p.ID] = p.Flux.Carry
		done := p.Flux.Tick >= tick
		r.skip[i] = done
		if !done {
			continue
		}
		n++
		if p.Flux.Tick == tick {
			p.Lucidity = clampLucidity(p.Lucidity-p.Flux.LastDelta, r.rules.MinLucidity, r.rules.MaxLucidity)
		}
	}
	return n
}

// collect merges the tick's writes into pending, summed per player (see tickWrites).
func (r *Runner) collect(players []Player, res Result, tick int64, now time.Time) {
	r.batch = r.tickWrites(players, r.infos, r.ledger, res, tick, now, r.batch[:0])
	for _, w := range r.batch {
		r.merge(w)
	}
}

// tickWrites appends to dst one write of this tick for every evaluated player not already
// ticked (and in the Runner's scope): its new carry-over and tick, its lucidity change if
// any; it copies those players' changes into r.changes and advances the players in place
// to the state the writes leave, so that evaluation can continue from them. The ledger
// entries of evaluated players it does not write go back to their stored carry-over.
func (r *Runner) tickWrites(players []Player, infos map[string]RoomInfo, ledger Ledger, res Result, tick int64,
	now time.Time, dst []PlayerWrite) []PlayerWrite {
	r.changes = r.changes[:0]
	r.wrote = r.wrote[:0]
	cut := activeCutoffs(r.rules, now)
	dst = slices.Grow(dst, res.Counts.Evaluated)
	j := 0 // cursor in res.Changes, which follow the order of players
	for i := range players {
		p := &players[i]
		var ch *Change
		if j < len(res.Changes) && res.Changes[j].PlayerID == p.ID {
			ch = &res.Changes[j]
			j++
		}
		if !cut.active(p) {
			continue
		}
		if _, ok := infos[p.RoomID]; !ok {
			continue
		}
		if r.skip[i] || (r.cfg.Scope != "" && p.Scope != r.cfg.Scope) {
			// Evaluated as a companion, not written: its carry-over stays as stored, so
			// that a later tick evaluated from the same ledger (Step) continues from it.
			ledger[p.ID] = p.Flux.Carry
			continue
		}
		delta, flux := 0, 0.0
		if ch != nil {
			delta, flux = ch.NewLucidity-ch.OldLucidity, ch.Flux
			r.changes = append(r.changes, *ch)
		}
		st := TickState{Tick: tick, Carry: ledger[p.ID], LastDelta: delta, Writer: r.writer}
		r.wrote = append(r.wrote, int32(i))
		dst = append(dst, PlayerWrite{PlayerID: p.ID, FromTick: p.Flux.Tick, FromWriter: p.Flux.Writer, State: st,
			Delta: delta, Ticks: 1, OldLucidity: p.Lucidity, NewLucidity: p.Lucidity + delta, RoomID: p.RoomID, Flux: flux})
		p.Lucidity += delta
		p.Flux = st
	}
	return dst
}

// started reports whether Start was called.
func (r *Runner) started() bool {
	r.startMu.Lock()
	defer r.startMu.Unlock()
	return r.step != nil
}

// readRoomsInto is readRooms for the background worker: it fills infos.
func (r *Runner) readRoomsInto(ctx context.Context, ids []string, infos map[string]RoomInfo) error {
	if r.visitor != nil {
		return r.visitor.VisitRooms(ctx, ids, func(room roomstore.Room) { infos[room.ID] = RoomInfoOf(room) })
	}
	rooms, err := r.rooms.GetRooms(ctx, ids)
	if err != nil {
		return err
	}
	RoomInfos(rooms, infos)
	return nil
}

// validRoomID reports whether id is a room id a RoomStore accepts.
func validRoomID(id string) bool { return roomstore.ValidateID(id) == nil }

// readRooms fills r.infos (empty) with the rooms of ids in one call to the RoomStore:
// VisitRooms when it offers it (no map of Rooms is built: on a warm roomstore.Cached the
// read makes no allocation of its own), else GetRooms and RoomInfos.
func (r *Runner) readRooms(ctx context.Context, ids []string) error {
	if r.visitor != nil {
		return r.visitor.VisitRooms(ctx, ids, r.addInfo)
	}
	rooms, err := r.rooms.GetRooms(ctx, ids)
	if err != nil {
		return err
	}
	r.infos = RoomInfos(rooms, r.infos)
	return nil
}

// flush applies every pending write, MaxWriteBatch players per statement, each within
// ApplyTimeout; the writes of a statement that succeeded leave pending (applied or refused
// as conflicts alike). Those of a statement that failed stay pending, or, when doubt is
// not nil (the non-blocking worker), move to doubt: their outcome is unknown until a load
// tells. Players in doubt are held back. Writes queued behind a write sent again as it is
// (r.behind) go in a statement after it.
func (r *Runner) flush(ctx context.Context, rep *TickReport, doubt map[string]PlayerWrite) error {
	if len(r.pending) == 0 {
		return nil
	}
	t0 := time.Now()
	defer func() { rep.Apply = time.Since(t0) }()
	r.writes = r.writes[:0]
	for id, w := range r.pending {
		if _, held := doubt[id]; !held {
			r.writes = append(r.writes, w)
		}
	}
	for len(r.writes) > 0 {
		chunk := r.writes[:min(len(r.writes), r.cfg.MaxWriteBatch)]
		r.writes = r.writes[len(chunk):]
		actx, cancel := context.WithTimeout(ctx, r.cfg.ApplyTimeout)
		res, err := r.players.Apply(actx, chunk)
		cancel()
		rep.Statements++
		if err != nil && doubt == nil {
			rep.ApplyErr = err
			return fmt.Errorf("%w: %w", ErrApplyFailed, err)
		}
		for _, w := range chunk {
			delete(r.pending, w.PlayerID)
			if err != nil {
				doubt[w.PlayerID] = w
			}
		}
		if err != nil {
			rep.ApplyErr = err
			return fmt.Errorf("%w: %w", ErrApplyFailed, err)
		}
		rep.Applied.Written += res.Written
		rep.Applied.Conflicts += res.Conflicts
		rep.Applied.LucidityUpdated += res.LucidityUpdated
		if len(r.writes) == 0 {
			r.writes = r.releaseBehind(doubt, r.writes)
		}
	}
	return nil
}

// releaseBehind moves into pending, and appends to dst, the writes queued behind a write
// that has now been sent (see mergeDoubt): their statement follows its statement.
func (r *Runner) releaseBehind(doubt map[string]PlayerWrite, dst []PlayerWrite) []PlayerWrite {
	for id, b := range r.behind {
		_, held := doubt[id]
		_, waiting := r.pending[id]
		if held || waiting {
			continue
		}
		delete(r.behind, id)
		r.pending[id] = b
		dst = append(dst, b)
	}
	return dst
}

// Run ticks every interval in the caller's goroutine. When ctx ends it shuts the Runner
// down as Close does (the final flush, within RunnerConfig.CloseTimeout) and returns that
// outcome; when another goroutine calls Stop or Close meanwhile, Run returns at once (a
// running tick's database call is cancelled) with that shutdown's outcome. Tick errors are
// logged and counted in Stats, not returned. A tick that overruns the interval does not
// pile ticks up: the ticks missed meanwhile are skipped and counted
// (Stats().SkippedTicks), and the next tick runs at the next interval boundary. The time
// of each tick is RunnerConfig.Now() or the ticker's. Run after shutdown returns ErrClosed.
func (r *Runner) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("%w: Run interval %v must be positive", ErrInvalidConfig, interval)
	}
	if r.closed.Load() {
		return ErrClosed
	}
	if r.started() {
		return ErrStarted
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return r.Close()
		case <-r.stopped:
			return r.Close() // waits for that shutdown and returns its outcome
		case at := <-t.C:
			if r.cfg.Now != nil {
				at = r.cfg.Now()
			}
			start := time.Now()
			_, _ = r.Tick(ctx, at)
			if r.closed.Load() {
				return r.Close()
			}
			if elapsed := time.Since(start); elapsed >= interval {
				select {
				case <-t.C:
				default:
				}
				r.stats.skip(int64(elapsed / interval))
			}
		}
	}
}

// Stop makes a final flush of the pending writes within ctx and returns its error; from
// the moment it is called, Tick and Run return ErrClosed. A running Tick's database call
// is cancelled (its writes stay pending and are part of the flush), so Stop does not wait
// for a slow apply. A flush that fails is tried again, waiting 20 ms doubling to 1 s
// between tries, until it succeeds or ctx ends (a database back within the deadline loses
// nothing). When it cannot finish it returns an error wrapping ErrFlushIncomplete and the
// store's last error, saying how many players' writes are left (they are lost when the
// process exits: give Stop the deadline you can afford). Only the
// first Stop or Close does this; later ones wait for it and return the same error. It does
// not close the player or room store. It costs one apply statement per MaxWriteBatch
// pending players per try.
func (r *Runner) Stop(ctx context.Context) error {
	if r.closed.CompareAndSwap(false, true) {
		close(r.stopped)
		r.endLife(ErrClosed)
	}
	return r.down.Do(func() error { return r.stop(ctx) })
}

// stop is the first Stop's work: the worker stopped, what it held merged, the final flush.
func (r *Runner) stop(ctx context.Context) error {
	defer func() {
		if err := r.metrics.unregister(); err != nil {
			r.log.Warn().Err(err).Msg("flux metrics not unregistered")
		}
	}()
	if err := r.acquireForStop(ctx); err != nil { // a Tick still runs: its count is the last one
		return fmt.Errorf("%w: at least %d players (a tick still running): %w", ErrFlushIncomplete,
			r.Stats().PendingPlayers, err)
	}
	defer r.release()
	r.startMu.Lock()
	s := r.step
	r.startMu.Unlock()
	if s != nil { // the worker stops at once (its I/O is cancelled); what it held is merged here
		if err := waitDone(ctx, s.done); err != nil {
			return fmt.Errorf("%w: at least %d players (the background worker still running): %w",
				ErrFlushIncomplete, s.heldEstimate(), err)
		}
		s.mu.Lock()
		batches, now := s.mailbox, s.nextNow
		s.mailbox = nil
		s.mu.Unlock()
		for _, b := range batches {
			for _, w := range b.writes {
				r.merge(w)
			}
		}
		r.adoptLast(s)
		if len(s.doubt) > 0 { // learn which writes of unknown outcome landed
			if players, err := r.loadPlayers(ctx, now); err == nil {
				r.resolveDoubt(s.doubt, players)
			}
			r.mergeDoubt(s.doubt)
			clear(s.doubt)
		}
	}
	err := r.flushUntil(ctx)
	var lost error
	if s != nil {
		lost = s.untold()
	}
	if err != nil {
		r.log.Error().Err(err).Int("pending_players", len(r.pending)).Msg("flux final flush gave up")
		return errors.Join(fmt.Errorf("%w: %d players: %w", ErrFlushIncomplete, len(r.pending), err), lost)
	}
	return lost
}

// Close is Stop within RunnerConfig.CloseTimeout (DefaultCloseTimeout): it stops the
// background worker, makes the final flush (tried again until the deadline) and returns
// its error. A later Close or Stop
// returns the same error. Use Stop to give the final flush a deadline of your own.
func (r *Runner) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.CloseTimeout)
	defer cancel()
	return r.Stop(ctx)
}
