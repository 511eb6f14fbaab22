// Command soak runs several game servers, a 3-node NATS cluster with JetStream and one
// PostgreSQL under seeded faults for a chosen duration, then checks the whole against a
// fault-free replay of the same seeded inputs: every player's lucidity and flux state,
// stale room reads, durable events and dead letters, goroutines and database backends
// after Close, heap peak.
//
//	go run ./examples/soak -duration 60s -json
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

// main runs the program and exits with its status.
func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs the program and returns its exit status: 0 when every loss figure is 0,
// 1 when one is not or the run failed, 2 for a bad flag.
func realMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, redactURL(err.Error()))
		return 2
	}
	log := zerolog.New(stderr).Level(zerolog.InfoLevel).With().Timestamp().Logger()
	// The first SIGINT/SIGTERM ends the game: the catch-up, the checks and the clean-up
	// still run. Once ctx is done, a second signal kills the program the default way.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	defer stop()
	return execute(ctx, cfg, log, stdout)
}

// execute runs one soak with cfg and prints its result; it returns the exit status.
func execute(ctx context.Context, cfg Config, log zerolog.Logger, stdout io.Writer) int {
	res, err := run(ctx, cfg, log)
	if err != nil {
		log.Error().Str("error", redactErr(err)).Msg("soak failed")
	}
	if cfg.JSON {
		err = errors.Join(err, writeJSON(stdout, res))
	} else {
		err = errors.Join(err, writeTable(stdout, res))
	}
	if err != nil || res.failed() {
		return 1
	}
	return 0
}
