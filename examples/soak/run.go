package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/pgcount"
	"github.com/gamepersist/gamepersist/internal/workload/worldgen"
	"github.com/gamepersist/gamepersist/natsbridge"
	"github.com/gamepersist/gamepersist/roomstore"
)

// Bounds of the barrier before each minute's steps.
const (
	syncTimeout   = 1500 * time.Millisecond // one Sync of the barrier
	stepRetryFor  = 30 * time.Second        // how long a minute nobody could step is retried
	catchUpFor    = 15 * time.Second        // the final catch-up of every server
	eventsSettle  = 30 * time.Second        // how long the end waits for the durable events
	progressEvery = 3 * time.Second
)

// soak is one run: the environment, the game servers (current incarnation per index, nil
// while killed), the ones abandoned by a kill, the running faults and the measurements.
type soak struct {
	cfg   Config
	e     *env
	log   zerolog.Logger
	world *worldgen.World
	sched *schedule

	mu              sync.Mutex // guards servers (the trade publisher reads it)
	servers         []*gameServer
	gens            []int
	abandoned       []*gameServer
	reaped          []flux.RunnerStats // the final Stats of the reaped incarnations
	running         []fault
	replyLost       []replyLostProbe
	replyLostHits   int   // lost replies that did fail a background write
	replyLostBefore int64 // the target's BackgroundWriteFailures when its replies started to drop

	faultCounts      map[faultKind]int
	stalls           [][]time.Duration // per server index: the caller's Step durations
	staleness        []time.Duration   // per room rewrite and other server: until it read the new version
	writePhase       []time.Duration   // the barrier's first Sync (the previous minute's writes land)
	loadPhase        []time.Duration   // its second Sync (every server loads after them)
	staleReads       int               // reads that stayed stale longer than cacheTTL
	unreadable       int               // staleness waits ended by a failed read (room dropped, database unreachable)
	stepErrors       int               // Steps that returned an error
	unsynced         int               // server-minutes skipped because the barrier could not sync them
	syncStuck        int               // Syncs passed although stuck on writes in doubt (the flux fault, see syncServer)
	unstepped        int               // minutes no server could step
	roomWriteErr     int               // room rewrites the editor had to retry on another server
	sqlRewrites      int               // room rewrites the editor made in plain SQL (editInSQL)
	dlStored         uint64            // dead letters the Bridges saw stored (final, after Close)
	dlReportedLost   uint64            // dead letters the Bridges reported lost
	bridgeFailed     uint64            // messages the Bridges failed (each one dead letter)
	notCaughtUp      []string          // servers whose Sync never succeeded in the final catch-up
	faultsCutShort   int               // database faults ended early because no server could step
	bridgeOverflowed uint64            // messages the Bridges overflowed (each one dead letter unless dropped)
	bridgeDropped    uint64            // overflowed messages dropped by policy (no dead letter owed)
	minutes          int               // game minutes stepped (0 … minutes-1)
	gameWall         time.Duration     // wall time of the game loop
	gameTrips        int64             // the servers' database round trips during it
	heap             heapSampler
}

// server returns the live incarnation of server i, nil while it is killed.
func (r *soak) server(i int) *gameServer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.servers[i]
}

// setServer sets the live incarnation of server i (nil: killed).
func (r *soak) setServer(i int, s *gameServer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.servers[i] = s
}

// live returns the servers alive now, by index.
func (r *soak) live() []*gameServer {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*gameServer, 0, len(r.servers))
	for _, s := range r.servers {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// run runs one soak and returns its result. Everything it starts is closed before it
// returns, also on error.
func run(ctx context.Context, cfg Config, log zerolog.Logger) (res result, err error) {
	baseline := len(allStacks())
	t0 := time.Now()
	r := &soak{cfg: cfg, log: log, faultCounts: map[faultKind]int{}, stalls: make([][]time.Duration, cfg.Servers),
		servers: make([]*gameServer, cfg.Servers), gens: make([]int, cfg.Servers)}
	r.heap.sample()
	runID := strconv.FormatInt(time.Now().UnixNano()%1_000_000_000, 36)
	e := &env{dbURL: cfg.DatabaseURL, schema: "soak_" + runID, appName: "soak-" + runID + "-", events: newEvents(), chat: &chat{}, log: log, trips: &pgcount.StatementCounter{},
		libLog: log.Level(cfg.LibLogLevel)}
	r.e = e
	e.pcfg = flux.PostgresConfig{Schema: e.schema, ScopeColumn: "server"}
	if e.dbAddr, err = dbAddr(cfg.DatabaseURL); err != nil {
		return res, err
	}

	// The database: a direct pool (never faulted) for the inputs and the checks.
	if e.admin, err = openAdmin(ctx, cfg.DatabaseURL, e.appName+"admin"); err != nil {
		return res, err
	}
	schemaMade := false
	defer func() {
		err = errors.Join(err, r.closeAll())
		e.admin.Close()
		if schemaMade && !cfg.Keep {
			err = errors.Join(err, dropSchema(cfg.DatabaseURL, e.schema))
		}
		res.Minutes = max(res.Minutes, r.minutes)
		res.BackendsAfterClose, err = backendsAfterClose(cfg.DatabaseURL, e.appName, err)
		res.GoroutinesAfterClose, res.ProxyGoroutinesLeaked = goroutinesSettled(baseline, log)
		res.HeapPeakMiB = float64(r.heap.peak) / (1 << 20)
	}()
	if _, err = e.admin.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{e.schema}.Sanitize()); err != nil {
		return res, fmt.Errorf("soak: create schema: %s", redactErr(err))
	}
	schemaMade = true
	r.world = newWorld(cfg)
	if err = r.seedDatabase(ctx); err != nil {
		return res, err
	}

	// NATS: the cluster, the streams, then the servers.
	if e.nats, err = startNATSCluster(natsNodes); err != nil {
		return res, err
	}
	if err = createStreams(ctx, e.nats.clientAddr(0)); err != nil {
		return res, err
	}
	for i := range cfg.Servers {
		s, err := startServer(ctx, e, i, 0, minuteTime(0))
		if err != nil {
			return res, err
		}
		r.setServer(i, s)
	}

	r.log.Info().Str("schema", e.schema).Dur("took", time.Since(t0).Round(time.Millisecond)).Int("players", len(r.world.Players)).
		Int("rooms", len(r.world.Rooms)).Msg("soak set up: database seeded, NATS cluster and servers up")
	r.sched = newSchedule(cfg.Seed, cfg.Servers, r.world, cfg.NoFaults)
	pubCtx, cancelPub := context.WithCancel(ctx)
	pub := startPublisher(pubCtx, e.events, r.pickJetStream)
	loopErr := r.loop(ctx, pub)
	pub.stop()
	cancelPub()
	if loopErr != nil && ctx.Err() == nil {
		return res, loopErr
	}
	// A signal ends the game early; the catch-up and the checks still run (a second
	// signal kills the program).
	post := context.WithoutCancel(ctx)
	r.log.Info().Int("minutes", r.minutes).Msg("game over: ending the faults, catching up")
	t0 = time.Now()
	if err = r.catchUp(post); err != nil {
		return res, err
	}
	r.log.Info().Dur("took", time.Since(t0).Round(time.Millisecond)).Msg("caught up: closing, checking")
	return r.collect(post)
}

// dbAddr is the host:port of the database (the fault proxies' upstream); the servers'
// connection strings are rewritten to their proxies by faultproxy.RewriteURL, which takes
// a URL or a keyword/value string.
func dbAddr(raw string) (string, error) {
	cfg, err := pgxpool.ParseConfig(raw)
	if err != nil {
		return "", fmt.Errorf("%w: database URL %s does not parse", ErrInvalidConfig, redactURL(raw))
	}
	return net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))), nil
}

// openAdmin opens the direct pool.
func openAdmin(ctx context.Context, raw, app string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: database URL %s does not parse", ErrInvalidConfig, redactURL(raw))
	}
	pc.ConnConfig.RuntimeParams["application_name"] = app
	pc.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("soak: database: %s", redactErr(err))
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("soak: database %s does not answer: %s", redactURL(raw), redactErr(err))
	}
	return pool, nil
}

// seedDatabase creates the tables in the soak's schema and writes the world.
func (r *soak) seedDatabase(ctx context.Context) error {
	// NotifyChannel: Migrate installs the change trigger the servers' listeners follow.
	rooms, err := roomstore.NewPostgres(r.e.admin, roomstore.PostgresConfig{Schema: r.e.schema, NotifyChannel: r.e.schema})
	if err != nil {
		return fmt.Errorf("soak: rooms: %w", err)
	}
	defer func() { _ = rooms.Close() }()
	if err := rooms.Migrate(ctx); err != nil {
		return fmt.Errorf("soak: migrate rooms: %w", err)
	}
	players, err := flux.NewPostgresPlayers(r.e.admin, r.e.pcfg)
	if err != nil {
		return fmt.Errorf("soak: players: %w", err)
	}
	if err := players.Migrate(ctx); err != nil {
		return fmt.Errorf("soak: migrate players: %w", err)
	}
	if _, err := r.e.admin.Exec(ctx, `ALTER TABLE `+pgx.Identifier{r.e.schema, "flux_players"}.Sanitize()+
		` ADD COLUMN server text NOT NULL DEFAULT ''`); err != nil {
		return fmt.Errorf("soak: scope column: %w", err)
	}
	if err := r.world.CopyPlayers(ctx, r.e.admin, r.e.pcfg); err != nil {
		return fmt.Errorf("soak: copy players: %w", err)
	}
	if err := r.world.PutRooms(ctx, rooms); err != nil {
		return fmt.Errorf("soak: put rooms: %w", err)
	}
	return nil
}

// createStreams creates, on a connection of its own to addr, the durable trade stream
// and the dead-letter stream, both replicated on the three nodes so a node's death loses
// nothing.
func createStreams(ctx context.Context, addr string) error {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	nc, err := nats.Connect("nats://"+addr, nats.Name("soak-setup"))
	if err != nil {
		return fmt.Errorf("soak: nats setup: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("soak: jetstream: %w", err)
	}
	if _, err := js.CreateStream(cctx, jetstream.StreamConfig{Name: tradesStream, Subjects: []string{tradeSubjectRoot + ".>"},
		Replicas: natsNodes, Duplicates: 2 * time.Minute}); err != nil {
		return fmt.Errorf("soak: trades stream: %w", err)
	}
	if _, err := natsbridge.EnsureDeadLetterStream(cctx, js, natsbridge.DeadLetterStreamConfig{Name: deadLetterStream, Replicas: natsNodes}); err != nil {
		return fmt.Errorf("soak: dead-letter stream: %w", err)
	}
	return nil
}

// pickJetStream returns the JetStream context of the server that publishes t: its own
// when alive, else the next one alive; nil when none is.
func (r *soak) pickJetStream(t trade) jetstream.JetStream {
	if s := r.liveFor(t.Server); s != nil {
		return s.js
	}
	return nil
}
