package flux

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Errors of the non-blocking mode (Start, Step). Match them with errors.Is.
var (
	// ErrNotStarted is returned by Step before Start.
	ErrNotStarted = errors.New("flux: runner not started (call Start before Step)")
	// ErrStarted is returned by Tick and Run after Start: a started Runner ticks with Step.
	ErrStarted = errors.New("flux: runner started: use Step, not Tick")
	// ErrNoState is returned by a Step that has no player state yet: the first background
	// load has not finished (or has failed). The tick is skipped, nothing is written. When
	// a load failed, the error wraps the last load's error too.
	ErrNoState = errors.New("flux: no player state loaded yet, tick skipped")
	// ErrChangesLost is returned by Sync, Stop and Close when this Runner dropped, since
	// the last time it was returned, changes that Step had reported and that never reached
	// the store (the error says how many player-minutes; RunnerStats.LostTicks counts
	// them, and each is logged). It does not happen when this Runner's writes all go
	// through, nor when another Runner wrote the same minutes from the same state.
	ErrChangesLost = errors.New("flux: reported changes lost")
	// ErrLagging is returned by a Step that found RunnerConfig.MaxLag batches of writes
	// handed over since the background writer last wrote successfully (the database is
	// down or too slow): the tick is skipped rather than queue more, so memory stays
	// bounded. The error wraps the last background write's error (else the last load's)
	// when there is one.
	ErrLagging = errors.New("flux: background writer lagging, tick skipped")
)

// errStartedTwice is a second Start's error: it says so once and matches ErrStarted.
var errStartedTwice error = startedTwiceError{}

type startedTwiceError struct{}

func (startedTwiceError) Error() string        { return "flux: runner already started (call Start once)" }
func (startedTwiceError) Is(target error) bool { return target == ErrStarted }

// snapshot is a load prepared by the background worker for Step: the players (with the
// pending writes overlaid), their rooms, their carry-overs and an index by id.
type snapshot struct {
	players []Player
	index   map[string]int32
	infos   map[string]RoomInfo
	ledger  Ledger
	stored  []TickState // per player, the state the load found, before any overlay
	seq     uint64      // the last Step batch merged into pending before the overlay
	loaded  time.Time   // when the load was sent
	epoch   uint64      // the number of snapshot loads begun, this one included
}

// stepBatch is the writes of one Step, in the order Step made them.
type stepBatch struct {
	seq    uint64
	at     time.Time // when Step handed it over
	writes []PlayerWrite
}

// stepper is the non-blocking mode's state, created by Start.
type stepper struct {
	// Shared between Step and the worker, under mu.
	mu      sync.Mutex
	mailbox []stepBatch            // Step's batches the worker has not merged yet
	seq     uint64                 // seq of the last batch appended
	fresh   *snapshot              // the latest prepared snapshot, not yet taken by Step
	nextNow time.Time              // the game time the next load is for
	handled uint64                 // seq of the last batch the worker has written (or failed to)
	started uint64                 // worker cycles started
	cycles  uint64                 // the number (in started) of the last cycle completed
	busy    bool                   // the worker is in a cycle
	reload  bool                   // Start or Sync asked for a load even with nothing to write
	lastErr error                  // the error of the worker's last write, nil when it succeeded
	loadErr error                  // the error of the worker's last load, nil when it succeeded
	written uint64                 // seq of the last batch the worker wrote without error (lag: seq − written)
	left    int                    // players whose writes the worker still holds after its last write
	cycled  chan struct{}          // closed and replaced at the end of each worker cycle
	doubt   map[string]PlayerWrite // left by the worker when it returns, for Stop
	wake    chan struct{}
	done    chan struct{}      // closed when the worker returns
	spare   chan []PlayerWrite // batch slices the worker has merged, for Step to reuse
	games   []gameWrite        // the game's lucidity writes not yet in an adopted load
	lost    int64              // player-minutes Step reported and adopt found dropped
	told    int64              // the part of lost that Sync, Stop or Close returned

	// gate orders snapshot loads (writers) against Runner.AddLucidity (readers), so that
	// a load sees a game write entirely or not at all; loads counts the loads begun.
	gate  sync.RWMutex
	loads atomic.Uint64

	// Owned by Step (under the Runner's sem).
	cur    *snapshot
	recent []stepBatch // batches a snapshot may not include yet
	low    []int32     // players whose lucidity prepare lowered for this tick
	lowBy  []int
	// The chains hold, per player, this Runner's own writes of it, one per tick, that a
	// load has not yet shown stored (at most maxOwnChain): what adopt rebases onto
	// another Runner's write of the same tick, or counts as lost. rebased are the rebased
	// writes the next batch hands over first.
	chainAt    []*ownChain          // by index in cur.players: the player's chain (nil: none)
	chainSpare []*ownChain          // the previous chainAt's array, reused
	away       map[string]*ownChain // chains of players the current load does not hold
	rebased    []PlayerWrite
}

// ownChain is one player's chain of own writes (see stepper.chainAt); held by pointer so that
// Step and adopt change it in place, without a map write per player.
type ownChain struct{ writes []PlayerWrite }

// maxOwnChain bounds the per-player chain of writes kept for rebasing: a write that falls
// out of it can no longer be rebased (only when this Runner's writes have not reached the
// store for that many ticks).
const maxOwnChain = 64

// unknownBase marks the first write of a chain whose older writes were dropped: whether it
// continues the stored state is unknown, so it is neither rebased nor counted lost.
const unknownBase = -1

// Start switches the Runner to its non-blocking mode and starts its one background worker
// goroutine, which writes what Step hands it and loads the players (and reads their rooms)
// for the next Step; Stop and Close stop it and wait for it. From then on, Step replaces
// Tick and Run. The first load is sent at once for time now (the game time of the first
// Step). Start after Stop returns ErrClosed, a second Start an error matching ErrStarted.
func (r *Runner) Start(now time.Time) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if err := checkGameTime(now, r.cfg.TickLength); err != nil {
		return err
	}
	r.startMu.Lock()
	defer r.startMu.Unlock()
	if r.step != nil {
		return errStartedTwice
	}
	s := &stepper{nextNow: now, wake: make(chan struct{}, 1), done: make(chan struct{}), cycled: make(chan struct{}),
		spare: make(chan []PlayerWrite, 4), away: make(map[string]*ownChain)}
	r.step = s
	s.reload = true
	r.workers.Go(func() { r.work(s) })
	s.signal()
	return nil
}

func (s *stepper) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Step does one flux tick at now without waiting for the database: it evaluates the state
// of the latest background load (at most one tick old) plus this Runner's own writes and
// the game's AddLucidity writes since, and hands this tick's writes to the background
// worker. It costs the evaluation plus a pass over the players and makes no round trip.
// Exactly once holds as for Tick. While the database is down it keeps evaluating from
// memory; it returns ErrNoState before the first load and ErrLagging (the tick skipped)
// past RunnerConfig.MaxLag unwritten batches. The report's Changes are valid until the
// next Step; Step must not be called concurrently with itself. The package documentation
// says what the game sees and when.
func (r *Runner) Step(now time.Time) (TickReport, error) {
	if r.closed.Load() {
		return TickReport{}, ErrClosed
	}
	s := r.step
	if s == nil {
		return TickReport{}, ErrNotStarted
	}
	if err := checkGameTime(now, r.cfg.TickLength); err != nil {
		return TickReport{}, err
	}
	select {
	case r.sem <- struct{}{}:
	default:
		return TickReport{}, errors.New("flux: Step called while another Step or Stop runs")
	}
	defer r.release()
	start := time.Now()
	rep, err := r.stepLocked(s, now)
	rep.Total = time.Since(start)
	r.stats.recordTick(rep, err, false)
	r.metrics.recordTick(&rep)
	return rep, err
}

func (r *Runner) stepLocked(s *stepper, now time.Time) (TickReport, error) {
	tick := TickNumber(now, r.cfg.TickLength)
	rep := TickReport{Tick: tick, Now: now}

	s.mu.Lock()
	fresh := s.fresh
	s.fresh = nil
	lag := s.seq - s.written
	handled, writeErr, loadErr := s.handled, s.lastErr, s.loadErr
	s.mu.Unlock()
	if fresh != nil {
		r.adopt(s, fresh, tick)
	}
	s.dropHandled(handled)
	if s.cur == nil {
		return rep, withCause(ErrNoState, loadErr)
	}
	if lag >= uint64(r.cfg.MaxLag) {
		s.signal() // the worker tries its held writes again
		if writeErr == nil {
			writeErr = loadErr
		}
		return rep, withCause(ErrLagging, writeErr)
	}
	cur := s.cur
	t0 := time.Now()
	r.overlayGameWrites(s, cur)
	rep.AlreadyTicked = r.prepareStep(s, cur.players, tick)
	res := r.eval.Evaluate(cur.players, cur.infos, now, cur.ledger)
	for i, k := range s.low { // back to the stored lucidity
		cur.players[k].Lucidity += s.lowBy[i]
	}
	var spare []PlayerWrite
	select {
	case spare = <-s.spare:
	default:
	}
	batch := r.tickWrites(cur.players, cur.infos, cur.ledger, res, tick, now, append(spare[:0], s.rebased...))
	s.remember(batch[len(s.rebased):], r.wrote) // the rebased writes' chains are set already
	clear(s.rebased)
	s.rebased = s.rebased[:0]
	rep.Evaluate = time.Since(t0)
	rep.Evaluated = true
	rep.Counts = res.Counts
	rep.Changes = r.changes

	s.mu.Lock()
	s.seq++
	b := stepBatch{seq: s.seq, at: time.Now(), writes: batch}
	s.mailbox = append(s.mailbox, b)
	s.nextNow = now.Add(r.cfg.TickLength)
	s.mu.Unlock()
	s.recent = append(s.recent, b)
	s.signal()
	return rep, nil
}

// adopt makes fresh the current state and replays onto it the batches it may not include
// (those handed over after the worker overlaid its pending writes).
func (r *Runner) adopt(s *stepper, fresh *snapshot, tick int64) {
	old := s.cur
	s.cur = fresh
	kept := s.recent[:0]
	for _, b := range s.recent {
		if b.seq <= fresh.seq {
			continue
		}
		kept = append(kept, b)
		for _, w := range b.writes {
			k, ok := fresh.index[w.PlayerID]
			if !ok {
				continue
			}
			p := &fresh.players[k]
			if p.Flux.Tick != w.FromTick || p.Flux.Writer != w.FromWriter {
				continue
			}
			p.Lucidity = clampLucidity(p.Lucidity+w.Delta, r.rules.MinLucidity, r.rules.MaxLucidity)
			p.Flux = w.State
			fresh.ledger[p.ID] = w.State.Carry
		}
	}
	clear(s.recent[len(kept):])
	s.recent = kept
	r.rebase(s, old, fresh, tick-maxOwnChain)
}

// remember appends each write of a batch to its player's chain of own writes (a write
// that does not continue the chain starts a new one).
// at[j] is the index in cur.players of batch[j]'s player.
func (s *stepper) remember(batch []PlayerWrite, at []int32) {
	for j, w := range batch {
		oc := s.chainAt[at[j]]
		if oc == nil {
			oc = &ownChain{}
			s.chainAt[at[j]] = oc
		}
		c := oc.writes
		if n := len(c); n > 0 && !continues(c[n-1], w) {
			c = c[:0]
		}
		if len(c) == maxOwnChain { // the oldest dropped: where the chain starts is unknown
			c = append(c[:0], c[1:]...)
			c[0].FromTick = unknownBase
		}
		oc.writes = append(c, w)
	}
}

// placeChains moves the chains of own writes from old's player order to fresh's
// (s.chainAt), and those of players fresh does not hold to s.away, from where they return
// when a load holds their player again; a chain away whose last write is older than
// before is dropped. A player at the same place in both loads costs no map look-up.
func (r *Runner) placeChains(s *stepper, old, fresh *snapshot, before int64) {
	n := len(fresh.players)
	next := slices.Grow(s.chainSpare[:0], n)[:n]
	clear(next)
	for j, oc := range s.chainAt {
		if oc == nil {
			continue
		}
		id := old.players[j].ID
		k := j
		if k >= n || fresh.players[k].ID != id {
			var ok bool
			if k32, ok32 := fresh.index[id]; ok32 {
				k, ok = int(k32), true
			}
			if !ok {
				if len(oc.writes) > 0 {
					s.away[id] = oc
				}
				continue
			}
		}
		next[k] = oc
	}
	for id, oc := range s.away {
		if k, ok := fresh.index[id]; ok {
			next[k] = oc
			delete(s.away, id)
		} else if oc.writes[len(oc.writes)-1].State.Tick < before {
			delete(s.away, id)
		}
	}
	clear(s.chainAt)
	s.chainSpare, s.chainAt = s.chainAt, next
}

// rebase compares each player's chain of own writes with the state the load found
// stored (fresh.stored, before any overlay). Writes at or before the stored tick are done
// with. The rest is kept when it continues the stored state (written, or on its way).
// When it continues this Runner's write of the stored tick and another Runner stored that
// tick with the same carry-over and change — the same minute from the same state — it
// is rebased onto that write: applied to fresh and handed over again (the
// compare-and-set refused or will refuse it as it was). A rest that can be neither is
// lost: counted and logged, and returned by the next Sync, Stop or Close
// (ErrChangesLost). Players fresh does not hold are not ticked by this Runner now: their
// chains wait until a load returns them (a player gone inactive right after a refused
// write is rebased when it comes back), or are dropped once their last write is older
// than before.
func (r *Runner) rebase(s *stepper, old, fresh *snapshot, before int64) {
	r.placeChains(s, old, fresh, before)
	var lost int64
	for k, oc := range s.chainAt {
		if oc == nil {
			continue
		}
		c := oc.writes
		id := fresh.players[k].ID
		st := fresh.stored[k]
		i := 0
		for i < len(c) && c[i].State.Tick <= st.Tick {
			i++
		}
		rest := c[i:]
		if len(rest) == 0 { // all stored: the chain is kept empty, for the next Step to reuse
			oc.writes = c[:0]
			continue
		}
		if rest[0].FromTick == unknownBase || (rest[0].FromTick == st.Tick && rest[0].FromWriter == st.Writer) { // on its way
			if i > 0 {
				oc.writes = append(c[:0], rest...)
			}
			continue
		}
		if i == 0 || c[i-1].State.Tick != st.Tick || c[i-1].State.Carry != st.Carry || c[i-1].State.LastDelta != st.LastDelta {
			n := 0
			for _, w := range rest {
				n += w.Ticks
			}
			lost += int64(n)
			r.log.Warn().Str("player_id", id).Int64("stored_tick", st.Tick).Int("ticks", n).
				Msg("flux reported changes dropped: the store moved on from another state")
			oc.writes = c[:0]
			continue
		}
		p := &fresh.players[k]
		rest[0].FromTick, rest[0].FromWriter = st.Tick, st.Writer
		w := rest[0]
		for _, x := range rest[1:] {
			w = sum(w, x)
		}
		p.Lucidity = clampLucidity(p.Lucidity+w.Delta, r.rules.MinLucidity, r.rules.MaxLucidity)
		p.Flux = w.State
		fresh.ledger[id] = w.State.Carry
		s.rebased = append(s.rebased, w)
		oc.writes = append(c[:0], rest...)
		r.stats.rebased(int64(w.Ticks))
	}
	if lost > 0 {
		r.stats.lostTicks(lost)
		s.mu.Lock()
		s.lost += lost
		s.mu.Unlock()
	}
}

// adoptLast is Stop's adopt of the last snapshot no Step took (the worker has returned):
// the writes it rebases join pending for the final flush, and what it finds lost is
// counted.
func (r *Runner) adoptLast(s *stepper) {
	s.mu.Lock()
	fresh := s.fresh
	s.fresh = nil
	s.mu.Unlock()
	if fresh != nil {
		r.adopt(s, fresh, math.MinInt64)
	}
	for _, w := range s.rebased {
		r.merge(w)
	}
	s.rebased = nil
}

// untold returns ErrChangesLost with the player-minutes lost since it last returned it,
// or nil.
func (s *stepper) untold() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.lost - s.told
	if n == 0 {
		return nil
	}
	s.told = s.lost
	return fmt.Errorf("%w: %d player-minutes Step reported were dropped unapplied", ErrChangesLost, n)
}

// prepareStep marks the players already ticked at tick or later (r.skip) and lowers the
// lucidity of those ticked at tick itself to where it stood at the tick's start, recording
// it in s.low so that Step restores it after the evaluation.
func (r *Runner) prepareStep(s *stepper, players []Player, tick int64) int {
	r.skip = slices.Grow(r.skip[:0], len(players))[:len(players)]
	s.low, s.lowBy = s.low[:0], s.lowBy[:0]
	n := 0
	for i := range players {
		p := &players[i]
		done := p.Flux.Tick >= tick
		r.skip[i] = done
		if !done {
			continue
		}
		n++
		if p.Flux.Tick == tick && p.Flux.LastDelta != 0 {
			was := p.Lucidity
			p.Lucidity = clampLucidity(p.Lucidity-p.Flux.LastDelta, r.rules.MinLucidity, r.rules.MaxLucidity)
			s.low, s.lowBy = append(s.low, int32(i)), append(s.lowBy, was-p.Lucidity)
		}
	}
	return n
}

// work is the background worker of the non-blocking mode: each time Step hands it a batch
// (or once at Start) it merges the batches into pending, writes pending, then loads the
// players for the next Step and publishes them. A write whose outcome is unknown (any
// error: the reply may have been lost after the commit) moves to doubt: those players are
// not written again until a load tells whether it landed. It returns when Stop ends
// r.life; Stop then merges what is left and makes the final flush itself.
func (r *Runner) work(s *stepper) {
	defer close(s.done)
	doubt := make(map[string]PlayerWrite)
	for {
		select {
		case <-r.life.Done():
			s.doubt = doubt // Stop settles them
			return
		case <-s.wake:
		}
		s.mu.Lock()
		batches := s.mailbox
		s.mailbox = nil
		seq, now := s.seq, s.nextNow
		idle := len(batches) == 0 && !s.reload && len(r.pending) == 0 && len(doubt) == 0
		s.busy, s.reload = !idle, false
		if !idle {
			s.started++
		}
		cycle := s.started
		s.mu.Unlock()
		if idle { // a wake-up with nothing to do (a second signal): no I/O
			continue
		}
		oldest := time.Time{}
		for _, b := range batches {
			if oldest.IsZero() {
				oldest = b.at
			}
			for _, w := range b.writes {
				r.merge(w)
			}
		}
		for _, b := range batches { // merged: Step may reuse them (a snapshot's seq covers them)
			select {
			case s.spare <- b.writes:
			default:
			}
		}
		ctx, cancel := r.bound(context.Background())
		if len(doubt) > 0 { // learn what the failed writes did before writing again
			if players, err := r.loadPlayers(ctx, now); err == nil {
				r.resolveDoubt(doubt, players)
			}
		}
		rep := TickReport{}
		err := r.flush(ctx, &rep, doubt)
		r.stats.worked(rep, err, oldest, r.heldPlayers(doubt))
		r.metrics.addStatements(rep.Statements)
		if err != nil && r.life.Err() == nil {
			r.log.Warn().Err(err).Int("pending_players", r.heldPlayers(doubt)).Msg("flux background write failed")
		}
		snap, lerr := r.loadSnapshot(ctx, now, seq, doubt)
		cancel()
		if lerr != nil && r.life.Err() == nil {
			r.stats.loadFailed()
			r.log.Warn().Err(lerr).Msg("flux background load failed")
		}
		s.mu.Lock()
		if lerr == nil {
			s.fresh = snap
		}
		s.handled, s.lastErr, s.loadErr, s.left = seq, err, lerr, r.heldPlayers(doubt)
		if err == nil && len(doubt) == 0 { // every batch up to seq is written (or refused)
			s.written = seq
		}
		s.cycles = cycle
		s.busy = false
		close(s.cycled)
		s.cycled = make(chan struct{})
		s.mu.Unlock()
	}
}

// Sync waits until the background worker has written every batch Step handed it before
// the call, and then loaded once more, within ctx. It returns nil when nothing is left to
// write, else the last write's error (wrapping ErrApplyFailed; the writes stay held and
// are retried with the next Step). For tests, save points and a zone's hand-over; a game
// loop never needs it. It returns ErrNotStarted before Start.
func (r *Runner) Sync(ctx context.Context) error {
	r.startMu.Lock()
	s := r.step
	r.startMu.Unlock()
	if s == nil {
		return ErrNotStarted
	}
	s.mu.Lock()
	target, from := s.seq, s.started // wait for a cycle that starts after this call
	s.reload = true                  // the cycle this waits for loads even with nothing to write
	s.mu.Unlock()
	s.signal()
	for {
		s.mu.Lock()
		handled, lastErr, left, cycled, cycles := s.handled, s.lastErr, s.left, s.cycled, s.cycles
		s.mu.Unlock()
		done := handled >= target && cycles > from
		if done && (lastErr != nil || left == 0) {
			return errors.Join(lastErr, s.untold())
		}
		if done { // held writes (in doubt) wait for another cycle
			s.mu.Lock()
			s.reload = true
			from = s.started
			s.mu.Unlock()
			s.signal()
		}
		select {
		case <-cycled:
		case <-s.done:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("flux: sync: %w", ctx.Err())
		}
	}
}

// resolveDoubt settles the writes in doubt of the loaded players: one that did not land is
// sent again, with whatever continues it summed in; one that landed leaves what continues
// it to be sent; one whose tick another Runner wrote first is dropped and what continues
// it is rebased on that Runner's write (the same tick from the same stored state gives the
// same result); one overtaken at another tick is dropped with what continues it. The
// writes of players the load did not return are sent again as they are (see mergeDoubt).
func (r *Runner) resolveDoubt(doubt map[string]PlayerWrite, players []Player) {
	for i := range players {
		p := &players[i]
		d, ok := doubt[p.ID]
		if !ok {
			continue
		}
		delete(doubt, p.ID)
		e, has := r.after(p.ID)
		switch {
		case p.Flux.Tick == d.FromTick && p.Flux.Writer == d.FromWriter: // not applied
			r.pending[p.ID] = d
			if has {
				r.merge(e)
			}
		case p.Flux.Tick == d.State.Tick && p.Flux.Writer == d.State.Writer: // applied
			if has {
				r.pending[p.ID] = e
			}
		case p.Flux.Tick == d.State.Tick: // another Runner wrote the same tick: continue from its write
			if has && e.FromTick == d.State.Tick && e.FromWriter == d.State.Writer {
				e.FromWriter = p.Flux.Writer
				r.pending[p.ID] = e
			}
		default: // another Runner wrote the player at another tick: start again from the load
		}
	}
	// Players the load did not return (gone inactive, or out of scope) will not be loaded
	// again to settle their doubt: send their writes again as they are. The compare-and-set
	// makes that safe — a write that did land is refused.
	r.mergeDoubt(doubt)
	clear(doubt)
}

// mergeDoubt puts the writes still in doubt back into pending, to be sent again as they
// are: one that did land is then refused, harmlessly. What continues a write in doubt is
// not summed into it (the compare-and-set would refuse the whole sum when the first part
// landed, losing the rest): it waits in r.behind and is sent in a statement after it.
func (r *Runner) mergeDoubt(doubt map[string]PlayerWrite) {
	for id, d := range doubt {
		e, has := r.after(id)
		r.pending[id] = d
		switch {
		case has && continues(d, e):
			r.behind[id] = e
		case has:
			r.pending[id] = e // computed from a newer state than d: d is superseded
		}
	}
}

// after takes what waits to be written after the write in doubt of player id: the write
// held behind it, with the pending one summed in when it continues it, or the pending one.
func (r *Runner) after(id string) (PlayerWrite, bool) {
	e, has := r.pending[id]
	delete(r.pending, id)
	b, held := r.behind[id]
	delete(r.behind, id)
	switch {
	case held && has && continues(b, e):
		return sum(b, e), true
	case held && !has:
		return b, true
	}
	return e, has
}

// continues reports whether w was computed from the state e leaves.
func continues(e, w PlayerWrite) bool {
	return e.State.Tick == w.FromTick && e.State.Writer == w.FromWriter
}

// sum returns e followed by w (which continues it) as one write.
func sum(e, w PlayerWrite) PlayerWrite {
	e.State = w.State
	e.Delta += w.Delta
	e.Ticks += w.Ticks
	e.NewLucidity = w.NewLucidity
	e.RoomID = w.RoomID
	e.Flux += w.Flux
	return e
}

// loadPlayers loads the active players for a Step at now (in a new slice).
func (r *Runner) loadPlayers(ctx context.Context, now time.Time) ([]Player, error) {
	q := ActiveQueryFor(r.rules, now)
	q.Scope = r.cfg.Scope
	lctx, cancel := context.WithTimeout(ctx, r.cfg.LoadTimeout)
	defer cancel()
	return r.players.LoadActive(lctx, q, nil)
}

// merge adds one write to pending: a write that continues the pending one of its player
// (its FromTick is that one's tick) is summed into it; any other replaces it.
func (r *Runner) merge(w PlayerWrite) {
	if e, ok := r.pending[w.PlayerID]; ok && continues(e, w) {
		w = sum(e, w)
	}
	r.pending[w.PlayerID] = w
}

// loadSnapshot loads the players for a Step at now, settles the writes in doubt and
// overlays pending (as Tick does), reads their rooms and builds the index and the ledger:
// everything off Step's goroutine.
func (r *Runner) loadSnapshot(ctx context.Context, now time.Time, seq uint64, doubt map[string]PlayerWrite) (*snapshot, error) {
	t0 := time.Now()
	s := r.step
	s.gate.Lock()
	epoch := s.loads.Add(1)
	players, err := r.loadPlayers(ctx, now)
	s.gate.Unlock()
	if err != nil {
		return nil, err
	}
	stored := make([]TickState, len(players))
	for i := range players {
		stored[i] = players[i].Flux
	}
	r.resolveDoubt(doubt, players)
	r.reconcile(players)
	snap := &snapshot{players: players, stored: stored, index: make(map[string]int32, len(players)),
		infos: make(map[string]RoomInfo), ledger: make(Ledger, len(players)), seq: seq, loaded: t0, epoch: epoch}
	for i, p := range players {
		snap.index[p.ID] = int32(i)
		snap.ledger[p.ID] = p.Flux.Carry
	}
	ids := activeRoomIDs(r.rules, players, now, nil, make(map[string]struct{}))
	valid := ids[:0]
	for _, id := range ids {
		if validRoomID(id) {
			valid = append(valid, id)
		}
	}
	if len(valid) > 0 {
		rctx, cancel := context.WithTimeout(ctx, r.cfg.RoomsTimeout)
		err := r.readRoomsInto(rctx, valid, snap.infos)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("flux: read rooms: %w", err)
		}
	}
	r.stats.loaded(time.Since(t0))
	return snap, nil
}
