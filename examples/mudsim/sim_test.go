package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/internal/workload/worldgen"
	"github.com/gamepersist/gamepersist/natsbridge"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
)

// TestSimulateMemory runs a few ticks on the in-memory stores against a real NATS server the
// test also listens on: every lucidity change is applied, published and decodes as a
// lucidity_change envelope; every chat line is handled; nothing is pending at the end.
func TestSimulateMemory(t *testing.T) {
	t.Parallel()
	natsURL, nc := watchedNATS(t)
	var received, bad atomic.Int64
	sub, err := nc.Subscribe("events.lucidity_change.*", func(m *nats.Msg) {
		env, err := natsbridge.Decode[LucidityChanged](m.Data, natsbridge.DecodeOptions{})
		if err != nil || env.Type != lucidityType || env.Payload.NewLucidity == env.Payload.OldLucidity ||
			m.Subject != "events.lucidity_change."+env.Payload.PlayerID {
			bad.Add(1)
			return
		}
		received.Add(1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	logs := newLogLines()
	cfg := smallWorld(logs)
	cfg.NATSURL = natsURL
	cfg.Ticks = 6
	sum, err := simulate(context.Background(), cfg)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, logs)
	}
	checkSummary(t, sum, "memory")
	if err := nc.Flush(); err != nil { // everything the simulation flushed has reached us
		t.Fatal(err)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if received.Load() != sum.EventsPublished || bad.Load() != 0 {
		t.Errorf("received %d good and %d bad lucidity events, published %d", received.Load(), bad.Load(), sum.EventsPublished)
	}
	// One tick line per tick, with the fields the README promises.
	ticks := logs.withMessage("tick")
	if int64(len(ticks)) != sum.Ticks {
		t.Fatalf("%d tick lines for %d ticks", len(ticks), sum.Ticks)
	}
	msFields := []string{"total_ms", "moves_ms", "load_ms", "rooms_ms", "eval_ms", "apply_ms", "events_ms", "chat_ms"}
	for _, f := range append(msFields, "players", "active", "changes", "cache_hit_ratio", "pending_players", "chat_handled") {
		if _, ok := ticks[0][f]; !ok {
			t.Errorf("tick line has no %q: %v", f, ticks[0])
		}
	}
	// Values are rounded to 0.001 (the ratio, and milliseconds to a microsecond).
	for _, line := range ticks {
		for _, f := range append(msFields, "cache_hit_ratio") {
			if v, _ := line[f].(float64); math.Abs(v*1000-math.Round(v*1000)) > 1e-6 {
				t.Errorf("tick %v: %s = %v, not rounded to 3 decimals", line["tick"], f, v)
			}
		}
	}
	// Each NATS connection is named in its lines, and a clean close has no error field.
	conns := map[any]int{}
	for _, msg := range []string{"nats connected", "nats connection closed"} {
		for _, line := range logs.withMessage(msg) {
			conns[line["conn"]]++
			if _, ok := line["error"]; ok {
				t.Errorf("%q line with an error field: %v", msg, line)
			}
		}
	}
	if len(conns) != 2 || conns[gameConn] != 2 || conns[clientsConn] != 2 {
		t.Errorf("connect and close lines per conn = %v, want one of each for %s and %s", conns, gameConn, clientsConn)
	}
}

// TestSimulatePostgres runs a few ticks on PostgreSQL in a schema of its own, twice: the
// second run reseeds the same schema. The database holds exactly the world's players and
// the applied changes the summary reports; the game's moves went through one statement per
// tick (the player rows' room ids changed).
func TestSimulatePostgres(t *testing.T) {
	t.Parallel()
	url, schema := testdb.NewSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for run := range 2 {
		logs := newLogLines()
		cfg := smallWorld(logs)
		cfg.DatabaseURL, cfg.Schema, cfg.Ticks = url, schema, 6
		sum, err := simulate(ctx, cfg)
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, logs)
		}
		checkSummary(t, sum, "postgres")

		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		var players, lastTick, actedLast int64
		err = conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM flux_players),
			(SELECT coalesce(max(tick), 0) FROM flux_state),
			(SELECT count(*) FROM flux_players WHERE last_active = $1)`, sum.GameTime).Scan(&players, &lastTick, &actedLast)
		if err != nil {
			t.Fatal(err)
		}
		rooms := map[string]string{}
		rows, err := conn.Query(ctx, `SELECT id, room_id FROM flux_players`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, room string
			if err := rows.Scan(&id, &room); err != nil {
				t.Fatal(err)
			}
			rooms[id] = room
		}
		_ = conn.Close(ctx)
		step := cfg.GameStep
		if step == 0 {
			step = DefaultGameStep
		}
		if want := flux.TickNumber(sum.GameTime, step); players != int64(cfg.Players) || lastTick != want {
			t.Errorf("run %d: database has %d players, last flux tick %d; want %d and %d",
				run, players, lastTick, cfg.Players, want)
		}
		// The game's moves reached the database: some players acted in the last tick, and
		// some stand elsewhere than where the world put them.
		start, err := cfg.gameStart()
		if err != nil {
			t.Fatal(err)
		}
		moved := 0
		for _, p := range worldgen.New(worldgen.Config{Rooms: cfg.Rooms, Players: cfg.Players, Seed: cfg.Seed, Now: start}).Players {
			if rooms[p.ID] != p.RoomID {
				moved++
			}
		}
		if actedLast == 0 || moved == 0 {
			t.Errorf("run %d: %d players active at the last tick, %d moved: the moves were not written", run, actedLast, moved)
		}
	}
}

// TestRunStopsOnCancel is what SIGINT does, in process: ctx ends while the simulation runs
// with no duration; run returns nil after printing a summary with nothing pending. TestMain's
// goleak check proves no goroutine outlived it.
func TestRunStopsOnCancel(t *testing.T) {
	t.Parallel()
	logs := newLogLines()
	cfg := smallWorld(logs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, &out) }()
	logs.waitFor(t, "tick", 3)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of cancel")
	}
	line := out.String()
	for _, want := range []string{"mudsim summary: ", "pending_players=0", "tick_errors=0", "dead_letters=0"} {
		if !strings.Contains(line, want) {
			t.Errorf("summary %q lacks %q", line, want)
		}
	}
	if len(logs.withMessage("mudsim stopping")) != 1 {
		t.Errorf("no stopping line:\n%s", logs)
	}
}

// TestUnreachableDatabaseFallsBackToMemory checks the embedded default: an address where
// nothing listens (a port refusing connections) is said in one log line (without the
// password) and the run goes on in memory.
func TestUnreachableDatabaseFallsBackToMemory(t *testing.T) {
	t.Parallel()
	logs := newLogLines()
	cfg := smallWorld(logs)
	cfg.DatabaseURL = "postgres://nobody:s3cret-pw@127.0.0.1:1/x"
	cfg.Ticks = 2
	sum, err := simulate(context.Background(), cfg)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, logs)
	}
	checkSummary(t, sum, "memory")
	warn := logs.withMessage("nothing listens at the database address; running on the in-memory stores")
	if len(warn) != 1 || warn[0]["database"] != "127.0.0.1:1/x" {
		t.Fatalf("fallback lines = %v", warn)
	}
	if strings.Contains(logs.String(), `"level":"error"`) || strings.Contains(logs.String(), "s3cret-pw") {
		t.Fatalf("the fallback took more than one line or printed the password:\n%s", logs)
	}
}

// TestConfigErrors checks that bad settings are errors wrapping ErrInvalidConfig before
// anything starts, and that -h documents every flag.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"schema":     {Schema: "Bad.Schema"},
		"game start": {GameStart: "25:99"},
		"tick":       {Tick: time.Microsecond},
		"rooms":      {Rooms: -1},
	} {
		if _, err := simulate(context.Background(), cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := simulate(context.Background(), Config{DatabaseURL: "postgres://%zz", Rooms: 3, Players: 3}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("bad URL: err = %v, want ErrInvalidConfig", err)
	}

	var usage bytes.Buffer
	if _, _, err := parseFlags([]string{"-h"}, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: err = %v", err)
	}
	for _, f := range []string{"-players", "-rooms", "-tick", "-duration", "-database-url", "-nats-url", "-log-level",
		"-seed", "-ticks", "-schema", "-chat", "-game-step", "-game-start", "-db-timeout"} {
		if !strings.Contains(usage.String(), f) {
			t.Errorf("usage lacks %s:\n%s", f, usage.String())
		}
	}
	if _, _, err := parseFlags([]string{"-log-level", "loud"}, &usage); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("-log-level loud: err = %v", err)
	}
	cfg, _, err := parseFlags([]string{"-players", "7", "-database-url", "", "-tick", "250ms"}, &usage)
	if err != nil || cfg.Players != 7 || cfg.DatabaseURL != "" || cfg.Tick != 250*time.Millisecond {
		t.Errorf("parsed %+v, %v", cfg, err)
	}
}

// TestBadChatIsDeadLetteredAndFailsTheRun sends, from outside, a chat line to a room that
// does not exist and one that is not an envelope: the Bridge dead-letters both (the handler
// never blocks on them) and the run reports it as an error, with everything else clean.
func TestBadChatIsDeadLetteredAndFailsTheRun(t *testing.T) {
	t.Parallel()
	natsURL, nc := watchedNATS(t)
	dead := make(chan *nats.Msg, 4)
	if _, err := nc.ChanSubscribe("deadletter.chat.>", dead); err != nil {
		t.Fatal(err)
	}

	logs := newLogLines()
	cfg := smallWorld(logs)
	cfg.NATSURL = natsURL
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		sum Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := simulate(ctx, cfg)
		done <- result{sum, err}
	}()
	logs.waitFor(t, "tick", 1)
	env := natsbridge.NewEnvelope(chatType, ChatLine{Text: "hello?"})
	env.Sender = "someone"
	if err := natsbridge.Publish(ctx, nc, "chat.say.room.nowhere", env); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("chat.say.room.room-1", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	for range 2 {
		select {
		case m := <-dead:
			reasons[m.Header.Get(natsbridge.HeaderDeadLetterReason)] = true
		case <-time.After(30 * time.Second):
			t.Fatal("no dead letter within 30s")
		}
	}
	cancel()
	r := <-done
	if !reasons[string(natsbridge.DeadLetterHandlerError)] || !reasons[string(natsbridge.DeadLetterDecodeError)] {
		t.Errorf("dead-letter reasons = %v", reasons)
	}
	if r.err == nil || !strings.Contains(r.err.Error(), "2 dead-lettered") {
		t.Errorf("err = %v, want the dead letters reported", r.err)
	}
	if r.sum.DeadLetters != 2 || r.sum.TickErrors != 0 || r.sum.PendingPlayers != 0 || r.sum.ChatHandled != r.sum.ChatSent {
		t.Errorf("summary = %+v", r.sum)
	}
}

// TestPostgresAndMemoryAgree runs the same world for the same ticks on both backends: the
// flux results (changes applied, events) are the same, so the Postgres path (batched moves,
// one load and one apply statement per tick) computes what the in-memory oracle does.
func TestPostgresAndMemoryAgree(t *testing.T) {
	t.Parallel()
	url, schema := testdb.NewSchema(t)
	var sums [2]Summary
	for i, db := range []string{"", url} {
		logs := newLogLines()
		cfg := smallWorld(logs)
		cfg.DatabaseURL, cfg.Schema, cfg.Ticks, cfg.Tick = db, schema, 12, 5*time.Millisecond
		sum, err := simulate(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%v\n%s", err, logs)
		}
		sums[i] = sum
	}
	checkSummary(t, sums[0], "memory")
	checkSummary(t, sums[1], "postgres")
	if sums[0].Ticks != 12 || sums[1].Ticks != 12 || sums[0].ChangesApplied != sums[1].ChangesApplied ||
		sums[0].GameTime != sums[1].GameTime {
		t.Fatalf("memory %+v\npostgres %+v", sums[0], sums[1])
	}
}
