// Command tickbench reproduces the audit's measurement on a real PostgreSQL: for each
// player count it runs the library's flux tick (W1), the floor (the pure evaluation plus
// the same single write issued directly with pgx) and the audit's pattern (W2: one room
// query per player and one UPDATE per changed player) over the same world, interleaved
// tick by tick, and reports p50/p99 tick times, statements per tick, the ratio to the
// floor and the speed-up over the audit's pattern.
//
//	go run ./examples/tickbench -players 10,100,1000,10000 -ticks 60 -csv ticks.csv -chart ticks.png
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
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("tickbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	players := fs.String("players", "10,100,1000,10000", "comma-separated player counts to measure")
	fs.IntVar(&o.rooms, "rooms", 2000, "rooms in the world (fewer when there are fewer players: players/5, at least 10)")
	fs.IntVar(&o.ticks, "ticks", 60, "ticks of the library and the floor per player count")
	fs.IntVar(&o.seedTicks, "seed-ticks", 0, "ticks of the audit's pattern per player count (0: same as -ticks); it is slow at 10,000 players")
	fs.StringVar(&o.databaseURL, "database-url", "", "PostgreSQL URL (default: $GAMEPERSIST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres)")
	fs.BoolVar(&o.jsonOut, "json", false, "print one JSON object per player count instead of the table")
	fs.StringVar(&o.csvPath, "csv", "", "write every tick's duration to this CSV file")
	fs.StringVar(&o.chartPath, "chart", "", "draw tick time over tick number (log scale) to this PNG file")
	var seed uint
	fs.UintVar(&seed, "seed", 1, "world seed")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: tickbench [flags]\n\nReproduces the audit's flux-tick measurement: library vs floor vs the audit's per-player pattern.\n\nFlags:")
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
