// Package flux computes and persists the passive lucidity flux tick of FLUX.md.
//
// # The pure part
//
// Rules holds every number of the flux (DefaultRules gives FLUX.md's defaults). The pure
// functions — Rules.Tier, Rules.IsActive, Rules.Period, Rules.BaseFlux, ActiveRoomIDs and
// Evaluator.Evaluate — import no I/O package, read no clock and draw no random number: the
// time of a tick is an argument, and the carry-over state (each player's fractional
// residual and adaptation counter) is a Ledger the caller owns and passes in. The same
// inputs give the same Result whatever the order of map iteration; companion tiers are
// read as they stood at the start of the tick, so the order of evaluation does not matter
// either. An Evaluator reuses its scratch space, so a steady-state tick makes no
// allocation per player; it belongs to one goroutine at a time.
//
// One tick with the pure part alone:
//
//	ids := flux.ActiveRoomIDs(rules, players, now, ids[:0])
//	rooms := ... // one RoomStore.GetRooms(ctx, ids) call, copied into map[string]flux.RoomInfo
//	res := ev.Evaluate(players, rooms, now, ledger)
//	// apply res.Changes in one statement; ledger now holds the new residuals
//
// # The runner
//
// The rest of the package does that I/O for a game server: a player-state store interface
// (load the active players in one query, apply one tick's changes in one idempotent
// statement keyed by tick id) with an in-memory and a PostgreSQL implementation, and a
// Runner the caller drives. Runner.Tick(ctx, now) does one tick — one query for the active
// players, one read of their rooms from a roomstore.RoomStore (VisitRooms when it
// implements roomstore.RoomVisitor, as every store of package roomstore does, else
// GetRooms; served from the cache in steady state), Evaluate, one write — and reports
// per-phase durations and counts. Runner.Run blocks in the caller's goroutine and ticks on an interval, skipping and counting ticks
// that an overrunning tick missed. Changes whose write failed are kept and merged into the
// next attempt, so each change is applied exactly once; Stop(ctx) makes a final flush
// within ctx's deadline, Close() within RunnerConfig.CloseTimeout. A crash loses at most the fractional residuals (under one lucidity point per
// player), never an applied change.
package flux
