package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/workload/worldgen"
	"github.com/gamepersist/gamepersist/roomstore"
	pgxzerolog "github.com/jackc/pgx-zerolog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/tracelog"
	"github.com/rs/zerolog"
)

// backend is where the world lives: a room store, and a player store that the flux Runner
// reads and the game writes its players' moves to (flux.PresenceUpdater: one statement per
// tick on PostgreSQL, through flux's configured table and column names).
type backend struct {
	name    string // "postgres" or "memory"
	rooms   roomstore.RoomStore
	players playerStore
	pool    *pgxpool.Pool // nil in memory
	// dropSchema is the schema close drops (-cleanup); empty: none.
	dropSchema string
}

// playerStore is what the game needs of flux's player stores (MemoryPlayers and
// PostgresPlayers both are one).
type playerStore interface {
	flux.PlayerStore
	flux.PresenceUpdater
}

// close closes the room store, drops the schema when the run was asked to clean up, then
// closes the pool (the stores never close a pool they were given).
func (b *backend) close(ctx context.Context, log zerolog.Logger) error {
	err := b.rooms.Close()
	if b.pool != nil {
		if b.dropSchema != "" {
			if _, derr := b.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{b.dropSchema}.Sanitize()+" CASCADE"); derr != nil {
				err = errors.Join(err, fmt.Errorf("mudsim: drop schema %s: %w", b.dropSchema, derr))
			} else {
				log.Info().Str("schema", b.dropSchema).Msg("schema dropped")
			}
		}
		b.pool.Close()
	}
	return err
}

// ErrDatabase is wrapped by the error of a database that answered but cannot be used: it
// refused the role, the password or the database name, it did not answer within the
// timeout, or it refused what mudsim needs (creating its schema). The run stops before
// anything starts; only an address where nothing listens falls back to memory.
var ErrDatabase = errors.New("mudsim: database unusable")

// dbHint ends every ErrDatabase message: what the user can do about it.
const dbHint = "fix -database-url or $" + EnvDatabaseURL + ", or pass -database-url '' to run in memory"

// sqlstateReason says in words what a SQLSTATE a newcomer meets at connect or set-up time
// means; "" for the others.
func sqlstateReason(code string) string {
	switch code {
	case "28000": // invalid_authorization_specification: no such role, or pg_hba.conf rejects it
		return "role refused"
	case "28P01":
		return "wrong password"
	case "3D000":
		return "no such database"
	case "42501":
		return "permission denied"
	case "53300":
		return "too many connections"
	case "57P03":
		return "server is starting up or shutting down"
	}
	return ""
}

// nothingListens reports whether err means no server is at the address at all: the
// connection was refused, there is no route to the host, or (for a Unix socket) no socket
// file. Only then does the program fall back to the in-memory stores.
func nothingListens(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return false
	}
	for _, e := range []error{syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ENETUNREACH} {
		if errors.Is(err, e) {
			return true
		}
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Net == "unix" && errors.Is(err, syscall.ENOENT)
}

// dialReason is the dial's own error text (say "dial tcp 127.0.0.1:1: connect: connection
// refused"), without pgx's per-attempt repetition.
func dialReason(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Error()
	}
	return flatError{err}.Error()
}

// databaseError turns what the server (or the dial) said into one line wrapping
// ErrDatabase and the cause (a *pgconn.PgError stays reachable with errors.As): where,
// what in words, the server's message and SQLSTATE, and what to do.
func databaseError(where, step string, timeout time.Duration, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		reason := sqlstateReason(pgErr.Code)
		if reason == "" {
			reason = "refused"
		}
		return fmt.Errorf("%w: %s at %s: %s: %w; %s", ErrDatabase, step, where, reason, pgErr, dbHint)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %s at %s: no answer within %s (-db-timeout): %w; %s", ErrDatabase, step, where, timeout,
			context.DeadlineExceeded, dbHint)
	}
	return fmt.Errorf("%w: %s at %s: %w; %s", ErrDatabase, step, where, flatError{err}, dbHint)
}

// flatError is an error whose text is on one line and without a password (pgx puts each
// connection attempt on a line of its own); it unwraps to the original.
type flatError struct{ err error }

func (e flatError) Error() string { return oneLine(redactURL(e.err.Error())) }
func (e flatError) Unwrap() error { return e.err }

// openPool opens a pool on url and pings it within timeout. The pool traces failed
// statements to log through pgx's zerolog adapter. Errors never quote the URL; where is
// host:port/database, for messages.
func openPool(ctx context.Context, url string, timeout time.Duration, log zerolog.Logger) (*pgxpool.Pool, string, error) {
	if err := checkDatabaseURL(url); err != nil {
		return nil, "", err
	}
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, "", fmt.Errorf("%w: database URL: %w", ErrInvalidConfig, flatError{err})
	}
	where := net.JoinHostPort(pc.ConnConfig.Host, strconv.Itoa(int(pc.ConnConfig.Port))) + "/" + pc.ConnConfig.Database
	pc.ConnConfig.RuntimeParams["application_name"] = "mudsim"

	// Probe first on one untraced connection, so that "nothing listens" is one log line
	// (the caller's), not also the tracer's.
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	probe, err := pgx.ConnectConfig(pctx, pc.ConnConfig.Copy())
	if err != nil {
		return nil, where, err
	}
	if err := probe.Close(pctx); err != nil {
		return nil, where, err
	}

	pc.ConnConfig.Tracer = &tracelog.TraceLog{Logger: pgxzerolog.NewLogger(log), LogLevel: tracelog.LogLevelError}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, where, err
	}
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, where, err
	}
	return pool, where, nil
}

// openBackend opens PostgreSQL at cfg.DatabaseURL and seeds the world there. With an empty
// URL, or when nothing listens at its address (said in one log line), it seeds the
// in-memory stores instead. Any other failure is an error wrapping ErrDatabase (or
// ErrInvalidConfig for a URL that does not parse), in one line, without the password.
func openBackend(ctx context.Context, cfg Config, rules flux.Rules, world *worldgen.World) (*backend, error) {
	log := cfg.Logger
	if cfg.DatabaseURL != "" {
		pool, where, err := openPool(ctx, cfg.DatabaseURL, cfg.DBTimeout, log)
		switch {
		case errors.Is(err, ErrInvalidConfig):
			return nil, err
		case err != nil && nothingListens(err):
			log.Warn().Str("database", where).Str("reason", dialReason(err)).
				Msg("nothing listens at the database address; running on the in-memory stores")
		case err != nil:
			return nil, databaseError(where, "connect", cfg.DBTimeout, err)
		default:
			b, err := seedPostgres(ctx, pool, cfg.Schema, rules, world)
			if err != nil {
				pool.Close()
				return nil, databaseError(where, "set up schema "+cfg.Schema, cfg.DBTimeout, err)
			}
			if cfg.Cleanup {
				b.dropSchema = cfg.Schema
			}
			log.Info().Str("database", where).Str("schema", cfg.Schema).Bool("cleanup", cfg.Cleanup).
				Int("rooms", len(world.Rooms)).Int("players", len(world.Players)).Msg("world seeded in postgres")
			return b, nil
		}
	}
	rooms := roomstore.NewMemoryStore()
	if err := world.PutRooms(ctx, rooms); err != nil {
		return nil, errors.Join(err, rooms.Close())
	}
	players := flux.NewMemoryPlayers(rules)
	players.Put(world.Players...)
	log.Info().Int("rooms", len(world.Rooms)).Int("players", len(world.Players)).Msg("world seeded in memory")
	return &backend{name: "memory", rooms: rooms, players: players}, nil
}

// seedPostgres creates the schema and the libraries' tables (their Migrate), empties them
// and writes the world: the rooms through the room store (set-up, one upsert each), the
// players with one COPY (worldgen, into the table the player store is configured with).
func seedPostgres(ctx context.Context, pool *pgxpool.Pool, schema string, rules flux.Rules, world *worldgen.World) (*backend, error) {
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return nil, fmt.Errorf("mudsim: create schema: %w", err)
	}
	rooms, err := roomstore.NewPostgres(pool, roomstore.PostgresConfig{Table: schema + "." + roomstore.DefaultTable})
	if err != nil {
		return nil, err
	}
	pc := flux.PostgresConfig{Schema: schema, Rules: &rules}
	players, err := flux.NewPostgresPlayers(pool, pc)
	if err != nil {
		return nil, errors.Join(err, rooms.Close())
	}
	if err := seedTables(ctx, pool, rooms, players, pc, world); err != nil {
		return nil, errors.Join(err, rooms.Close())
	}
	return &backend{name: "postgres", rooms: rooms, players: players, pool: pool}, nil
}

func seedTables(ctx context.Context, pool *pgxpool.Pool, rooms *roomstore.Postgres,
	players *flux.PostgresPlayers, pc flux.PostgresConfig, world *worldgen.World,
) error {
	if err := rooms.Migrate(ctx); err != nil {
		return err
	}
	if err := players.Migrate(ctx); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, "TRUNCATE "+pgx.Identifier{pc.Schema, roomstore.DefaultTable}.Sanitize()+", "+
		pgx.Identifier{pc.Schema, flux.DefaultPlayersTable}.Sanitize()+", "+
		pgx.Identifier{pc.Schema, flux.DefaultStateTable}.Sanitize()); err != nil {
		return fmt.Errorf("mudsim: empty tables: %w", err)
	}
	if err := world.PutRooms(ctx, rooms); err != nil {
		return err
	}
	return world.CopyPlayers(ctx, pool, pc)
}
