package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/gamepersist/gamepersist/natsbridge"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/metric"

	"github.com/gamepersist/gamepersist/internal/redact"
)

// Defaults of Config, also the flags' defaults.
const (
	DefaultPlayers     = 500
	DefaultRooms       = 200
	DefaultTick        = time.Second
	DefaultGameStep    = time.Minute
	DefaultGameStart   = "22:00"
	DefaultChatPerTick = 5
	DefaultSchema      = "mudsim"
	DefaultDBTimeout   = 2 * time.Second
	DefaultSeed        = 1
	// DefaultDuration is how long the program runs when neither -duration nor -ticks is
	// given: a finite run that ends with its summary and exit status 0.
	DefaultDuration = 30 * time.Second
	// DefaultDatabaseURL is the local server tried when neither -database-url nor
	// GAMEPERSIST_DATABASE_URL says otherwise.
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres"
	// EnvDatabaseURL names the environment variable that points the program at a database.
	EnvDatabaseURL = "GAMEPERSIST_DATABASE_URL"
)

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("mudsim: invalid config")

// Config is everything the simulation needs. Zero fields take the defaults above (see
// withDefaults), except Duration and Ticks (0: until ctx ends), ChatPerTick (0: no chat), Seed, and
// DatabaseURL and NATSURL, whose empty value means "embedded": the in-memory stores and an
// in-process NATS server.
type Config struct {
	// Players and Rooms size the generated world.
	Players, Rooms int
	// Tick is the wall-clock interval between flux ticks.
	Tick time.Duration
	// GameStep is the game time that passes per tick (flux rules count game minutes), and
	// GameStart the game's clock time of day ("15:04") at the first tick.
	GameStep  time.Duration
	GameStart string
	// Duration stops the simulation after that long, Ticks after that many ticks; 0 and 0
	// run until ctx ends (a signal). The command line's default is DefaultDuration.
	Duration time.Duration
	Ticks    int64
	// DatabaseURL is the PostgreSQL to use; empty runs on the in-memory stores, and so does
	// an address where nothing listens (connection refused, no route: said in one log
	// line). A database that answers but refuses (wrong role or password, missing
	// database), does not answer within DBTimeout, or a URL that does not parse is an
	// error (ErrDatabase, ErrInvalidConfig) before anything starts.
	DatabaseURL string
	DBTimeout   time.Duration
	// Schema is the PostgreSQL schema the simulation owns: created if missing, its tables
	// emptied and reseeded at start. It must be a plain lower-case identifier, and not
	// public, information_schema or pg_*.
	Schema string
	// Cleanup drops Schema (with everything in it) at the end of the run.
	Cleanup bool
	// NATSURL is the NATS server to use; empty starts one in-process.
	NATSURL string
	// ChatPerTick is how many chat lines the simulated clients say per tick.
	ChatPerTick int
	// Seed seeds the world and the players' walk.
	Seed uint64
	// Logger receives one line per tick and the lifecycle events (zero value: nothing).
	Logger zerolog.Logger
	// MetricsAddr, when not empty, is the TCP address ("127.0.0.1:9464", ":0") where the
	// run serves its metrics in Prometheus format at /metrics while it runs (the flux
	// Runner's, the room cache's and the Bridge's OpenTelemetry instruments).
	MetricsAddr string

	// meterProvider is set by simulate when MetricsAddr is: the provider given to the
	// libraries (nil: none, their no-op default).
	meterProvider metric.MeterProvider
}

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// withDefaults returns c with every zero field (but the URLs) set to its default.
func (c Config) withDefaults() Config {
	if c.Players == 0 {
		c.Players = DefaultPlayers
	}
	if c.Rooms == 0 {
		c.Rooms = DefaultRooms
	}
	if c.Tick == 0 {
		c.Tick = DefaultTick
	}
	if c.GameStep == 0 {
		c.GameStep = DefaultGameStep
	}
	if c.GameStart == "" {
		c.GameStart = DefaultGameStart
	}
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
	if c.DBTimeout == 0 {
		c.DBTimeout = DefaultDBTimeout
	}
	return c
}

// validate reports the first problem of a defaulted config.
func (c Config) validate() error {
	switch {
	case c.Players < 0 || c.Rooms < 1:
		return fmt.Errorf("%w: need players >= 0 and rooms >= 1", ErrInvalidConfig)
	case c.Tick < time.Millisecond || c.GameStep < 0 || c.Duration < 0 || c.Ticks < 0 || c.DBTimeout < 0:
		return fmt.Errorf("%w: tick must be >= 1ms; game-step, duration, ticks and db-timeout >= 0", ErrInvalidConfig)
	case c.ChatPerTick < 0:
		return fmt.Errorf("%w: chat must be >= 0", ErrInvalidConfig)
	case !identRE.MatchString(c.Schema):
		return fmt.Errorf("%w: schema must match %s", ErrInvalidConfig, identRE)
	case c.Schema == "public" || c.Schema == "information_schema" || strings.HasPrefix(c.Schema, "pg_"):
		return fmt.Errorf("%w: schema %s is not mudsim's to empty or drop: name a schema of its own", ErrInvalidConfig, c.Schema)
	}
	if _, err := c.gameStart(); err != nil {
		return err
	}
	if c.DatabaseURL != "" {
		if err := checkDatabaseURL(c.DatabaseURL); err != nil {
			return err
		}
	}
	if c.NATSURL != "" {
		if err := (natsbridge.ConnectConfig{URLs: []string{c.NATSURL}}).Validate(); err != nil {
			return fmt.Errorf("%w: nats URL: %w", ErrInvalidConfig, err)
		}
	}
	return nil
}

// gameStart is the game time of the first tick: GameStart on 2026-01-01, UTC.
func (c Config) gameStart() (time.Time, error) {
	hm, err := time.Parse("15:04", c.GameStart)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: game-start must be HH:MM", ErrInvalidConfig)
	}
	return time.Date(2026, 1, 1, hm.Hour(), hm.Minute(), 0, 0, time.UTC), nil
}

// parseFlags parses the command line into a Config and a log level. -h prints the usage to
// stderr and returns flag.ErrHelp.
func parseFlags(args []string, stderr io.Writer) (Config, zerolog.Level, error) {
	dbDefault := os.Getenv(EnvDatabaseURL)
	if dbDefault == "" {
		dbDefault = DefaultDatabaseURL
	}
	var c Config
	fs := flag.NewFlagSet("mudsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `mudsim: a small simulated MUD server on gamepersist.

It generates a world, lets players wander, runs the lucidity flux tick every -tick,
publishes a lucidity_change event per change and handles the simulated clients' chat
over NATS, logging one JSON line per tick (stderr) and a summary at the end (stdout).
It stops after -duration (30s), after -ticks, or on SIGINT/SIGTERM, flushing everything
first, and exits 0 when everything was written and handled. On PostgreSQL it owns the
schema -schema (mudsim): created, emptied and reseeded at start, dropped at the end with
-cleanup. Nothing listening at the database address: the in-memory stores; a database
that refuses (role, password, database name) or a URL that does not parse: exit 1 or 2
with one line, before anything starts.

Usage: go run ./examples/mudsim [flags]`)
		fs.PrintDefaults()
	}
	fs.IntVar(&c.Players, "players", DefaultPlayers, "number of players")
	fs.IntVar(&c.Rooms, "rooms", DefaultRooms, "number of rooms")
	fs.DurationVar(&c.Tick, "tick", DefaultTick, "wall-clock interval between flux ticks")
	fs.DurationVar(&c.GameStep, "game-step", DefaultGameStep, "game time that passes per tick (flux counts game minutes)")
	fs.StringVar(&c.GameStart, "game-start", DefaultGameStart, "game clock time of day (HH:MM, UTC) at the first tick; day is 06:00-17:59")
	fs.DurationVar(&c.Duration, "duration", DefaultDuration, "stop after this long (0: run until SIGINT/SIGTERM; with -ticks alone, no time limit)")
	fs.Int64Var(&c.Ticks, "ticks", 0, "stop after this many ticks (0: no limit)")
	dbURL := &redact.URLFlag{URL: dbDefault}
	fs.Var(dbURL, "database-url",
		"PostgreSQL URL (default $"+EnvDatabaseURL+", else the local server; a password is never printed); empty, or nothing listening there: in-memory stores")
	fs.DurationVar(&c.DBTimeout, "db-timeout", DefaultDBTimeout, "how long to wait for the database to answer at start")
	fs.StringVar(&c.Schema, "schema", DefaultSchema, "PostgreSQL schema the simulation owns (created, emptied and reseeded at start)")
	fs.BoolVar(&c.Cleanup, "cleanup", false, "drop -schema (and everything in it) at the end of the run")
	fs.StringVar(&c.NATSURL, "nats-url", "", "NATS server URL (empty: an embedded in-process server)")
	fs.IntVar(&c.ChatPerTick, "chat", DefaultChatPerTick, "chat lines the simulated clients say per tick")
	fs.Uint64Var(&c.Seed, "seed", DefaultSeed, "seed of the world and of the players' walk")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve metrics in Prometheus format at http://ADDR/metrics during the run (empty: off)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error, disabled")
	if err := fs.Parse(args); err != nil {
		return Config{}, zerolog.NoLevel, err
	}
	c.DatabaseURL = dbURL.URL
	durationSet := false
	fs.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })
	if c.Ticks > 0 && !durationSet {
		c.Duration = 0 // -ticks alone decides when the run ends
	}
	if fs.NArg() > 0 {
		return Config{}, zerolog.NoLevel, fmt.Errorf("%w: unexpected arguments %q", ErrInvalidConfig, fs.Args())
	}
	lvl, err := zerolog.ParseLevel(*level)
	if err != nil {
		return Config{}, zerolog.NoLevel, fmt.Errorf("%w: -log-level: %w", ErrInvalidConfig, err)
	}
	return c, lvl, nil
}

// redactURL replaces any password in a database URL or connection string (or in an error
// text quoting one) with the module's mask (internal/redact).
func redactURL(s string) string { return redact.Text(s) }

// checkDatabaseURL reports, wrapping ErrInvalidConfig, why raw does not parse as a pgx
// connection string, on one line and without the password: pgx hides a password it could
// parse, but its parser's reason may quote a piece of one it could not. So a URL with a
// password is judged with the password replaced; if that parses, the password is the
// problem, and the message says so without quoting it.
func checkDatabaseURL(raw string) error {
	_, err := pgxpool.ParseConfig(raw)
	if err == nil {
		return nil
	}
	if red := redactURL(raw); red != raw {
		if _, err = pgxpool.ParseConfig(red); err == nil {
			return fmt.Errorf("%w: database URL %s: its password does not parse (percent-encode @ : / ? # %% in it)",
				ErrInvalidConfig, red)
		}
	}
	return fmt.Errorf("%w: database URL: %s", ErrInvalidConfig, oneLine(redactURL(err.Error())))
}

// oneLine joins a multi-line error text (pgx reports each connection attempt on a line of
// its own) into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
