package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/internal/redact"
)

// Defaults of Config, also the flags' defaults.
const (
	DefaultDuration         = 60 * time.Second
	DefaultServers          = 3
	DefaultPlayersPerServer = 2000
	DefaultSeed             = 1
	DefaultMinute           = 250 * time.Millisecond
	// DefaultDatabaseURL is used when neither -database-url nor GAMEPERSIST_DATABASE_URL
	// says otherwise.
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	// EnvDatabaseURL names the environment variable that points the soak at a database.
	EnvDatabaseURL = "GAMEPERSIST_DATABASE_URL"
	// natsNodes is the size of the embedded NATS cluster.
	natsNodes = 3
)

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("soak: invalid config")

// Config is everything one soak run needs.
type Config struct {
	// Duration is how long the game runs before the final catch-up and checks.
	Duration time.Duration
	// Servers is the number of game servers (each a Runner, a Cached, a Bridge and an
	// invalidator on its own pool and NATS connection).
	Servers int
	// PlayersPerServer sizes the world: Servers × PlayersPerServer players.
	PlayersPerServer int
	// Seed seeds the world, the inputs and the fault schedule.
	Seed uint64
	// Minute is the least wall time one game minute takes (the barrier may take longer).
	Minute time.Duration
	// DatabaseURL is the PostgreSQL the soak runs on, in its own schema.
	DatabaseURL string
	// Keep leaves the schema in place at the end.
	Keep bool
	// JSON prints one JSON object instead of the table.
	JSON bool
	// NoFaults runs the same schedule without injecting any fault.
	NoFaults bool
	// Free steps every live server each minute without the per-minute barrier: no Sync
	// until the end (the non-blocking mode as a game that never syncs uses it). A
	// diagnosis mode: each server then evaluates the load it has, which may predate the
	// minute's moves, so its comparison with the replay reports those differences too.
	Free bool
	// Quiet suppresses the progress lines.
	Quiet bool
	// LibLogLevel is the level of the library's own log lines (connection events,
	// failed writes, dead letters): "error" by default, the faults make many warnings.
	LibLogLevel zerolog.Level

	// hooks are test-only ways to break the run on purpose (see hooks).
	hooks hooks
}

// hooks are deliberate faults a test injects to prove the checks catch them.
type hooks struct {
	// skipMinute, when > 0, makes no server step that game minute: a lost minute.
	skipMinute int
	// dropPresence, when not empty, drops that player's presence writes from the live
	// run (the replay still sees them): a lost input.
	dropPresence string
}

// validate reports the first problem of c.
func (c Config) validate() error {
	switch {
	case c.Duration <= 0:
		return fmt.Errorf("%w: -duration must be > 0", ErrInvalidConfig)
	case c.Servers < 1 || c.Servers > 16:
		return fmt.Errorf("%w: -servers must be within 1..16", ErrInvalidConfig)
	case c.PlayersPerServer < 1 || c.PlayersPerServer > 100_000:
		return fmt.Errorf("%w: -players-per-server must be within 1..100000", ErrInvalidConfig)
	case c.Minute < time.Millisecond:
		return fmt.Errorf("%w: -minute must be >= 1ms", ErrInvalidConfig)
	}
	if _, err := pgxpool.ParseConfig(c.DatabaseURL); err != nil {
		return fmt.Errorf("%w: database URL %s does not parse", ErrInvalidConfig, redactURL(c.DatabaseURL))
	}
	return nil
}

// parseFlags parses the command line into a Config. -h prints the usage and returns
// flag.ErrHelp.
func parseFlags(args []string, stderr io.Writer) (Config, error) {
	dbDefault := os.Getenv(EnvDatabaseURL)
	if dbDefault == "" {
		dbDefault = DefaultDatabaseURL
	}
	var c Config
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `soak: several game servers, a 3-node NATS cluster and PostgreSQL under seeded faults,
checked against a fault-free replay of the same seeded inputs.

Exit status 0 when every loss figure is 0, 1 when one is not (or the run failed),
2 for a bad flag.

Usage: go run ./examples/soak [flags]`)
		fs.PrintDefaults()
	}
	fs.DurationVar(&c.Duration, "duration", DefaultDuration, "how long the game runs before the catch-up and the checks")
	fs.IntVar(&c.Servers, "servers", DefaultServers, "number of game servers")
	fs.IntVar(&c.PlayersPerServer, "players-per-server", DefaultPlayersPerServer, "players per game server (the world holds servers × this)")
	fs.Uint64Var(&c.Seed, "seed", DefaultSeed, "seed of the world, the inputs and the fault schedule")
	fs.DurationVar(&c.Minute, "minute", DefaultMinute, "least wall time of one game minute")
	dbURL := &redact.URLFlag{URL: dbDefault}
	fs.Var(dbURL, "database-url", "PostgreSQL URL (default $"+EnvDatabaseURL+", else the local server; a password is never printed)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the soak's schema at the end (it is dropped otherwise)")
	fs.BoolVar(&c.JSON, "json", false, "print one JSON object instead of the summary table")
	fs.BoolVar(&c.NoFaults, "no-faults", false, "run the schedule without injecting faults")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress lines")
	fs.BoolVar(&c.Free, "free", false, "step every server each minute without the per-minute Sync barrier; sync only at the end (diagnosis)")
	libLevel := fs.String("lib-log-level", "error", "level of the library's own log lines: debug, info, warn, error, disabled")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("%w: unexpected arguments %q", ErrInvalidConfig, fs.Args())
	}
	c.DatabaseURL = dbURL.URL
	lvl, err := zerolog.ParseLevel(*libLevel)
	if err != nil {
		return Config{}, fmt.Errorf("%w: -lib-log-level: %w", ErrInvalidConfig, err)
	}
	c.LibLogLevel = lvl
	return c, c.validate()
}

// redactURL masks any password in a database URL, connection string or error text
// (internal/redact, the module's one redaction).
func redactURL(s string) string { return redact.Text(s) }

// redactErr is err's text with any password redacted, on one line.
func redactErr(err error) string {
	return strings.Join(strings.Fields(redactURL(err.Error())), " ")
}
