// Package flux computes and persists the passive lucidity flux tick of FLUX.md.
//
// # The pure part
//
// [Rules] holds every number of the flux ([DefaultRules] gives FLUX.md's defaults). The pure
// functions — [Rules.Tier], [Rules.IsActive], [Rules.Period], [Rules.BaseFlux], [ActiveRoomIDs]
// and [Evaluator.Evaluate] — import no I/O package, read no clock and draw no random number: the
// time of a tick is an argument, and the carry-over state (each player's fractional
// residual and adaptation counter) is a Ledger the caller owns and passes in. The same
// inputs give the same Result whatever the order of map iteration; companion tiers are
// read as they stood at the start of the tick, so the order of evaluation does not matter
// either. An Evaluator reuses its scratch space, so a steady-state tick makes no
// allocation per player; it belongs to one goroutine at a time.
//
// Evaluate's details: every active player (Rules.IsActive) whose room is in rooms (keyed by
// room id) is evaluated; active players whose room is absent are skipped and counted
// (Counts.SkippedMissingRoom) and their ledger entries left alone; only active players
// count as companions. Player ids are expected to be unique (a duplicate is evaluated twice
// against one ledger entry). A residual that is NaN or infinite is treated as 0; lucidity
// outside [MinLucidity, MaxLucidity] is clamped into it, which counts as a change. Ledger
// entries of players not evaluated stay (Ledger.Prune drops them). The evaluator caches
// base flux by room and recomputes it only for a room whose RoomInfo changed.
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
// (load the active players in one query, apply a batch of writes in one statement) with an
// in-memory and a PostgreSQL implementation, and a Runner the caller drives.
// Runner.Tick(ctx, now) does one tick — one query for the active players, one read of
// their rooms from a roomstore.RoomStore (VisitRooms when it implements
// roomstore.RoomVisitor, else GetRooms; served from the cache in steady state), Evaluate,
// one write — and reports per-phase durations and counts. Runner.Run blocks in the
// caller's goroutine and ticks on an interval, skipping and counting ticks that an
// overrunning tick missed. Stop(ctx) and Close() make the final flush.
//
// # The non-blocking mode
//
// Tick makes the game loop wait for two database round trips. After Start, Step replaces
// it: the Runner's one background goroutine (stopped by Stop and Close) writes what each
// Step hands it and then loads the players and reads their rooms for the next one, so the
// game loop waits for the evaluation only. The state a Step evaluates is the latest load
// (made after the previous Step's writes) plus this Runner's own writes since. What the
// game sees: a lucidity change made through Runner.AddLucidity is in the very next Step
// (it is overlaid on the in-memory state until a load that includes it arrives; it waits
// for a load in flight so that no load sees half of it). Moves, log-ins and lucidity
// written straight to the database, or through another server, reach Step with the next
// background load: the Step after next while the database answers within a tick, as soon
// as it answers otherwise. While the
// database is down Step keeps evaluating from memory and the worker keeps the writes,
// summed per player, until it answers; once MaxLag Steps have handed over batches since
// the worker last wrote successfully, Step skips its tick (ErrLagging, wrapping the
// database's error) until a write succeeds, so memory grows with the players, not with
// the outage. Before the first load, Step returns ErrNoState (wrapping the load's error
// when it failed). A write whose reply was lost is held until a load says whether it landed;
// when no load returns its player (gone inactive) it is sent again alone, and what
// followed it goes in a statement after it, so the compare-and-set never refuses a later
// minute summed onto one that landed. Sync waits for the worker (tests, save points).
//
// The fence holds in this mode too: no minute is ever applied twice. Each Runner keeps, per
// player, the chain of its own per-minute writes that no load has yet shown stored (at
// most 64 minutes). When a load shows that another Runner stored one of those minutes with
// the same carry-over and change — the same minute from the same state — the later
// minutes are rebased onto that write and sent again (also when the player comes back
// after going inactive), instead of dropped. A minute re-run after a restart does not
// advance the carry-over of the players it finds already ticked. What a Runner still has
// to drop — its later minutes, once another Runner stored a minute it computed from
// another state — is counted (RunnerStats.LostTicks), logged, and returned by the next
// Sync, Stop or Close (ErrChangesLost).
//
// Measured (TestOracleStepFreely: 300 players, 120 minutes, players moving and acting
// about one minute in ten, Sync before those minutes and at random ~3 % of Steps, no
// other barrier): one stepping Runner — idle, with the CPU saturated, closed and replaced
// mid-run, with ~20 % of its writes failing (reset, or reply lost after the commit) —
// ends equal to one blocking Runner in most runs, but not all: on a loaded 2-core machine
// about one run in two of some variant ends with tens of players off and the minutes
// counted lost (RunnerStats.LostTicks, returned as ErrChangesLost) — an open bug. Two or three
// Runners stepping the same players freely are not yet exact: in 20 runs of 4 such
// variants (idle, busy CPU, write faults, a restart), 11 ended equal and 9 did not —
// usually 1–4 of 300 players off, at worst 50, never a minute applied twice; the Runners
// counted up to 198 lost player-minutes, but not every difference. The cause is not
// pinned down (rooms where players already ticked past the minute by a Runner ahead
// stand with players not yet ticked were seen: their companions' tiers are then read
// after the minute). For several servers, Tick, Sync before each Step, or scopes that do
// not overlap are the exact choices. A load that predates moves or log-ins is evaluated as
// it is: a Runner that never syncs sees them a tick or two late.
//
//	_ = runner.Start(gameTime)
//	for each loop tick: rep, err := runner.Step(gameTime) // no I/O on this goroutine
//	defer runner.Close()                                   // stops the worker, final flush
//
// # Exactly once, with any number of servers
//
// A tick has a number: TickNumber(now, RunnerConfig.TickLength), one per game minute by
// default, the same on every server that ticks the same game minute. Each player's store
// row keeps, beside its lucidity, a TickState: the number of the last tick applied to it,
// the carry-over that tick left (fractional residual, room, consecutive evaluations) and
// the change it made. A Runner loads it with the player, continues from it, and writes the
// player back with a compare-and-set on that tick number (PlayerWrite.FromTick). So:
//
//   - two or three servers with default configuration ticking the same minutes, in any
//     interleaving, give each player exactly one step per minute: the first write wins,
//     the others are refused as conflicts, and a server that loads a player already
//     ticked this minute does not write it again (it still counts it as a companion, with
//     its lucidity as it stood at the start of the minute);
//   - a restarted server re-running a minute, or a write retried after a lost reply,
//     applies nothing twice;
//   - a player moving from one server to another keeps its carry-over: it lives in the
//     database, not in a server's memory.
//
// Servers that each tick only the players they host set RunnerConfig.Scope (and the
// store's scope column, written by UpdatePresence): a scoped Runner loads its own players
// and, as companions only, the players of other servers standing in the same rooms. That
// divides the work instead of repeating it. What it gives up: while one server's writes
// fail, the other servers see its players as last written, and a server that dies with
// writes it could not apply loses those minutes for its players (nobody else ticks them);
// unscoped Runners cover for each other.
//
// # Failures, outages and shutdown
//
// A write that fails stays pending, summed per player (one PlayerWrite however many ticks
// it covers), and the next tick evaluates from the database's state plus the pending
// writes, so the game keeps its flux through a write outage and memory grows with players,
// not with ticks. When the database answers again the backlog goes out with the next
// tick, in statements of at most RunnerConfig.MaxWriteBatch players. When loading fails,
// the tick evaluates nothing (that game minute passes without flux). Stop cancels a
// running tick's database call, then flushes within its ctx (Close: CloseTimeout, longer
// than ApplyTimeout), trying again with backoff while the flush fails, so a database
// back before the deadline loses nothing; when it cannot, it returns ErrFlushIncomplete
// saying how many players' writes are left. A crash loses the pending writes, never an
// applied one.
//
// # Living with the game's own writes
//
// Writes add deltas, so the game's own lucidity changes are kept. PostgresPlayers locks
// the rows it writes in player-id order (a sorted SELECT … FOR UPDATE before each
// UPDATE), so Apply and UpdatePresence cannot deadlock with each other nor with a game
// statement that does the same:
//
//	WITH locked AS MATERIALIZED (
//	  SELECT id FROM players WHERE id = ANY($1) ORDER BY id FOR UPDATE)
//	UPDATE players p SET … FROM … WHERE p.id IN (SELECT id FROM locked) …
//
// With Audit on, the log row's foreign key to the players (a game's own log usually has
// one) would lock the players' rows FOR KEY SHARE in no particular order; Apply takes those
// locks itself first, in id order, so the rule holds with audit too. The audit row and
// the bookkeeping columns record what the database applied after clamping; a write the
// clamp cancels touches no lucidity row and logs nothing.
//
// A deadlock or serialization failure that reaches PostgresPlayers anyway is retried within
// the caller's deadline (Retryable says which errors those are; PostgresPlayers.Stats
// counts the retries).
package flux
