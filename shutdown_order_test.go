package gamepersist_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/internal/testkit/testlog"
	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
	"github.com/gamepersist/gamepersist/natsbridge"
	"github.com/gamepersist/gamepersist/roomstore"
)

// The shutdown-order tests: a game server whose durable trade handler calls
// Runner.AddLucidity, shut down in a wrong order. Nothing may be lost, the failure must be
// loud (a warn line, Drain's error naming the cause) and the next start must handle every
// trade.

const (
	tradePlayers    = 20
	tradesPerPlayer = 10
	tradeCount      = tradePlayers * tradesPerPlayer
	startLucidity   = 50
	tradeWait       = 60 * time.Second
	tradesAckWait   = 5 * time.Second
	tradesStream    = "TRADES"
	tradesConsumer  = "trades"
)

var gameNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// tradeWorld is the shared state of one test: the database, NATS and the published trades.
type tradeWorld struct {
	connString string
	nc         *nats.Conn
	js         jetstream.JetStream
	rooms      *roomstore.MemoryStore
}

func newTradeWorld(t *testing.T) *tradeWorld {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, _ := testdb.NewSchema(t)
	w := &tradeWorld{connString: cs, rooms: roomstore.NewMemoryStore()}
	t.Cleanup(func() { _ = w.rooms.Close() })
	if err := w.rooms.PutRoom(ctx, roomstore.Room{ID: "crypt", Name: "The Crypt", Environment: "neutral"}); err != nil {
		t.Fatal(err)
	}
	pool := w.pool(t)
	players, err := flux.NewPostgresPlayers(pool, flux.PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := players.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	batch := make([]flux.Player, 0, tradePlayers)
	for i := range tradePlayers {
		batch = append(batch, flux.Player{ID: playerID(i), RoomID: "crypt", Lucidity: startLucidity, LastActive: gameNow, CreatedAt: gameNow})
	}
	if _, err := players.UpsertPlayers(ctx, batch); err != nil {
		t.Fatal(err)
	}

	srv := testnats.Start(t)
	if w.nc, err = nats.Connect(srv.ClientURL()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.nc.Close)
	if w.js, err = jetstream.New(w.nc); err != nil {
		t.Fatal(err)
	}
	if _, err := w.js.CreateStream(ctx, jetstream.StreamConfig{Name: tradesStream, Subjects: []string{"trade.>"}}); err != nil {
		t.Fatal(err)
	}
	for k := range tradeCount {
		if _, err := w.js.Publish(ctx, "trade."+playerID(k%tradePlayers), []byte("1")); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func playerID(i int) string { return fmt.Sprintf("p%02d", i) }

// pool opens a pool on the test's schema, closed when t ends (closing twice is safe).
func (w *tradeWorld) pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), w.connString)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// server is one game server: a started Runner on its own pool, and a Bridge whose durable
// trade handler calls Runner.AddLucidity after gate opens.
type server struct {
	pool   *pgxpool.Pool
	runner *flux.Runner
	bridge *natsbridge.Bridge
	logs   *testlog.Buffer
}

func (w *tradeWorld) start(t *testing.T, gate <-chan struct{}) *server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := &server{pool: w.pool(t), logs: &testlog.Buffer{}}
	players, err := flux.NewPostgresPlayers(s.pool, flux.PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if s.runner, err = flux.NewRunner(players, w.rooms, flux.RunnerConfig{RunnerID: "game"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.runner.Close() })
	if err := s.runner.Start(gameNow); err != nil {
		t.Fatal(err)
	}
	if s.bridge, err = natsbridge.New(w.nc, natsbridge.Config{Logger: s.logs.Logger(),
		HandlerTimeout: 2 * time.Second, BackoffBase: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.bridge.Close() })
	// The handler as a game writes it: a trade the Runner cannot take now is Retryable.
	trade := func(ctx context.Context, m natsbridge.Msg) error {
		select {
		case <-gate:
		case <-ctx.Done():
			return natsbridge.Retryable(ctx.Err())
		}
		delta, err := strconv.Atoi(string(m.Data))
		if err != nil {
			return err
		}
		player := strings.TrimPrefix(m.Subject, "trade.")
		if _, err := s.runner.AddLucidity(ctx, player, delta); err != nil {
			return natsbridge.Retryable(err)
		}
		return nil
	}
	if err := s.bridge.HandleDurable(ctx, natsbridge.Durable{Stream: tradesStream, Consumer: tradesConsumer,
		AckWait: tradesAckWait}, trade); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitFor polls cond until it holds, failing t after tradeWait (a bound, not a timing).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(tradeWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// drainAfterOpening drains s's Bridge and opens gate once the drain has begun (the
// Bridge refuses new handlers), so the held handlers run under the drain.
func drainAfterOpening(t *testing.T, s *server, gate chan struct{}) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), tradeWait)
		defer cancel()
		done <- s.bridge.Drain(ctx)
	}()
	waitFor(t, "the drain to begin", func() bool {
		return errors.Is(s.bridge.Handle("probe", func(context.Context, natsbridge.Msg) error { return nil }), natsbridge.ErrClosed)
	})
	close(gate)
	return <-done
}

// restartHandlesEveryTrade starts a new server on the same consumer and waits until it
// has handled every trade; then every player's lucidity must show all of its trades, once.
func (w *tradeWorld) restartHandlesEveryTrade(t *testing.T) {
	t.Helper()
	open := make(chan struct{})
	close(open)
	begin := time.Now()
	s := w.start(t, open)
	waitFor(t, "the restarted server to handle every trade", func() bool { return s.bridge.Stats().Handled >= tradeCount })
	t.Logf("restart: %d trades handled in %v", tradeCount, time.Since(begin).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.bridge.Drain(ctx); err != nil {
		t.Fatalf("drain after the restart: %v", err)
	}
	if err := s.runner.Close(); err != nil {
		t.Fatalf("runner close after the restart: %v", err)
	}
	if st := s.bridge.Stats(); st.Handled != tradeCount || st.Failed != 0 {
		t.Fatalf("restart stats: handled %d, failed %d; want %d, 0", st.Handled, st.Failed, tradeCount)
	}
	rows, err := s.pool.Query(ctx, "SELECT id, lucidity FROM flux_players")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id string
		var lucidity int
		if err := rows.Scan(&id, &lucidity); err != nil {
			t.Fatal(err)
		}
		if lucidity != startLucidity+tradesPerPlayer {
			t.Errorf("player %s: lucidity %d, want %d (every trade once)", id, lucidity, startLucidity+tradesPerPlayer)
		}
		n++
	}
	if err := rows.Err(); err != nil || n != tradePlayers {
		t.Fatalf("%d players read: %v", n, err)
	}
}

// checkLoud asserts the drain's error and the Bridge's log name the cause.
func checkLoud(t *testing.T, s *server, drainErr error, cause error) {
	t.Helper()
	if !errors.Is(drainErr, natsbridge.ErrUnhandled) || !errors.Is(drainErr, cause) {
		t.Fatalf("Drain returned %v; want an error matching natsbridge.ErrUnhandled and %v", drainErr, cause)
	}
	warned := false
	for _, l := range s.logs.Lines(t) {
		if l["level"] == "warn" && strings.Contains(fmt.Sprint(l["error"]), cause.Error()) {
			warned = true
		}
	}
	if !warned {
		t.Fatalf("no warn line names %q; log:\n%s", cause, s.logs.String())
	}
	if st := s.bridge.Stats(); st.Handled != 0 || st.Failed != 0 {
		t.Fatalf("stats %+v: want nothing handled and nothing dead-lettered", st)
	}
}

// TestRunnerClosedBeforeBridgeDrainIsLoud: the Runner is closed while the durable trade
// handlers still call it, then the Bridge is drained. Every trade is given back (nothing
// lost), Drain returns an error matching natsbridge.ErrUnhandled and flux.ErrClosed, a
// warn line says so, and the next start handles every trade once.
func TestRunnerClosedBeforeBridgeDrainIsLoud(t *testing.T) {
	t.Parallel()
	w := newTradeWorld(t)
	gate := make(chan struct{})
	s := w.start(t, gate)
	waitFor(t, "a trade in flight", func() bool { return s.bridge.Stats().InFlight > 0 })
	if err := s.runner.Close(); err != nil {
		t.Fatal(err)
	}
	err := drainAfterOpening(t, s, gate)
	checkLoud(t, s, err, flux.ErrClosed)
	w.restartHandlesEveryTrade(t)
}

// TestPoolClosedUnderDrainingBridgeIsLoud: the pool is closed while the durable trade
// handlers still write through it, then the Bridge is drained. Each AddLucidity fails with
// pgxpool's closed-pool error; Drain returns it (with natsbridge.ErrUnhandled) instead of
// nil, a warn line says so, and the next start handles every trade once.
func TestPoolClosedUnderDrainingBridgeIsLoud(t *testing.T) {
	t.Parallel()
	w := newTradeWorld(t)
	gate := make(chan struct{})
	s := w.start(t, gate)
	waitFor(t, "a trade in flight", func() bool { return s.bridge.Stats().InFlight > 0 })
	s.pool.Close()
	err := drainAfterOpening(t, s, gate)
	checkLoud(t, s, err, puddle.ErrClosedPool)
	if err := s.runner.Close(); err != nil {
		t.Fatalf("runner close (nothing pending): %v", err)
	}
	w.restartHandlesEveryTrade(t)
}
