package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/worldgen"
	"github.com/gamepersist/gamepersist/roomstore"
	pgxzerolog "github.com/jackc/pgx-zerolog"
	"github.com/jackc/pgx/v5"
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
}

// playerStore is what the game needs of flux's player stores (MemoryPlayers and
// PostgresPlayers both are one).
type playerStore interface {
	flux.PlayerStore
	flux.PresenceUpdater
}

// close closes the room store, then the pool (the stores never close a pool they were
// given).
func (b *backend) close() error {
	err := b.rooms.Close()
	if b.pool != nil {
		b.pool.Close()
	}
	return err
}

// openPool opens a pool on url and pings it within timeout. The pool traces failed
// statements to log through pgx's zerolog adapter. Errors never quote the URL.
func openPool(ctx context.Context, url string, timeout time.Duration, log zerolog.Logger) (*pgxpool.Pool, string, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, "", fmt.Errorf("%w: database URL does not parse", ErrInvalidConfig)
	}
	where := net.JoinHostPort(pc.ConnConfig.Host, strconv.Itoa(int(pc.ConnConfig.Port))) + "/" + pc.ConnConfig.Database
	pc.ConnConfig.RuntimeParams["application_name"] = "mudsim"

	// Probe first on one untraced connection, so that "no database" is one log line (the
	// caller's), not also the tracer's.
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

// openBackend opens PostgreSQL when cfg.DatabaseURL answers within cfg.DBTimeout and seeds
// the world there; otherwise (empty URL, or no answer: said in one log line) it seeds the
// in-memory stores.
func openBackend(ctx context.Context, cfg Config, rules flux.Rules, world *worldgen.World) (*backend, error) {
	log := cfg.Logger
	if cfg.DatabaseURL != "" {
		pool, where, err := openPool(ctx, cfg.DatabaseURL, cfg.DBTimeout, log)
		switch {
		case errors.Is(err, ErrInvalidConfig):
			return nil, err
		case err != nil:
			log.Warn().Str("database", where).Err(err).Msg("no database answered; running on the in-memory stores")
		default:
			b, err := seedPostgres(ctx, pool, cfg.Schema, rules, world)
			if err != nil {
				pool.Close()
				return nil, err
			}
			log.Info().Str("database", where).Str("schema", cfg.Schema).Int("rooms", len(world.Rooms)).
				Int("players", len(world.Players)).Msg("world seeded in postgres")
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
