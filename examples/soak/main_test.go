package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// shortConfig is a soak small enough for a test under -race: 3 servers × 60 players,
// game minutes of at least 100 ms.
func shortConfig(t *testing.T, d time.Duration) Config {
	t.Helper()
	return Config{Duration: d, Servers: 3, PlayersPerServer: 60, Seed: 7, Minute: 100 * time.Millisecond,
		DatabaseURL: testdb.URL(t), Quiet: true, LibLogLevel: zerolog.Disabled}
}

// TestSoakShort runs a short soak under faults and asserts every loss figure is 0, the
// faults were injected, and everything was given back after Close.
func TestSoakShort(t *testing.T) {
	cfg := shortConfig(t, 12*time.Second)
	res, err := run(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.failed() {
		t.Fatalf("loss figures not zero: lost %d doubled %d stale %d dead letters %d events %d goroutines %d backends %d (%v)",
			res.LostChanges, res.DoubledChanges, res.StaleReads, res.DeadLettersLost, res.EventsLost,
			res.GoroutinesAfterClose, res.BackendsAfterClose, res.Differences)
	}
	faults := 0
	for _, n := range res.Faults {
		faults += n
	}
	if res.Minutes < 10 || faults == 0 || res.EventsPublished == 0 || res.PoisonPublished == 0 {
		t.Fatalf("the run did not exercise enough: %d minutes, %d faults, %d events, %d poison", res.Minutes, faults, res.EventsPublished, res.PoisonPublished)
	}
}

// TestCheckerCatchesSkippedMinute skips one game minute on every server through the test
// hook: the comparison with the replay must report lost changes, and no doubled ones.
func TestCheckerCatchesSkippedMinute(t *testing.T) {
	cfg := shortConfig(t, 3*time.Second)
	cfg.NoFaults = true
	cfg.hooks.skipMinute = 3
	res, err := run(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if res.LostChanges == 0 || res.DoubledChanges != 0 || !res.failed() {
		t.Fatalf("a skipped minute gave lost %d, doubled %d, failed %v", res.LostChanges, res.DoubledChanges, res.failed())
	}
	var out bytes.Buffer
	if code := exitCode(res, nil, &out); code != 1 {
		t.Fatalf("exit status %d for a lossy run, want 1", code)
	}
}

// exitCode is execute's verdict for a result already computed.
func exitCode(res result, err error, w *bytes.Buffer) int {
	if werr := writeJSON(w, res); werr != nil || err != nil || res.failed() {
		return 1
	}
	return 0
}

// TestCompareFlux checks the classification of differences: a later tick or more
// evaluations in the same room is doubled, anything else lost.
func TestCompareFlux(t *testing.T) {
	want := map[string]flux.PlayerState{
		"same":    {Player: flux.Player{ID: "same", Lucidity: 50, Flux: flux.TickState{Tick: 10, Carry: flux.Carry{RoomID: "a", Evaluations: 3}}}, Tier: "lucid"},
		"behind":  {Player: flux.Player{ID: "behind", Lucidity: 50, Flux: flux.TickState{Tick: 10, Carry: flux.Carry{RoomID: "a", Evaluations: 3}}}, Tier: "lucid"},
		"twice":   {Player: flux.Player{ID: "twice", Lucidity: 50, Flux: flux.TickState{Tick: 10, Carry: flux.Carry{RoomID: "a", Evaluations: 3}}}, Tier: "lucid"},
		"missing": {Player: flux.Player{ID: "missing", Lucidity: 50}, Tier: "lucid"},
	}
	got := map[string]dbPlayer{
		"same":   {lucidity: 50, tier: "lucid", state: flux.TickState{Tick: 10, Carry: flux.Carry{RoomID: "a", Evaluations: 3}}},
		"behind": {lucidity: 51, tier: "lucid", state: flux.TickState{Tick: 10, Carry: flux.Carry{RoomID: "a", Evaluations: 2}}},
		"twice":  {lucidity: 49, tier: "lucid", state: flux.TickState{Tick: 10, Carry: flux.Carry{RoomID: "a", Evaluations: 4}}},
	}
	c := compareFlux(got, want)
	if c.lost != 2 || c.doubled != 1 {
		t.Fatalf("lost %d doubled %d, want 2 and 1: %v", c.lost, c.doubled, c.examples)
	}
}

// TestScheduleIsSeeded checks that the same seed gives the same inputs and another seed
// other ones.
func TestScheduleIsSeeded(t *testing.T) {
	cfg := Config{Servers: 2, PlayersPerServer: 50}
	a, b, c := testSchedule(cfg, 1), testSchedule(cfg, 1), testSchedule(cfg, 2)
	differ := false
	for range 30 {
		x, y, z := a.nextMinute(), b.nextMinute(), c.nextMinute()
		if len(x.Presence) != len(y.Presence) || len(x.Rooms) != len(y.Rooms) || len(x.Faults) != len(y.Faults) || len(x.Trades) != len(y.Trades) {
			t.Fatalf("minute %d: same seed, different inputs", x.Minute)
		}
		for i := range x.Presence {
			if x.Presence[i] != y.Presence[i] {
				t.Fatalf("minute %d: same seed, different presence", x.Minute)
			}
		}
		differ = differ || len(x.Presence) != len(z.Presence)
	}
	if !differ {
		t.Fatal("another seed gave the same inputs")
	}
}

// TestFlagsRedactPassword checks that neither -h nor a flag error prints a password.
func TestFlagsRedactPassword(t *testing.T) {
	var stderr bytes.Buffer
	_, _ = parseFlags([]string{"-database-url", "postgres://u:s3cret@127.0.0.1:1/db", "-h"}, &stderr)
	if strings.Contains(stderr.String(), "s3cret") {
		t.Fatalf("usage printed the password: %s", stderr.String())
	}
	var out, errOut bytes.Buffer
	code := realMain([]string{"-database-url", "postgres://u:s3cret@%zz/db"}, &out, &errOut)
	if code != 2 || strings.Contains(errOut.String(), "s3cret") {
		t.Fatalf("bad URL: status %d, stderr %q", code, errOut.String())
	}
	if got := redactURL("postgres://u:s3cret@h/db?password=hunter2"); strings.Contains(got, "s3cret") || strings.Contains(got, "hunter2") {
		t.Fatalf("redactURL left a secret: %s", got)
	}
}

// TestEveryPasswordFormMasked: -h with a default URL in every password form libpq and pgx
// accept — an unescaped comma in the URL password, sslpassword in the query and in
// key=value form — and the "does not answer" error print none of them.
func TestEveryPasswordFormMasked(t *testing.T) {
	const pw, sslpw = "pa,ss-w0rd", "k3y,pa55"
	for _, raw := range []string{
		"postgres://u:" + pw + "@127.0.0.1:1/db?sslpassword=" + sslpw + "&connect_timeout=1",
		"host=127.0.0.1 port=1 user=u password='" + pw + "' sslpassword=" + sslpw + " connect_timeout=1",
	} {
		t.Setenv(EnvDatabaseURL, raw)
		var stderr bytes.Buffer
		_, _ = parseFlags([]string{"-h"}, &stderr)
		if strings.Contains(stderr.String(), "pa,ss") || strings.Contains(stderr.String(), "k3y") {
			t.Errorf("-h prints a password of %q:\n%s", raw, stderr.String())
		}
		pool, err := openAdmin(context.Background(), raw, "soak-test")
		if err == nil {
			pool.Close()
			t.Fatalf("port 1 answered")
		}
		if !strings.Contains(err.Error(), "does not answer") || strings.Contains(err.Error(), "pa,ss") || strings.Contains(err.Error(), "k3y") {
			t.Errorf("error for %q: %v", raw, err)
		}
	}
}
