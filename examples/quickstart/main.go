// Command quickstart is the README's quickstart, whole: rooms in PostgreSQL behind the
// read-through cache, a player created through the library, one flux tick, its change
// published on NATS, and everything closed. It runs an in-process NATS server unless
// -nats-url names one.
//
//	go run ./examples/quickstart [-database-url postgres://...] [-nats-url nats://...]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/natsbridge"
	"github.com/gamepersist/gamepersist/roomstore"
)

func main() {
	// The flag's default stays empty so that -h never prints a URL (it may hold a password).
	dbURL, natsURL := "", ""
	flag.StringVar(&dbURL, "database-url", "", "PostgreSQL URL (default: $GAMEPERSIST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres)")
	flag.StringVar(&natsURL, "nats-url", natsURL, "NATS URL (default: an in-process nats-server)")
	flag.Parse()
	if dbURL == "" {
		dbURL = os.Getenv("GAMEPERSIST_DATABASE_URL")
	}
	if dbURL == "" {
		dbURL = "postgres://postgres@127.0.0.1:5432/postgres"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := withNATS(natsURL, func(url string) error { return run(ctx, dbURL, url, os.Stdout) }); err != nil {
		// One line; errors name the host and port, never a password.
		fmt.Fprintln(os.Stderr, "quickstart:", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
}

// withNATS calls fn with url, or, when url is empty, with the URL of an in-process
// nats-server that it shuts down afterwards.
func withNATS(url string, fn func(url string) error) error {
	if url != "" {
		return fn(url)
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		return fmt.Errorf("embedded nats-server: %w", err)
	}
	srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if !srv.ReadyForConnections(10 * time.Second) {
		return errors.New("embedded nats-server did not start")
	}
	return fn(srv.ClientURL())
}

// run is the quickstart: the README shows the part between the quickstart markers as is.
func run(ctx context.Context, dbURL, natsURL string, out io.Writer) (err error) {
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("database URL: %w", err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("no database answered (set -database-url or GAMEPERSIST_DATABASE_URL): %w", err)
	}
	nc, err := natsbridge.Connect(ctx, natsbridge.ConnectConfig{URLs: []string{natsURL}, Name: "quickstart"})
	if err != nil {
		return err
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("events.lucidity_change.>") // to show what was published
	if err != nil {
		return err
	}
	gameTime := time.Date(2026, 6, 1, 22, 0, 0, 0, time.UTC) // night: eldritch drains 1.5 a tick

	// quickstart:begin
	store, err := roomstore.NewPostgres(pool, roomstore.PostgresConfig{}) // your pool: never closed by the library
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()
	if err := store.Migrate(ctx); err != nil { // versioned: each step once, even from several processes
		return err
	}
	rooms, err := roomstore.NewCached(store, roomstore.CacheConfig{}) // read-through cache
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rooms.Close()) }()
	if err := rooms.PutRoom(ctx, roomstore.Room{ID: "crypt", Name: "The Crypt", Environment: "eldritch"}); err != nil {
		return err
	}

	players, err := flux.NewPostgresPlayers(pool, flux.PostgresConfig{})
	if err != nil {
		return err
	}
	if err := players.Migrate(ctx); err != nil { // flux_players, and flux_state: each player's last tick
		return err
	}
	if _, err := players.UpsertPlayers(ctx, []flux.Player{
		{ID: "p1", RoomID: "crypt", Lucidity: 100, LastActive: gameTime, CreatedAt: gameTime},
	}); err != nil {
		return err
	}
	runner, err := flux.NewRunner(players, rooms, flux.RunnerConfig{RunnerID: "server-1"})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, runner.Close()) }() // final flush of anything pending

	// In your game loop, once per game minute: 1 query, 1 cached room read, 1 write.
	// Any number of servers may tick the same players: each gets one step a minute.
	rep, err := runner.Tick(ctx, gameTime)
	if err != nil {
		return err
	}
	for _, c := range rep.Changes {
		subject, err := natsbridge.LucidityChange(c.PlayerID)
		if err != nil {
			return err
		}
		if err := natsbridge.Publish(ctx, nc, subject, natsbridge.NewEnvelope("lucidity_change", c)); err != nil {
			return err
		}
	}
	// quickstart:end

	fmt.Fprintf(out, "tick %d: %d player evaluated, %d already ticked, %d changed, %d statements\n",
		rep.Tick, rep.Counts.Evaluated, rep.AlreadyTicked, len(rep.Changes), rep.Statements)
	for range rep.Changes {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			return fmt.Errorf("the published change: %w", err)
		}
		env, err := natsbridge.Decode[flux.Change](msg.Data, natsbridge.DecodeOptions{})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "published on %s: %s lucidity %d -> %d (%s)\n", msg.Subject, env.Payload.PlayerID,
			env.Payload.OldLucidity, env.Payload.NewLucidity, env.Payload.NewTier)
	}
	s := rooms.Stats()
	fmt.Fprintf(out, "room cache hits=%d misses=%d loads=%d\n", s.Hits, s.Misses, s.Loads)
	return nil
}
