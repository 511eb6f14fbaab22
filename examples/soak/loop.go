package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

// loop runs game minutes until the duration is over: each minute ends the faults whose
// time is up and starts the scheduled ones, applies the minute's inputs behind a barrier,
// steps every server that synced, and strikes the after-step faults.
func (r *soak) loop(ctx context.Context, pub *publisher) error {
	start := time.Now()
	last := start
	trips0 := r.e.trips.RoundTrips()
	defer func() {
		r.gameWall = time.Since(start)
		r.gameTrips = r.e.trips.RoundTrips() - trips0
	}()
	inputs, err := flux.NewPostgresPlayers(r.e.admin, r.e.pcfg)
	if err != nil {
		return fmt.Errorf("soak: input store: %w", err)
	}
	for k := 0; time.Since(start) < r.cfg.Duration && ctx.Err() == nil; k++ {
		t0 := time.Now()
		in := r.sched.nextMinute()
		if err := r.endFaults(ctx, k, false); err != nil {
			return err
		}
		for _, f := range in.Faults {
			if err := r.beginFault(ctx, f); err != nil {
				return err
			}
		}
		if err := r.applyInputs(ctx, inputs, in); err != nil {
			return err
		}
		for _, t := range in.Trades {
			select {
			case pub.in <- t:
			case <-ctx.Done():
				return fmt.Errorf("soak: %w", ctx.Err())
			}
		}
		r.say(ctx, in.Chat)
		if err := r.stepMinute(ctx, k, in.Now); err != nil {
			return err
		}
		if err := r.afterSteps(ctx, k); err != nil {
			return err
		}
		r.minutes = k + 1
		r.heap.sample()
		if !r.cfg.Quiet && time.Since(last) >= progressEvery {
			last = time.Now()
			r.progress(start)
		}
		if rest := r.cfg.Minute - time.Since(t0); rest > 0 {
			select {
			case <-time.After(rest):
			case <-ctx.Done():
			}
		}
	}
	return nil
}

// applyInputs writes the minute's presence through the direct (never faulted) store and
// the editor's room rewrites through a live server's cache or, every other minute, in
// plain SQL (editInSQL), then waits until every other
// live server's cache serves the new version of each rewritten room (or no longer holds
// it): after that, no flux load of this minute can read a stale room.
func (r *soak) applyInputs(ctx context.Context, store *flux.PostgresPlayers, in minuteInputs) error {
	batch := in.Presence
	if id := r.cfg.hooks.dropPresence; id != "" {
		batch = make([]flux.Presence, 0, len(in.Presence))
		for _, p := range in.Presence {
			if p.PlayerID != id {
				batch = append(batch, p)
			}
		}
	}
	if err := retry(ctx, 30*time.Second, func(ctx context.Context) error {
		_, err := store.UpdatePresence(ctx, batch)
		return err
	}); err != nil {
		return fmt.Errorf("soak: presence at minute %d: %w", in.Minute, err)
	}
	for _, room := range in.Rooms {
		if editInSQL(in.Minute) {
			version, err := r.rewriteRoomInSQL(ctx, room)
			if err != nil {
				return fmt.Errorf("soak: minute %d: %w", in.Minute, err)
			}
			r.awaitFresh(ctx, nil, room.ID, version, sqlStaleBound) // every server's cache: none wrote it
			continue
		}
		var writer *gameServer
		var version int64
		err := retry(ctx, 30*time.Second, func(ctx context.Context) error {
			live := r.live()
			if len(live) == 0 {
				return errors.New("no live server")
			}
			var errs []error
			for j := range live {
				s := live[(in.Minute+j)%len(live)]
				wctx, cancel := context.WithTimeout(ctx, runnerTimeout)
				v, err := s.cached.PutRoomVersion(wctx, room)
				cancel()
				if err == nil {
					writer, version = s, v
					return nil
				}
				r.roomWriteErr++
				errs = append(errs, err)
			}
			// No server reaches the database: as in stepMinute, the database fault is cut
			// short rather than the game stopped.
			return errors.Join(append(errs, r.endDBFaultsEarly(ctx, in.Minute))...)
		})
		if err != nil {
			return fmt.Errorf("soak: room rewrite at minute %d: %w", in.Minute, err)
		}
		r.awaitFresh(ctx, writer, room.ID, version, cacheTTL)
	}
	return nil
}

// awaitFresh waits until every live server but the writer reads version (or later) of
// room id through its cache, or cannot read it from its cache at all (it was dropped);
// each wait is one staleness measurement. A server still serving an older version after
// bound is a stale read: counted, then invalidated so the flux check stays about flux.
func (r *soak) awaitFresh(ctx context.Context, writer *gameServer, id string, version int64, bound time.Duration) {
	t0 := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, s := range r.live() {
		if s == writer {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				gctx, cancel := context.WithTimeout(ctx, time.Second)
				got, err := s.cached.GetRoom(gctx, id)
				cancel()
				waited := time.Since(t0)
				if err != nil || got.Version >= version || waited > bound || ctx.Err() != nil {
					mu.Lock()
					if err != nil {
						// Not in the cache (dropped), and the database unreachable from this
						// server now: no stale read, and no staleness to measure either.
						r.unreadable++
					} else {
						r.staleness = append(r.staleness, waited)
					}
					if err == nil && got.Version < version {
						r.staleReads++
						r.log.Warn().Str("server", s.name).Str("room", id).Int64("version", got.Version).Int64("want", version).
							Dur("waited", waited).Msg("stale room read beyond the bound")
						s.cached.Invalidate(id)
					}
					mu.Unlock()
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
}

// stepMinute makes the barrier and steps minute k on every server that passed it (with
// Config.Free, every live server, with no barrier). When
// none did it tries again (the minute is not lost for want of a server) for up to
// stepRetryFor, then counts the minute as unstepped.
func (r *soak) stepMinute(ctx context.Context, k int, now time.Time) error {
	if k > 0 && k == r.cfg.hooks.skipMinute {
		return nil // the test hook: nobody steps this minute
	}
	if r.cfg.Free { // no barrier: every live server steps the state it has
		if err := r.beforeSteps(k); err != nil {
			return err
		}
		r.step(r.live(), now)
		return nil
	}
	deadline := time.Now().Add(stepRetryFor)
	for {
		ready := r.barrier(ctx)
		if len(ready) > 0 {
			if err := r.beforeSteps(k); err != nil {
				return err
			}
			r.step(ready, now)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("soak: %w", ctx.Err())
		}
		// No server reaches the database (a lone server, cut): game time stands still
		// until one does, so the database fault is cut short rather than the minute lost.
		if err := r.endDBFaultsEarly(ctx, k); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			r.unstepped++
			r.log.Error().Int("minute", k).Msg("no server could step this minute")
			return nil
		}
	}
}

// barrier syncs every live server twice, concurrently: the first Sync lets the writes of
// the previous minute land everywhere; the second makes each server load after all of
// them, and after this minute's inputs. A server whose Sync fails or times out, or whose
// load failed, does not step this minute (it would evaluate a state older than the
// inputs, a legitimate difference): counted as unsynced.
func (r *soak) barrier(ctx context.Context) []*gameServer {
	live := r.live()
	t0 := time.Now()
	ok, stuck1 := syncAll(ctx, live, nil)
	t1 := time.Now()
	loadFailures := make([]int64, len(live))
	for i, s := range live {
		loadFailures[i] = s.runner.Stats().BackgroundLoadFailures
	}
	ok, stuck2 := syncAll(ctx, live, ok)
	r.syncStuck += stuck1 + stuck2
	r.writePhase = append(r.writePhase, t1.Sub(t0))
	r.loadPhase = append(r.loadPhase, time.Since(t1))
	var ready []*gameServer
	for i, s := range live {
		if ok[i] && s.runner.Stats().BackgroundLoadFailures == loadFailures[i] {
			ready = append(ready, s)
		} else {
			r.unsynced++
		}
	}
	return ready
}

// syncAll syncs every server whose only[i] is true (all when only is nil), at once (see
// syncServer), and says which succeeded; stuck counts those that passed only because
// their Sync was stuck on writes in doubt.
func syncAll(ctx context.Context, servers []*gameServer, only []bool) (ok []bool, stuck int) {
	ok = make([]bool, len(servers))
	stuckAt := make([]bool, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		if only != nil && !only[i] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok[i], stuckAt[i] = syncServer(ctx, s)
		}()
	}
	wg.Wait()
	for _, b := range stuckAt {
		if b {
			stuck++
		}
	}
	return ok, stuck
}

// syncServer runs s.runner.Sync within syncTimeout. It also passes a server whose Sync
// does not return although its background worker has completed two cycles since the
// call (so one started after it) with no failed write and no failed load: that is the
// flux fault the soak found (README_NOTES_soak.md: a write in doubt for a player no
// longer active is never settled, so Sync never returns nil); the server's state is as
// fresh as a successful Sync would make it, so it may step, and stuck says so to count it.
func syncServer(ctx context.Context, s *gameServer) (ok, stuck bool) {
	st0 := s.runner.Stats()
	sctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.runner.Sync(sctx) }()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case err := <-done:
			return err == nil, false
		case <-poll.C:
			st := s.runner.Stats()
			if st.BackgroundLoads >= st0.BackgroundLoads+2 && st.BackgroundLoadFailures == st0.BackgroundLoadFailures &&
				st.BackgroundWriteFailures == st0.BackgroundWriteFailures {
				cancel()
				if err := <-done; err == nil {
					return true, false
				}
				return true, true
			}
		}
	}
}

// step steps every ready server at now, at once, and records each Step's duration as
// its caller sees it.
func (r *soak) step(ready []*gameServer, now time.Time) {
	durs := make([]time.Duration, len(ready))
	errs := make([]error, len(ready))
	var wg sync.WaitGroup
	for i, s := range ready {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			_, errs[i] = s.runner.Step(now)
			durs[i] = time.Since(t0)
		}()
	}
	wg.Wait()
	for i, s := range ready {
		r.stalls[s.idx] = append(r.stalls[s.idx], durs[i])
		if errs[i] != nil {
			r.stepErrors++
			r.log.Warn().Err(errs[i]).Str("server", s.name).Msg("step failed")
		}
	}
}

// retry calls f until it succeeds, ctx ends or limit passes, with a short pause.
func retry(ctx context.Context, limit time.Duration, f func(context.Context) error) error {
	deadline := time.Now().Add(limit)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := f(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

// catchUp ends every fault (restarting what was killed) and syncs every server until it
// has written everything it holds: the state the checks read.
func (r *soak) catchUp(ctx context.Context) error {
	if err := r.endFaults(ctx, r.minutes, true); err != nil {
		return err
	}
	for _, s := range r.live() {
		deadline := time.Now().Add(catchUpFor)
		for {
			ok, stuck := syncServer(ctx, s)
			if ok && !stuck {
				break
			}
			if stuck || time.Now().After(deadline) || ctx.Err() != nil {
				// Stuck on writes in doubt (the flux fault) or never synced: reported. Stop's
				// final flush, before the checks read the database, still sends what it holds.
				r.notCaughtUp = append(r.notCaughtUp, s.name)
				st := s.runner.Stats()
				r.log.Error().Bool("stuck_on_doubt", stuck).Str("server", s.name).Int("pending_players", st.PendingPlayers).
					Msg("server did not catch up")
				break
			}
		}
	}
	deadline := time.Now().Add(eventsSettle)
	for r.e.events.outstanding() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
