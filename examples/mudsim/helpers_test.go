package main

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
)

// logLines is an io.Writer for a zerolog.Logger that keeps every JSON line and lets a test
// wait for a line.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
	raw   bytes.Buffer
	ch    chan struct{}
}

func newLogLines() *logLines { return &logLines{ch: make(chan struct{}, 1)} }

func (l *logLines) Write(p []byte) (int, error) {
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		return 0, err
	}
	l.mu.Lock()
	l.lines = append(l.lines, m)
	l.raw.Write(p)
	l.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *logLines) logger() zerolog.Logger { return zerolog.New(l).Level(zerolog.DebugLevel) }

// withMessage returns the lines whose message is msg.
func (l *logLines) withMessage(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, m := range l.lines {
		if m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.raw.String()
}

// waitFor waits until at least n lines have message msg.
func (l *logLines) waitFor(t *testing.T, msg string, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for len(l.withMessage(msg)) < n {
		select {
		case <-l.ch:
		case <-deadline:
			t.Fatalf("no %d %q lines within 30s:\n%s", n, msg, l.String())
		}
	}
}

// smallWorld is a world and a game time in which changes certainly happen from the first
// tick: at 23:00 (night) 80 players over 40 rooms include players in eldritch (−1.5 per
// tick), graveyard and haunted (−0.8) rooms. Ticks are fast and short.
func smallWorld(logs *logLines) Config {
	return Config{
		Players: 80, Rooms: 40, Tick: 20 * time.Millisecond, GameStart: "23:00", ChatPerTick: 3,
		Seed: 7, Logger: logs.logger(),
	}
}

// checkSummary asserts what every clean run must show.
func checkSummary(t *testing.T, sum Summary, backend string) {
	t.Helper()
	if sum.Backend != backend {
		t.Errorf("backend = %q, want %q", sum.Backend, backend)
	}
	if sum.Ticks < 1 || sum.TickErrors != 0 {
		t.Errorf("ticks = %d, tick errors = %d", sum.Ticks, sum.TickErrors)
	}
	if sum.ChangesApplied <= 0 || sum.EventsPublished != sum.ChangesApplied {
		t.Errorf("changes applied = %d, events published = %d", sum.ChangesApplied, sum.EventsPublished)
	}
	if sum.PendingPlayers != 0 {
		t.Errorf("pending = %d players", sum.PendingPlayers)
	}
	if sum.ChatSent == 0 || sum.ChatHandled != sum.ChatSent || sum.ChatLost != 0 || sum.DeadLetters != 0 {
		t.Errorf("chat sent %d, handled %d, lost %d, dead letters %d", sum.ChatSent, sum.ChatHandled, sum.ChatLost, sum.DeadLetters)
	}
	if sum.Ticks >= 2 && sum.CacheHitRatio <= 0 {
		t.Errorf("cache hit ratio = %v after %d ticks", sum.CacheHitRatio, sum.Ticks)
	}
}

// watchedNATS starts a NATS server for t and connects the test's own client to it, to watch
// what a simulation publishes or to send it messages; it returns the server's URL and the
// client (closed at the end of t).
func watchedNATS(t *testing.T) (string, *nats.Conn) {
	t.Helper()
	url := testnats.Start(t).ClientURL()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return url, nc
}
