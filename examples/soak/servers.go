package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/faultproxy"
	"github.com/gamepersist/gamepersist/internal/testkit/pgcount"
	"github.com/gamepersist/gamepersist/natsbridge"
	"github.com/gamepersist/gamepersist/natsbridge/roomsync"
	"github.com/gamepersist/gamepersist/roomstore"
)

// Settings every game server shares.
const (
	cacheTTL          = 10 * time.Second // the room cache's TTL: the documented bound on a stale room read
	runnerTimeout     = 2 * time.Second  // the Runner's load, rooms and apply timeouts
	ackWait           = 3 * time.Second  // the durable consumer's redelivery wait
	invalidateSubject = "soak.rooms.invalidate"
	tradeSubjectRoot  = "soak.trade"
	tradesStream      = "SOAK_TRADES"
	deadLetterStream  = "SOAK_DEADLETTERS"
	tradesConsumer    = "soak-trades"
)

// env is what every game server is built from: the database, its schema, the NATS
// cluster, the logger and the shared event recorder.
type env struct {
	dbURL   string
	dbAddr  string // host:port of the database, the fault proxies' upstream
	schema  string
	appName string // prefix of every application_name the soak uses
	pcfg    flux.PostgresConfig
	nats    *natsCluster
	admin   *pgxpool.Pool             // direct, never faulted: inputs, checks
	trips   *pgcount.StatementCounter // round trips of every game server's pool
	events  *events
	chat    *chat
	log     zerolog.Logger // the soak's own lines
	libLog  zerolog.Logger // what the library's values log (-lib-log-level)
}

// gameServer is one incarnation of a game server: its own pool behind its own database
// fault proxy, its own NATS connection behind one fault proxy per cluster node (its own
// node first), and on them a Cached room store with a RoomInvalidator and a ChangeListener, a flux Runner in
// the non-blocking mode and a Bridge with the durable trade handler.
type gameServer struct {
	idx  int
	name string // application_name and RunnerID: unique per incarnation

	dbProxy     *faultproxy.Proxy
	natsProxies []*faultproxy.Proxy
	pool        *pgxpool.Pool
	nc          *nats.Conn
	js          jetstream.JetStream
	rooms       *roomstore.Postgres
	cached      *roomstore.Cached
	listener    *roomstore.ChangeListener // follows SQL edits of the rooms (the change trigger)
	listenDone  chan struct{}             // closed when the listener's Run returned
	inv         *roomsync.RoomInvalidator
	runner      *flux.Runner
	bridge      *natsbridge.Bridge

	// dead is set when the server is killed: its handler then does nothing, as a
	// crashed process would not, and its leftovers log nothing more.
	dead atomic.Bool
	log  zerolog.Logger // e.libLog, silenced once dead
}

// startServer builds incarnation gen of game server idx and starts its Runner at now.
// On error everything built so far is closed.
func startServer(ctx context.Context, e *env, idx, gen int, now time.Time) (s *gameServer, err error) {
	s = &gameServer{idx: idx, name: e.appName + "srv" + strconv.Itoa(idx) + "-" + strconv.Itoa(gen)}
	s.log = e.libLog.Hook(zerolog.HookFunc(func(ev *zerolog.Event, _ zerolog.Level, _ string) {
		if s.dead.Load() {
			ev.Discard()
		}
	}))
	defer func() {
		if err != nil {
			err = errors.Join(err, s.close(ctx, false))
			s = nil
		}
	}()
	if s.dbProxy, err = faultproxy.New(e.dbAddr); err != nil {
		return s, fmt.Errorf("soak: db proxy: %w", err)
	}
	pc, err := pgxpool.ParseConfig(faultproxy.RewriteURL(e.dbURL, s.dbProxy.Addr()))
	if err != nil {
		return s, fmt.Errorf("soak: pool config: %s", redactErr(err))
	}
	pc.ConnConfig.RuntimeParams["application_name"] = s.name
	pc.ConnConfig.ConnectTimeout = 2 * time.Second
	pc.ConnConfig.Tracer = e.trips
	pc.MaxConns = 4
	if s.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return s, fmt.Errorf("soak: pool: %s", redactErr(err))
	}

	urls := make([]string, 0, natsNodes)
	for k := range natsNodes {
		node := (idx + k) % natsNodes // its own node first
		p, err := faultproxy.New(e.nats.clientAddr(node))
		if err != nil {
			return s, fmt.Errorf("soak: nats proxy: %w", err)
		}
		s.natsProxies = append(s.natsProxies, p)
		urls = append(urls, "nats://"+p.Addr())
	}
	s.nc, err = natsbridge.Connect(ctx, natsbridge.ConnectConfig{URLs: urls, Name: s.name, Logger: s.log,
		// IgnoreDiscoveredServers: the cluster advertises its nodes' real addresses, and a
		// connection that learned them would reconnect around the proxies (a killed server
		// would live on).
		Options: []nats.Option{nats.DontRandomize(), nats.IgnoreDiscoveredServers(), nats.ReconnectWait(200 * time.Millisecond), nats.ReconnectJitter(50*time.Millisecond, 0)}})
	if err != nil {
		return s, fmt.Errorf("soak: nats connect: %w", err)
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		return s, fmt.Errorf("soak: jetstream: %w", err)
	}

	if s.rooms, err = roomstore.NewPostgres(s.pool, roomstore.PostgresConfig{Schema: e.schema}); err != nil {
		return s, fmt.Errorf("soak: room store: %w", err)
	}
	if s.inv, err = roomsync.NewRoomInvalidator(s.nc, roomsync.InvalidatorConfig{Subject: invalidateSubject, Instance: s.name, Logger: s.log}); err != nil {
		return s, fmt.Errorf("soak: invalidator: %w", err)
	}
	if s.cached, err = roomstore.NewCached(s.rooms, roomstore.CacheConfig{TTL: cacheTTL, AfterWrite: s.inv.Publish, Logger: s.log}); err != nil {
		return s, fmt.Errorf("soak: room cache: %w", err)
	}
	if err = s.inv.Attach(ctx, s.cached); err != nil {
		return s, fmt.Errorf("soak: invalidator attach: %w", err)
	}
	// Its connection goes through the server's database proxy: a db_cut is a gap too.
	if s.listener, err = roomstore.NewChangeListener(s.pool.Config().ConnConfig, s.cached,
		roomstore.ChangeListenerConfig{Channel: e.schema, HealthCheck: listenerHealthCheck, Logger: s.log}); err != nil {
		return s, fmt.Errorf("soak: change listener: %w", err)
	}
	s.listenDone = make(chan struct{})
	go func() {
		defer close(s.listenDone)
		_ = s.listener.Run(context.WithoutCancel(ctx)) // ends in close: Close's outcome is checked there
	}()

	players, err := flux.NewPostgresPlayers(s.pool, e.pcfg)
	if err != nil {
		return s, fmt.Errorf("soak: player store: %w", err)
	}
	if s.runner, err = flux.NewRunner(players, s.cached, flux.RunnerConfig{
		RunnerID: s.name, Logger: s.log,
		LoadTimeout: runnerTimeout, RoomsTimeout: runnerTimeout, ApplyTimeout: runnerTimeout, CloseTimeout: 3 * runnerTimeout,
	}); err != nil {
		return s, fmt.Errorf("soak: runner: %w", err)
	}
	if err = s.runner.Start(now); err != nil {
		return s, fmt.Errorf("soak: runner start: %w", err)
	}

	if s.bridge, err = natsbridge.New(s.nc, natsbridge.Config{Origin: s.name, Logger: s.log,
		HandlerTimeout: time.Second, BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond}); err != nil {
		return s, fmt.Errorf("soak: bridge: %w", err)
	}
	if err = s.bridge.HandleDurable(ctx, natsbridge.Durable{Stream: tradesStream, Consumer: tradesConsumer,
		Subject: tradeSubjectRoot + ".>", MaxDeliver: 5, AckWait: ackWait}, e.events.handler(s), natsbridge.Name("trades")); err != nil {
		return s, fmt.Errorf("soak: durable handler: %w", err)
	}
	chatPattern, err := natsbridge.Pattern("chat", "say", "room", natsbridge.WildcardToken)
	if err != nil {
		return s, fmt.Errorf("soak: chat pattern: %w", err)
	}
	if err = s.bridge.HandlePattern(chatPattern, e.chat.handler(), natsbridge.Queue("soak-chat"), natsbridge.Name("chat")); err != nil {
		return s, fmt.Errorf("soak: chat handler: %w", err)
	}
	return s, nil
}

// kill simulates a crash: the server's database and NATS connections are cut at the
// proxies (and its backends terminated) with no Close; its Runner, Bridge, cache and
// invalidator are abandoned as they are, to be closed only at the very end.
func (s *gameServer) kill(ctx context.Context, admin *pgxpool.Pool) error {
	s.dbProxy.Disable()
	for _, p := range s.natsProxies {
		p.Disable()
	}
	s.dead.Store(true) // after the cut: nothing it does from now on reaches anyone
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, s.name); err != nil {
		return fmt.Errorf("soak: terminate %s: %w", s.name, err)
	}
	return nil
}

// close shuts the server down in reverse order of construction. graceful: the Runner's
// final flush and the Bridge's drain within ctx; else (an abandoned, killed server) the
// pool is closed first so nothing it held can still reach the database.
func (s *gameServer) close(ctx context.Context, graceful bool) error {
	var errs []error
	if !graceful && s.pool != nil {
		s.pool.Close()
	}
	if s.runner != nil {
		if graceful {
			if err := s.runner.Stop(ctx); err != nil {
				errs = append(errs, fmt.Errorf("soak: %s runner stop: %w", s.name, err))
			}
		}
		err := s.runner.Close()
		if graceful && err != nil {
			errs = append(errs, fmt.Errorf("soak: %s runner close: %w", s.name, err))
		}
	}
	if s.bridge != nil {
		var err error
		if graceful {
			err = s.bridge.Drain(ctx)
		} else {
			err = s.bridge.Close()
		}
		if graceful && err != nil {
			errs = append(errs, fmt.Errorf("soak: %s bridge: %w", s.name, err))
		}
	}
	if s.listener != nil {
		err := s.listener.Close()
		if s.listenDone != nil {
			<-s.listenDone
		}
		if err != nil && graceful {
			errs = append(errs, fmt.Errorf("soak: %s change listener: %w", s.name, err))
		}
	}
	if s.inv != nil {
		if err := s.inv.Close(); err != nil && graceful {
			errs = append(errs, fmt.Errorf("soak: %s invalidator: %w", s.name, err))
		}
	}
	if s.cached != nil {
		if err := s.cached.Close(); err != nil && graceful {
			errs = append(errs, fmt.Errorf("soak: %s cache: %w", s.name, err))
		}
	}
	if s.rooms != nil {
		if err := s.rooms.Close(); err != nil && graceful {
			errs = append(errs, fmt.Errorf("soak: %s room store: %w", s.name, err))
		}
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
	for _, p := range s.natsProxies {
		p.Stop()
	}
	if s.dbProxy != nil {
		s.dbProxy.Stop()
	}
	return errors.Join(errs...)
}
