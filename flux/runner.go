package flux

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/rs/zerolog"
)

// Errors of the Runner. Match them with errors.Is.
var (
	// ErrClosed is returned by Tick and Run after Stop or Close.
	ErrClosed = errors.New("flux: runner closed")
	// ErrApplyFailed wraps the store's error when a tick's changes could not be applied;
	// they are kept pending and retried by the next Tick, Stop or Close.
	ErrApplyFailed = errors.New("flux: apply failed, changes kept pending")
	// ErrTooManyPending is returned by a Tick that only retried the apply because
	// RunnerConfig.MaxPendingTicks ticks are pending.
	ErrTooManyPending = errors.New("flux: too many pending ticks, evaluation skipped")
)

// TickReport says what one Tick did.
type TickReport struct {
	// TickID is the id under which this tick's changes are applied.
	TickID string
	// Now is the tick's time.
	Now time.Time
	// Evaluated is true when the tick got as far as the evaluation (and updated the
	// ledger); false when loading players or rooms failed or too much was pending.
	Evaluated bool
	// Counts are the evaluation's counts (players seen, active, evaluated, changed, rooms
	// needed and missing, players skipped in missing rooms).
	Counts Counts
	// InvalidRoomIDs counts active players' room ids that no RoomStore accepts (empty, …);
	// they are not read and their players are skipped as in a missing room.
	InvalidRoomIDs int
	// Changes are this tick's changes, owned by the Runner and valid until its next Tick
	// (for publishing events). They are applied when ApplyErr is nil.
	Changes []Change
	// Per-phase durations and the total.
	Load, Rooms, Evaluate, Apply, Total time.Duration
	// Statements is the number of player-store round trips (one load, at most one
	// apply); RoomReads the number of room reads: one GetRooms call, or one VisitRooms
	// call when the RoomStore implements roomstore.RoomVisitor (served from cache in
	// steady state when the RoomStore is a roomstore.Cached).
	Statements int
	RoomReads  int
	// Applied is what the apply statement did (ticks and players written).
	Applied ApplyResult
	// ApplyErr is the apply's error, if any (the tick's changes are then pending).
	ApplyErr error
	// CommittedFound counts pending ticks the load found already applied (a retry whose
	// reply was lost); they are dropped from pending without being sent again.
	CommittedFound int
	// PendingTicks and PendingChanges are what is left to apply after this tick.
	PendingTicks   int
	PendingChanges int
}

// Runner does flux ticks for a caller that drives it: Tick does one, Run ticks on an
// interval in the caller's goroutine. A Runner starts no goroutine. It owns an Evaluator,
// the ledger and the changes that could not be applied yet (pending), which it merges
// into the next apply (one statement) and overlays on the loaded lucidity so that the next
// evaluation starts from the values including them. Tick, Run, Stop, Close and Stats are
// safe to call from different goroutines; ticks never overlap. Stop or Close it at
// shutdown: that is the final flush of what is pending.
type Runner struct {
	players PlayerStore
	rooms   roomstore.RoomStore
	visitor roomstore.RoomVisitor // rooms, when it offers VisitRooms; else nil
	cfg     RunnerConfig
	rules   Rules
	eval    *Evaluator
	log     zerolog.Logger
	prefix  string

	sem      chan struct{} // one slot, held while ticking or flushing
	closed   atomic.Bool
	stopped  chan struct{} // closed by the first Stop, so a waiting Run returns
	stopOnce sync.Once

	// Owned by the holder of sem.
	seq     uint64
	ledger  Ledger
	buf     []Player
	ids     []string
	seen    map[string]struct{} // the set of ids, reused
	infos   map[string]RoomInfo
	addInfo func(roomstore.Room) // puts RoomInfoOf a room into infos; made once
	pending []TickChanges
	spare   [][]Change
	overlay map[string]int
	pendIDs []string

	stats runnerStats
}

// NewRunner returns a Runner reading players from players and rooms from rooms (neither is
// closed by the Runner). Invalid config returns an error wrapping ErrInvalidConfig. It draws
// a random nonce for its tick ids and does no I/O.
func NewRunner(players PlayerStore, rooms roomstore.RoomStore, cfg RunnerConfig) (*Runner, error) {
	if players == nil || rooms == nil {
		return nil, fmt.Errorf("%w: nil player or room store", ErrInvalidConfig)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	eval, err := NewEvaluator(*cfg.Rules)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	var nonce [6]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("flux: runner nonce: %w", err)
	}
	r := &Runner{
		players: players, rooms: rooms, cfg: cfg, rules: *cfg.Rules, eval: eval,
		log:     cfg.Logger.With().Str("component", "flux.runner").Str("runner_id", cfg.RunnerID).Logger(),
		prefix:  cfg.RunnerID + ":" + hex.EncodeToString(nonce[:]) + ":",
		sem:     make(chan struct{}, 1),
		stopped: make(chan struct{}),
		ledger:  cfg.Ledger,
		seen:    make(map[string]struct{}),
		infos:   make(map[string]RoomInfo),
		overlay: make(map[string]int),
		stats:   newRunnerStats(),
	}
	r.visitor, _ = rooms.(roomstore.RoomVisitor)
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

// Tick does one flux tick at now: load the active players (one query, which also tells
// which pending ticks are already applied), overlay the pending deltas, read their rooms
// (one GetRooms, or one VisitRooms when the RoomStore implements roomstore.RoomVisitor),
// evaluate, and apply this tick's changes together with any pending ones (one statement).
// It returns the report and, when a phase failed, an error: loading failures leave
// everything as it was; an apply failure (ErrApplyFailed) keeps the changes pending for the
// next Tick, Stop or Close. It waits for a running Tick (or Stop) to finish.
func (r *Runner) Tick(ctx context.Context, now time.Time) (TickReport, error) {
	if r.closed.Load() {
		return TickReport{}, ErrClosed
	}
	if err := r.acquire(ctx); err != nil {
		return TickReport{}, err
	}
	defer r.release()
	if r.closed.Load() {
		return TickReport{}, ErrClosed
	}
	start := time.Now()
	rep, err := r.tick(ctx, now)
	rep.Total = time.Since(start)
	rep.PendingTicks, rep.PendingChanges = len(r.pending), countChanges(r.pending)
	r.stats.record(rep, err)
	if err != nil {
		r.log.Warn().Err(err).Str("tick_id", rep.TickID).Int("pending_ticks", rep.PendingTicks).
			Int("pending_changes", rep.PendingChanges).Msg("flux tick failed")
	}
	return rep, err
}

func (r *Runner) tick(ctx context.Context, now time.Time) (TickReport, error) {
	r.seq++
	rep := TickReport{TickID: r.prefix + strconv.FormatUint(r.seq, 10), Now: now}

	if len(r.pending) >= r.cfg.MaxPendingTicks {
		if err := r.flush(ctx, &rep); err != nil {
			return rep, errors.Join(ErrTooManyPending, err)
		}
		return rep, ErrTooManyPending
	}

	// Load (one query), learning which pending ticks were applied after all.
	t0 := time.Now()
	q := ActiveQueryFor(r.rules, now)
	r.pendIDs = r.pendIDs[:0]
	for _, p := range r.pending {
		r.pendIDs = append(r.pendIDs, p.TickID)
	}
	q.PendingTicks = r.pendIDs
	lctx, cancel := context.WithTimeout(ctx, r.cfg.LoadTimeout)
	loaded, err := r.players.LoadActive(lctx, q, r.buf)
	cancel()
	rep.Statements++
	rep.Load = time.Since(t0)
	if err != nil {
		return rep, err
	}
	r.buf = loaded.Players
	rep.CommittedFound = r.dropCommitted(loaded.CommittedTicks)
	r.overlayPending(loaded.Players)

	// Rooms (one GetRooms or VisitRooms call).
	t0 = time.Now()
	r.ids = activeRoomIDs(r.rules, loaded.Players, now, r.ids[:0], r.seen)
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

	// Evaluate (pure).
	t0 = time.Now()
	res := r.eval.Evaluate(loaded.Players, r.infos, now, r.ledger)
	rep.Evaluate = time.Since(t0)
	rep.Evaluated = true
	rep.Counts = res.Counts
	rep.Changes = res.Changes
	if len(res.Changes) > 0 {
		var cp []Change
		if n := len(r.spare); n > 0 {
			cp, r.spare = r.spare[n-1][:0], r.spare[:n-1]
		}
		cp = append(cp, res.Changes...)
		r.pending = append(r.pending, TickChanges{TickID: rep.TickID, Changes: cp})
	}

	// Apply (one statement for this tick and everything pending).
	return rep, r.flush(ctx, &rep)
}

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

// flush applies every pending tick in one statement and clears pending on success.
func (r *Runner) flush(ctx context.Context, rep *TickReport) error {
	if len(r.pending) == 0 {
		return nil
	}
	t0 := time.Now()
	actx, cancel := context.WithTimeout(ctx, r.cfg.ApplyTimeout)
	res, err := r.players.Apply(actx, r.pending)
	cancel()
	rep.Statements++
	rep.Apply = time.Since(t0)
	if err != nil {
		rep.ApplyErr = err
		return fmt.Errorf("%w: %w", ErrApplyFailed, err)
	}
	rep.Applied = res
	for i := range r.pending {
		r.spare = append(r.spare, r.pending[i].Changes)
		r.pending[i] = TickChanges{}
	}
	r.pending = r.pending[:0]
	return nil
}

// dropCommitted removes the given tick ids from pending and returns how many it removed.
func (r *Runner) dropCommitted(ids []string) int {
	if len(ids) == 0 {
		return 0
	}
	done := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		done[id] = struct{}{}
	}
	kept := r.pending[:0]
	n := 0
	for _, p := range r.pending {
		if _, ok := done[p.TickID]; ok {
			r.spare = append(r.spare, p.Changes)
			n++
			continue
		}
		kept = append(kept, p)
	}
	clear(r.pending[len(kept):])
	r.pending = kept
	return n
}

// overlayPending adds the pending deltas to the loaded lucidity, summed per player and
// clamped once, exactly as the stores apply them.
func (r *Runner) overlayPending(players []Player) {
	if len(r.pending) == 0 {
		return
	}
	clear(r.overlay)
	for _, t := range r.pending {
		for _, c := range t.Changes {
			r.overlay[c.PlayerID] += c.NewLucidity - c.OldLucidity
		}
	}
	for i := range players {
		if d := r.overlay[players[i].ID]; d != 0 {
			players[i].Lucidity = clampLucidity(players[i].Lucidity+d, r.rules.MinLucidity, r.rules.MaxLucidity)
		}
	}
}

// Run ticks every interval in the caller's goroutine until ctx is done, then returns nil,
// or until Stop or Close is called, then returns ErrClosed (at once when it is waiting for
// the next interval, after the running tick otherwise). Tick errors are logged and counted in Stats, not
// returned. A tick that overruns the interval does not pile ticks up: the ticks missed
// meanwhile are skipped and counted (Stats().SkippedTicks), and the next tick runs at the
// next interval boundary. The time of each tick is RunnerConfig.Now() or the ticker's.
func (r *Runner) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("%w: Run interval %v must be positive", ErrInvalidConfig, interval)
	}
	if r.closed.Load() {
		return ErrClosed
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.stopped:
			return ErrClosed
		case at := <-t.C:
			if r.cfg.Now != nil {
				at = r.cfg.Now()
			}
			start := time.Now()
			if _, err := r.Tick(ctx, at); errors.Is(err, ErrClosed) {
				return err
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

// Stop makes a final flush of the pending changes within ctx (and ApplyTimeout) and
// returns its error; from the moment it is called, Tick and Run return ErrClosed. It waits
// for a running Tick, but never past ctx's deadline (it then returns ctx's error, wrapped).
// Calling Stop again retries a flush that failed; once nothing is pending it returns nil,
// so Stop is idempotent. It does not close the player or room store. It costs at most one
// apply statement.
func (r *Runner) Stop(ctx context.Context) error {
	r.closed.Store(true)
	r.stopOnce.Do(func() { close(r.stopped) })
	if err := r.acquire(ctx); err != nil {
		return err
	}
	defer r.release()
	var rep TickReport
	err := r.flush(ctx, &rep)
	r.stats.setPending(len(r.pending), countChanges(r.pending))
	if err != nil {
		r.log.Error().Err(err).Int("pending_ticks", len(r.pending)).Msg("flux final flush failed")
	}
	return err
}

// Close is Stop within RunnerConfig.CloseTimeout (DefaultCloseTimeout): the final flush of
// the pending changes, whose error it returns. It is idempotent: a later call retries a
// flush that failed and returns nil once nothing is pending. Use Stop to give the final
// flush a deadline of your own.
func (r *Runner) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.CloseTimeout)
	defer cancel()
	return r.Stop(ctx)
}

// Ledger returns a copy of the carry-over state (to persist at shutdown). It waits for a
// running Tick and costs a copy of the map.
func (r *Runner) Ledger(ctx context.Context) (Ledger, error) {
	if err := r.acquire(ctx); err != nil {
		return nil, err
	}
	defer r.release()
	return r.ledger.Clone(), nil
}
