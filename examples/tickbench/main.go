// Command tickbench reproduces the audit's measurement on a real PostgreSQL. For each
// player count it ticks the same world, interleaved tick by tick, by the library's
// blocking flux tick (W1), its floor — the hand-written tick (the same load, evaluation
// and write with pgx, no Runner) — and the older in-memory floor (evaluation plus the same
// write), the library's non-blocking mode (Start, Step: the caller's stall, the durable
// lag) beside the pure evaluation, and on the first -seed-ticks ticks the audit's two
// patterns: per-player room reads with 3 flushes (its description), and with one UPDATE
// per change (W2, what it found). Every path's changes (player, old, new lucidity) are
// compared by value each tick; tickbench fails if any differ.
//
//	go run ./examples/tickbench -players 10,100,1000,10000 -ticks 100 -seed-ticks 40 -chart docs/tickbench.png
//
// The database is -database-url, else GAMEPERSIST_DATABASE_URL, else
// postgres://postgres@127.0.0.1:5432/postgres. Everything is created in a schema of its own
// (dropped at the end), so it is safe to run beside the tests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/gamepersist/gamepersist/internal/workload/tickload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tickbench:", err)
		os.Exit(1)
	}
}

type options struct {
	players     []int
	rooms       int
	ticks       int
	seedTicks   int
	databaseURL string
	jsonOut     bool
	csvPath     string
	chartPath   string
	seed        uint64
	// tamper, when set (tests only), may alter each sample before the comparison.
	tamper func(tick int, p tickload.Path, s *tickload.Sample)
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("tickbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	players := fs.String("players", "10,100,1000,10000", "comma-separated player counts to measure")
	fs.IntVar(&o.rooms, "rooms", 2000, "rooms in the world (fewer when there are fewer players: players/5, at least 10)")
	fs.IntVar(&o.ticks, "ticks", 60, "ticks per player count of the library, its floors, the non-blocking Step and the evaluation")
	fs.IntVar(&o.seedTicks, "seed-ticks", 20, "the audit's two patterns run on the first this many ticks (0: every tick); they are slow at 10,000 players")
	fs.StringVar(&o.databaseURL, "database-url", "", "PostgreSQL URL (default: $GAMEPERSIST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres)")
	fs.BoolVar(&o.jsonOut, "json", false, "print one JSON object per player count instead of the table")
	fs.StringVar(&o.csvPath, "csv", "", "write every tick's duration to this CSV file")
	fs.StringVar(&o.chartPath, "chart", "", "draw tick time over tick number (log scale) to this PNG file")
	var seed uint
	fs.UintVar(&seed, "seed", 1, "world seed")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: tickbench [flags]\n\nReproduces the audit's flux-tick measurement: the library (blocking and non-blocking) vs its floors vs the audit's per-player patterns, every path's changes compared by value each tick.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.seed = uint64(seed)
	for _, f := range strings.Split(*players, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return o, fmt.Errorf("-players: %q is not a positive count", f)
		}
		o.players = append(o.players, n)
	}
	if o.ticks <= 0 || o.seedTicks < 0 || o.rooms <= 0 {
		return o, errors.New("-ticks and -rooms must be positive, -seed-ticks not negative")
	}
	if o.seedTicks == 0 {
		o.seedTicks = o.ticks
	}
	if o.seedTicks > o.ticks {
		o.seedTicks = o.ticks
	}
	return o, nil
}
