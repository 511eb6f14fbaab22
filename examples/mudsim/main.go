// Command mudsim is a small simulated MUD server built on gamepersist: a generated world,
// wandering players, the passive lucidity flux ticking in the program's own loop, lucidity
// events and chat over NATS, one structured log line per tick and a clean shutdown.
//
//	go run ./examples/mudsim -h
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"
)

// exitStatus reports err and returns the exit status for it. A setting that does not
// parse (2) or a database that refuses (1) is found before anything starts: one plain line
// on stderr says what and what to do. Any later failure is a log line (1).
func exitStatus(err error, stderr io.Writer, log zerolog.Logger) int {
	switch {
	case errors.Is(err, ErrInvalidConfig):
		fmt.Fprintln(stderr, err)
		return 2
	case errors.Is(err, ErrDatabase):
		fmt.Fprintln(stderr, err)
		return 1
	}
	log.Error().Err(err).Msg("mudsim failed")
	return 1
}

func main() {
	cfg, level, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if errors.Is(err, ErrInvalidConfig) {
		fmt.Fprintln(os.Stderr, err) // already "mudsim: invalid config: …"
		os.Exit(2)
	}
	if err != nil { // the flag package's own message; it printed the usage too
		fmt.Fprintln(os.Stderr, "mudsim:", err)
		os.Exit(2)
	}
	cfg.Logger = zerolog.New(os.Stderr).Level(level).With().Timestamp().Logger()

	// The first SIGINT/SIGTERM ends ctx: the loop stops and everything is flushed and
	// closed. Once ctx is done, a second signal kills the program the default way.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	defer stop()

	if err := run(ctx, cfg, os.Stdout); err != nil {
		stop()
		os.Exit(exitStatus(err, os.Stderr, cfg.Logger))
	}
}
