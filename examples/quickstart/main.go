// Command quickstart is a small game server on gamepersist's non-blocking path. It stops
// on Ctrl-C, SIGTERM or after 15 s. NATS runs inside the process.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/natsbridge"
	"github.com/gamepersist/gamepersist/roomstore"
)

// trade is the payload of a durable trade event.
type trade struct {
	Player string `json:"player"`
	Delta  int    `json:"delta"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Getenv("GAMEPERSIST_DATABASE_URL"), 15*time.Second, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
}

// run plays for playFor or until ctx ends. The defers close in reverse order of
// construction, the safe order: the Bridge drains while the Runner its handler calls is
// open, the Runner flushes through the pool, the cache goes before its store, pool last.
func run(ctx context.Context, dbURL string, playFor time.Duration, out io.Writer) (err error) {
	var steps, skipped, changes int
	var trades atomic.Int64
	defer func() { // runs last, after every Close: drained trades count
		if err == nil {
			fmt.Fprintf(out, "%d flux steps (%d skipped), %d lucidity changes, %d trades applied\n", steps, skipped, changes, trades.Load())
		}
	}()
	if dbURL == "" {
		dbURL = "postgres://postgres@127.0.0.1:5432/postgres"
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("no database answered (set GAMEPERSIST_DATABASE_URL): %w", err)
	}
	natsURL, stopNATS, err := startNATS()
	if err != nil {
		return err
	}
	defer stopNATS()
	nc, err := natsbridge.Connect(ctx, natsbridge.ConnectConfig{URLs: []string{natsURL}})
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "TRADES", Subjects: []string{"trade.>"}}); err != nil {
		return err
	}
	// DEADLETTERS keeps the trades a handler could not apply.
	if _, err := natsbridge.EnsureDeadLetterStream(ctx, js, natsbridge.DeadLetterStreamConfig{Name: "DEADLETTERS"}); err != nil {
		return err
	}

	store, err := roomstore.NewPostgres(pool, roomstore.PostgresConfig{}) // never closes your pool
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	rooms, err := roomstore.NewCached(store, roomstore.CacheConfig{}) // read-through cache
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rooms.Close()) }()
	envs := []string{"eldritch", "sanctuary", "graveyard", "street_paved"}
	for _, env := range envs {
		if err := rooms.PutRoom(ctx, roomstore.Room{ID: env, Name: env, Environment: env}); err != nil {
			return err
		}
	}

	players, err := flux.NewPostgresPlayers(pool, flux.PostgresConfig{})
	if err != nil {
		return err
	}
	if err := players.Migrate(ctx); err != nil {
		return err
	}
	now, list := time.Now(), make([]flux.Player, 100)
	for i := range list {
		list[i] = flux.Player{ID: fmt.Sprint("p", i), RoomID: envs[i%len(envs)], Lucidity: 80, LastActive: now, CreatedAt: now}
	}
	if _, err := players.UpsertPlayers(ctx, list); err != nil {
		return err
	}
	// One flux step per 0.6 s of wall time (the default TickLength is one game minute).
	runner, err := flux.NewRunner(players, rooms, flux.RunnerConfig{RunnerID: "quickstart", TickLength: 600 * time.Millisecond})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, runner.Close()) }() // final flush of pending writes
	if err := runner.Start(now); err != nil {                 // non-blocking mode: Step
		return err
	}

	bridge, err := natsbridge.New(nc, natsbridge.Config{})
	if err != nil {
		return err
	}
	defer func() { // Drain: the trades already received are applied, not abandoned
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = errors.Join(err, bridge.Drain(dctx))
	}()
	onTrade := func(ctx context.Context, env natsbridge.Envelope[trade], _ natsbridge.Msg) error {
		_, err := runner.AddLucidity(ctx, env.Payload.Player, env.Payload.Delta)
		if errors.Is(err, flux.ErrUnknownPlayer) {
			return err // dead-lettered at once: no retry can help
		} else if err != nil {
			return natsbridge.Retryable(err) // nak'ed: delivered again
		}
		trades.Add(1)
		return nil
	}
	durable := natsbridge.Durable{Stream: "TRADES", Consumer: "quickstart"}
	if err := bridge.HandleDurable(ctx, durable, natsbridge.Typed(onTrade, natsbridge.DecodeOptions{})); err != nil {
		return err
	}

	// The game loop: every 100 ms, and flux on every 6th. Step evaluates in memory and
	// hands its writes to the Runner's worker: the loop never waits for the database.
	play, stop := context.WithTimeout(ctx, playFor)
	defer stop()
	loop := time.NewTicker(100 * time.Millisecond)
	defer loop.Stop()
	for n := 1; ; n++ {
		select {
		case <-play.Done(): // Ctrl-C, SIGTERM or playFor
			return nil
		case <-loop.C:
		}
		if n%6 != 0 {
			continue
		}
		rep, err := runner.Step(time.Now())
		if errors.Is(err, flux.ErrNoState) || errors.Is(err, flux.ErrLagging) {
			skipped++ // no state loaded yet, or the database is behind: nothing written
			continue
		} else if err != nil {
			return err
		}
		steps, changes = steps+1, changes+len(rep.Changes)
		if steps%3 == 0 { // a player buys a calming tea (from another service, in a game)
			buyer := fmt.Sprint("p", steps%len(list))
			subject, err := natsbridge.Subject("trade", buyer)
			if err != nil {
				return err
			}
			if err := natsbridge.Publish(ctx, nc, subject, natsbridge.NewEnvelope("trade", trade{Player: buyer, Delta: 5})); err != nil {
				return err
			}
		}
	}
}

// startNATS starts a NATS server with JetStream inside the process, on a free port, and
// returns its URL and the function that stops it and removes its files.
func startNATS() (string, func(), error) {
	dir, err := os.MkdirTemp("", "quickstart-nats-")
	if err != nil {
		return "", nil, err
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT,
		NoLog: true, NoSigs: true, JetStream: true, StoreDir: dir})
	if err != nil {
		return "", nil, errors.Join(err, os.RemoveAll(dir))
	}
	srv.Start()
	stop := func() { srv.Shutdown(); srv.WaitForShutdown(); _ = os.RemoveAll(dir) }
	if !srv.ReadyForConnections(10 * time.Second) {
		stop()
		return "", nil, errors.New("nats-server did not start")
	}
	return srv.ClientURL(), stop, nil
}
