package flux_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testlog"
)

// failTwice runs a tick whose apply fails and a Stop whose final flush fails until its
// deadline.
func failTwice(t *testing.T, cfg flux.RunnerConfig) {
	t.Helper()
	b := memoryBackend(t, scenarioPlayers()...)
	flaky := &flakyStore{PlayerStore: b.store, failApply: 1 << 30}
	r, err := flux.NewRunner(flaky, memoryRooms(t, scenarioRooms()...), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := r.Tick(ctx, rtNight); !errors.Is(err, flux.ErrApplyFailed) {
		t.Fatalf("tick: %v", err)
	}
	if err := r.Stop(ctx); !errors.Is(err, flux.ErrApplyFailed) {
		t.Fatalf("stop: %v", err)
	}
	if err := r.Close(); !errors.Is(err, flux.ErrApplyFailed) {
		t.Fatalf("close after a failed stop: %v, want the same error", err)
	}
}

// TestRunnerLogger: the configured zerolog.Logger value gets one structured line per failed
// tick and per failed final flush, with constant messages and the runner's fields.
func TestRunnerLogger(t *testing.T) {
	t.Parallel()
	var out testlog.Buffer
	failTwice(t, flux.RunnerConfig{RunnerID: "game-7", Logger: out.Logger()})
	lines := out.Lines(t)
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2: %v", len(lines), lines)
	}
	for i, want := range []struct{ level, msg string }{{"warn", "flux tick failed"}, {"error", "flux final flush gave up"}} {
		l := lines[i]
		if l["level"] != want.level || l["message"] != want.msg || l["component"] != "flux.runner" ||
			l["runner_id"] != "game-7" || !strings.Contains(l["error"].(string), "injected") || l["pending_players"] != 5.0 {
			t.Errorf("line %d: %v", i, l)
		}
	}
	if want := float64(flux.TickNumber(rtNight, time.Minute)); lines[0]["tick"] != want {
		t.Errorf("tick %v, want %v", lines[0]["tick"], want)
	}
}

// TestRunnerZeroLogger: the zero zerolog.Logger (no writer) is disabled — the logger the
// Runner derives from it too — so a Runner configured without one logs nothing and does not
// fail on the paths that log.
func TestRunnerZeroLogger(t *testing.T) {
	t.Parallel()
	var zero zerolog.Logger
	derived := zero.With().Str("component", "flux.runner").Logger()
	for _, l := range []zerolog.Logger{zero, derived} {
		if l.Error() != nil || l.Warn() != nil { // a disabled logger hands out no event
			t.Fatal("a zero zerolog.Logger is enabled")
		}
	}
	failTwice(t, flux.RunnerConfig{})
}
