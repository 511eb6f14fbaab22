package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/workload/worldgen"
	"github.com/gamepersist/gamepersist/natsbridge"
	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"
)

// How players behave each tick: the chance to walk through an exit, else to act in place.
const (
	moveChance  = 0.05
	touchChance = 0.15
)

// Time bounds of the program's own steps (the libraries bound their phases themselves).
const (
	tickTimeout     = 10 * time.Second // one whole tick, finished even after a signal
	shutdownTimeout = 10 * time.Second // each shutdown step
	// deadLetterStream keeps the Bridge's dead letters.
	deadLetterStream = "MUDSIM_DEADLETTERS"
)

// sim is one running simulation: everything it opened, in the order it opened them.
type sim struct {
	cfg    Config
	log    zerolog.Logger
	origin string

	world   *worldgen.World
	rng     *rand.Rand
	moved   []int
	moves   []flux.Presence
	gameNow time.Time

	srv     *server.Server // embedded NATS, nil with cfg.NATSURL
	store   *backend
	rooms   *roomstore.Cached
	nc      *nats.Conn // the game server's connection
	bridge  *natsbridge.Bridge
	clients *clients
	runner  *flux.Runner

	ticks, tickErrors, skipped, events int64
	started                            time.Time
}

// open builds the world and every resource, in dependency order. On error it closes what it
// opened and returns the error.
func open(ctx context.Context, cfg Config) (s *sim, err error) {
	start, err := cfg.gameStart()
	if err != nil {
		return nil, err
	}
	s = &sim{cfg: cfg, log: cfg.Logger, origin: "mudsim-" + nuid.Next(), gameNow: start, started: time.Now()}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.shutdown())
		}
	}()
	rules := flux.DefaultRules()
	s.world = worldgen.New(worldgen.Config{Rooms: cfg.Rooms, Players: cfg.Players, Seed: cfg.Seed, Now: start})
	s.rng = worldgen.NewRand(cfg.Seed + 1)

	// The database first: a database that refuses, or a URL that does not parse, stops
	// the program before the NATS server starts.
	if s.store, err = openBackend(ctx, cfg, rules, s.world); err != nil {
		return s, err
	}
	natsURL := cfg.NATSURL
	if natsURL == "" {
		if s.srv, err = startNATS(); err != nil {
			return s, err
		}
		natsURL = s.srv.ClientURL()
		s.log.Info().Str("url", natsURL).Msg("embedded nats server started")
	}
	// Warm reads for the tick path: every room of the world fits.
	if s.rooms, err = roomstore.NewCached(s.store.rooms, roomstore.CacheConfig{
		MaxRooms: int64(max(2*cfg.Rooms, 1024)), Logger: s.log, MeterProvider: cfg.meterProvider,
	}); err != nil {
		return s, err
	}
	if s.nc, err = natsbridge.Connect(ctx, natsbridge.ConnectConfig{URLs: []string{natsURL}, Name: gameConn, Logger: connLogger(s.log, gameConn)}); err != nil {
		return s, err
	}
	// Dead letters count only once a stream stored them: keep them in one (memory is
	// enough for a simulation). A server without JetStream still runs the simulation;
	// its dead letters are then counted as lost after DeadLetterTimeout.
	js, err := jetstream.New(s.nc)
	if err != nil {
		return s, err
	}
	sctx, scancel := context.WithTimeout(ctx, shutdownTimeout)
	_, err = natsbridge.EnsureDeadLetterStream(sctx, js, natsbridge.DeadLetterStreamConfig{Name: deadLetterStream, Memory: true})
	scancel()
	if err != nil {
		s.log.Warn().Err(err).Msg("no dead-letter stream: dead letters will be counted as lost")
	}
	if s.bridge, err = natsbridge.New(s.nc, natsbridge.Config{
		Origin: s.origin, Logger: s.log, DeadLetterTimeout: shutdownTimeout / 2, MeterProvider: cfg.meterProvider,
	}); err != nil {
		return s, err
	}
	chat, err := natsbridge.Pattern("chat", "say", "room", natsbridge.WildcardToken)
	if err != nil {
		return s, err
	}
	if err = s.bridge.HandlePattern(chat, chatHandler(s.rooms, s.log), natsbridge.Name("chat")); err != nil {
		return s, err
	}
	// Make sure the server has the subscription before any client speaks.
	fctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
	defer cancel()
	if err = s.nc.FlushWithContext(fctx); err != nil {
		return s, fmt.Errorf("mudsim: nats flush: %w", err)
	}
	cnc, err := natsbridge.Connect(ctx, natsbridge.ConnectConfig{URLs: []string{natsURL}, Name: clientsConn, Logger: connLogger(s.log, clientsConn)})
	if err != nil {
		return s, err
	}
	s.clients = &clients{nc: cnc, rng: worldgen.NewRand(cfg.Seed + 2)}
	if s.runner, err = flux.NewRunner(s.store.players, s.rooms, flux.RunnerConfig{
		RunnerID: "mudsim", Rules: &rules, Logger: s.log, TickLength: cfg.GameStep, // one flux step per game step
		MeterProvider: cfg.meterProvider,
	}); err != nil {
		return s, err
	}
	return s, nil
}

// loop ticks now and then every cfg.Tick until ctx ends, cfg.Duration has passed or
// cfg.Ticks ticks have run. A tick
// that overruns the interval makes the ticker drop the ticks it missed (counted as skipped)
// instead of queueing them.
func (s *sim) loop(ctx context.Context) {
	ticker := time.NewTicker(s.cfg.Tick)
	defer ticker.Stop()
	var done <-chan time.Time
	if s.cfg.Duration > 0 {
		timer := time.NewTimer(s.cfg.Duration)
		defer timer.Stop()
		done = timer.C
	}
	for {
		s.tick(ctx)
		if s.cfg.Ticks > 0 && s.ticks >= s.cfg.Ticks {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-ticker.C:
		}
	}
}

// tick runs one game tick: the players wander (one UpdatePresence of the moves), the flux Runner
// ticks (one load, one cached room read, one apply), every change is published, the
// simulated clients chat, and one line is logged. A signal arriving meanwhile does not cut
// it short: it runs on ctx's values without its cancellation, within tickTimeout.
func (s *sim) tick(parent context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), tickTimeout)
	defer cancel()
	start := time.Now()
	s.ticks++
	if s.ticks > 1 {
		s.gameNow = s.gameNow.Add(s.cfg.GameStep)
	}
	var errs []error

	t0 := time.Now()
	s.moved = s.world.Wander(s.rng, s.gameNow, moveChance, touchChance, s.moved)
	s.moves = s.moves[:0]
	for _, i := range s.moved {
		p := &s.world.Players[i]
		s.moves = append(s.moves, flux.Presence{PlayerID: p.ID, RoomID: p.RoomID, LastActive: p.LastActive})
	}
	if _, err := s.store.players.UpdatePresence(ctx, s.moves); err != nil {
		errs = append(errs, err)
	}
	moves := time.Since(t0)

	rep, err := s.runner.Tick(ctx, s.gameNow)
	if err != nil {
		errs = append(errs, err)
	}

	t0 = time.Now()
	n, err := publishChanges(ctx, s.nc, s.origin, strconv.FormatInt(rep.Tick, 10), rep.Changes)
	s.events += int64(n)
	if err != nil {
		errs = append(errs, err)
	}
	events := time.Since(t0)

	t0 = time.Now()
	if err := s.clients.say(ctx, s.world, s.cfg.ChatPerTick); err != nil {
		errs = append(errs, err)
	}
	chat := time.Since(t0)

	total := time.Since(start)
	if total > s.cfg.Tick {
		s.skipped += int64(total / s.cfg.Tick)
	}
	ev := s.log.Info()
	if len(errs) > 0 {
		s.tickErrors++
		ev = s.log.Error().Err(errors.Join(errs...))
	}
	cache, chats := s.rooms.Stats(), s.bridge.Stats()
	ev.Int64("tick", s.ticks).Time("game_time", s.gameNow).
		Float64("total_ms", ms(total)).Float64("moves_ms", ms(moves)).Float64("load_ms", ms(rep.Load)).
		Float64("rooms_ms", ms(rep.Rooms)).Float64("eval_ms", ms(rep.Evaluate)).Float64("apply_ms", ms(rep.Apply)).
		Float64("events_ms", ms(events)).Float64("chat_ms", ms(chat)).
		Int("players", len(s.world.Players)).Int("active", rep.Counts.Active).Int("moved", len(s.moved)).
		Int("changes", rep.Counts.Changed).Int("statements", rep.Statements).
		Float64("cache_hit_ratio", round3(cache.HitRatio)).
		Int("pending_players", rep.PendingPlayers).
		Uint64("chat_sent", s.clients.sent).Uint64("chat_handled", chats.Handled).
		Msg("tick")
}

// ms is d in milliseconds to 0.001 (a microsecond), for log fields.
func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

// round3 rounds v to three decimals, for log fields (a ratio, milliseconds).
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// The names of the program's two NATS connections: the server's name for the client, and
// the "conn" field of every log line about it.
const (
	gameConn    = "mudsim"         // the game server's: events out, chat in through the Bridge
	clientsConn = "mudsim-clients" // the simulated players' clients
)

// connLogger is the logger of one NATS connection: every line carries the connection's
// name (conn), so the two connections' lines tell apart. natsbridge logs a clean close
// with an empty "error" field; that line is left out here and closeConn logs the close,
// with an error field only when there is an error.
func connLogger(log zerolog.Logger, name string) zerolog.Logger {
	return log.Hook(libraryCloseLine{}).With().Str("conn", name).Logger()
}

// libraryCloseLine drops natsbridge's "nats connection closed" line (see connLogger).
type libraryCloseLine struct{}

// Run discards the event of natsbridge's close line.
func (libraryCloseLine) Run(e *zerolog.Event, _ zerolog.Level, msg string) {
	if msg == "nats connection closed" {
		e.Discard()
	}
}

// closeConn closes nc, the connection called name, and logs it: info when it closed
// cleanly, a warning with an error field (redacted) only when it had an error.
func closeConn(nc *nats.Conn, log zerolog.Logger, name string) {
	nc.Close()
	if err := nc.LastError(); err != nil {
		log.Warn().Str("conn", name).Str("event", "close").Str("error", redactURL(err.Error())).Msg("nats connection closed")
		return
	}
	log.Info().Str("conn", name).Str("event", "close").Msg("nats connection closed")
}

// shutdown stops everything open started, in reverse order, each step within
// shutdownTimeout, and returns every error joined: the Runner's final flush first, then the
// clients' connection (flushed), the Bridge (drained: every chat line received is handled),
// the game's connection (flushed: every event is sent), the cache, the stores and pool, and
// the embedded NATS server. It is safe on a partly opened sim.
func (s *sim) shutdown() error {
	step := func(f func(ctx context.Context) error) error {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return f(ctx)
	}
	var errs []error
	if s.runner != nil {
		errs = append(errs, step(s.runner.Stop))
	}
	if s.clients != nil {
		errs = append(errs, step(s.clients.nc.FlushWithContext))
		closeConn(s.clients.nc, s.log, clientsConn)
	}
	if s.bridge != nil {
		errs = append(errs, step(s.bridge.Drain))
	}
	if s.nc != nil {
		errs = append(errs, step(s.nc.FlushWithContext))
		closeConn(s.nc, s.log, gameConn)
	}
	if s.rooms != nil {
		errs = append(errs, s.rooms.Close())
	}
	if s.store != nil {
		errs = append(errs, step(func(ctx context.Context) error { return s.store.close(ctx, s.log) }))
	}
	if s.srv != nil {
		stopNATS(s.srv)
	}
	return errors.Join(errs...)
}
