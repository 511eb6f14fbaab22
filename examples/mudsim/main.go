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
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"
)

func main() {
	cfg, level, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
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
		cfg.Logger.Error().Err(err).Msg("mudsim failed")
		stop()
		os.Exit(1)
	}
}
