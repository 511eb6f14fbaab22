package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/rs/zerolog"
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
	// run until ctx ends (a signal).
	Duration time.Duration
	Ticks    int64
	// DatabaseURL is the PostgreSQL to use; empty runs on the in-memory stores, and so does
	// a database that does not answer within DBTimeout (said in one log line).
	DatabaseURL string
	DBTimeout   time.Duration
	// Schema is the PostgreSQL schema the simulation owns: created if missing, its tables
	// emptied and reseeded at start. It must be a plain lower-case identifier.
	Schema string
	// NATSURL is the NATS server to use; empty starts one in-process.
	NATSURL string
	// ChatPerTick is how many chat lines the simulated clients say per tick.
	ChatPerTick int
	// Seed seeds the world and the players' walk.
	Seed uint64
	// Logger receives one line per tick and the lifecycle events (zero value: nothing).
	Logger zerolog.Logger
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
	}
	if _, err := c.gameStart(); err != nil {
		return err
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
It stops on SIGINT/SIGTERM, after -duration or after -ticks, flushing everything first.

Usage: go run ./examples/mudsim [flags]`)
		fs.PrintDefaults()
	}
	fs.IntVar(&c.Players, "players", DefaultPlayers, "number of players")
	fs.IntVar(&c.Rooms, "rooms", DefaultRooms, "number of rooms")
	fs.DurationVar(&c.Tick, "tick", DefaultTick, "wall-clock interval between flux ticks")
	fs.DurationVar(&c.GameStep, "game-step", DefaultGameStep, "game time that passes per tick (flux counts game minutes)")
	fs.StringVar(&c.GameStart, "game-start", DefaultGameStart, "game clock time of day (HH:MM, UTC) at the first tick; day is 06:00-17:59")
	fs.DurationVar(&c.Duration, "duration", 0, "stop after this long (0: run until SIGINT/SIGTERM)")
	fs.Int64Var(&c.Ticks, "ticks", 0, "stop after this many ticks (0: no limit)")
	fs.StringVar(&c.DatabaseURL, "database-url", dbDefault,
		"PostgreSQL URL (default $"+EnvDatabaseURL+", else the local server); empty or unreachable: in-memory stores")
	fs.DurationVar(&c.DBTimeout, "db-timeout", DefaultDBTimeout, "how long to wait for the database to answer at start")
	fs.StringVar(&c.Schema, "schema", DefaultSchema, "PostgreSQL schema the simulation owns (emptied and reseeded at start)")
	fs.StringVar(&c.NATSURL, "nats-url", "", "NATS server URL (empty: an embedded in-process server)")
	fs.IntVar(&c.ChatPerTick, "chat", DefaultChatPerTick, "chat lines the simulated clients say per tick")
	fs.Uint64Var(&c.Seed, "seed", DefaultSeed, "seed of the world and of the players' walk")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error, disabled")
	if err := fs.Parse(args); err != nil {
		return Config{}, zerolog.NoLevel, err
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
