package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/internal/testkit/pgcount"
	"github.com/gamepersist/gamepersist/internal/workload/tickload"
)

const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	return runOptions(ctx, o, stdout, stderr)
}

// runOptions is run after the flags are parsed.
func runOptions(ctx context.Context, o options, stdout, stderr io.Writer) (err error) {
	dbURL := o.databaseURL
	if dbURL == "" {
		dbURL = os.Getenv("GAMEPERSIST_DATABASE_URL")
	}
	if dbURL == "" {
		dbURL = defaultDatabaseURL
	}

	schema, cleanup, err := createSchema(ctx, dbURL)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cleanup()) }()
	cs, err := withSearchPath(dbURL, schema)
	if err != nil {
		return err
	}
	pool, counter, err := pgcount.NewPool(ctx, cs)
	if err != nil {
		return err
	}
	defer pool.Close()

	if !o.jsonOut {
		fmt.Fprintf(stdout, "tickbench: %d ticks per path (the audit's patterns: the first %d), players %v, schema %s\n", o.ticks, o.seedTicks, o.players, schema)
	}
	var results []result
	for i, n := range o.players {
		rooms := min(o.rooms, max(10, n/5))
		r, err := measure(ctx, pool, counter, tickload.Config{Players: n, Rooms: rooms, Seed: o.seed, Prefix: fmt.Sprintf("tb%d_", i)}, o, stderr)
		if err != nil {
			return fmt.Errorf("%d players: %w", n, err)
		}
		results = append(results, r)
		if !o.jsonOut {
			fmt.Fprintf(stdout, "  %6d players: library p50 %.3f ms, hand-written %.3f ms, stall %.3f ms; audit patterns p50 %.3f (3 flushes), %.3f ms (per-change UPDATE)\n",
				n, r.LibraryP50Ms, r.HandP50Ms, r.StallP50Ms, r.Flush3P50Ms, r.SeedPatternP50Ms)
		}
	}
	if o.jsonOut {
		err = writeJSON(stdout, results)
	} else {
		err = printTable(stdout, results)
	}
	if err != nil {
		return err
	}
	if o.csvPath != "" {
		if err := writeCSV(o.csvPath, results); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
	}
	if o.chartPath != "" {
		if err := drawChart(o.chartPath, results); err != nil {
			return fmt.Errorf("draw chart: %w", err)
		}
	}
	return mismatchError(results)
}

// mismatchError is nil when every path made the same changes on every tick of every
// player count, else an error listing the first mismatches.
func mismatchError(rs []result) error {
	var errs []error
	for _, r := range rs {
		if r.ChangesMatch {
			continue
		}
		errs = append(errs, fmt.Errorf("%d players: the paths made different changes on %d of %d ticks: %s",
			r.Players, r.mismatchedTicks, r.comparedTicks, strings.Join(r.mismatches, "; ")))
	}
	return errors.Join(errs...)
}

// blockingPaths run on every tick; auditPaths on the first seedTicks ticks.
var (
	blockingPaths = []tickload.Path{tickload.Library, tickload.Hand, tickload.Floor, tickload.Step, tickload.Evaluate}
	auditPaths    = []tickload.Path{tickload.SeedPattern, tickload.SeedFlush3}
)

// maxMismatches is how many differing ticks a run reports in full.
const maxMismatches = 5

// measure runs one player count: every tick runs the blocking paths and the
// non-blocking Step, and the audit's two patterns on the first seedTicks ticks, in an
// order rotated tick by tick; every path's changes are compared by value with the
// library's. A mismatch is written to stderr at once and recorded in r (the run goes on,
// so that every figure is still reported; run fails at the end).
func measure(ctx context.Context, pool *pgxpool.Pool, counter *pgcount.StatementCounter, cfg tickload.Config, o options, stderr io.Writer) (r result, err error) {
	w, err := tickload.Setup(ctx, pool, counter, cfg)
	if err != nil {
		return r, err
	}
	defer func() { err = errors.Join(err, w.Close()) }()
	r = result{Players: cfg.Players, Rooms: cfg.Rooms, Ticks: o.ticks, SeedTicks: o.seedTicks, ChangesMatch: true}
	var libStatements, libWrites, seedStatements, flush3RoundTrips, changes int64
	for tick := range o.ticks {
		paths := slices.Clone(blockingPaths)
		if tick < o.seedTicks {
			paths = append(paths, auditPaths...)
		}
		k := tick % len(paths)
		paths = append(paths[k:], paths[:k]...)
		got := make(map[tickload.Path]tickload.Sample, len(paths))
		for _, p := range paths {
			s, err := w.Run(ctx, p)
			if err != nil {
				return r, err
			}
			if o.tamper != nil {
				o.tamper(tick, p, &s)
			}
			got[p] = s
		}
		if err := tickload.Compare(tickload.Library, got); err != nil {
			r.ChangesMatch = false
			r.mismatchedTicks++
			if r.mismatchedTicks <= maxMismatches {
				fmt.Fprintf(stderr, "tickbench: CHANGES DIFFER, %d players, tick %d: %v\n", cfg.Players, tick+1, err)
				r.mismatches = append(r.mismatches, fmt.Sprintf("tick %d: %v", tick+1, err))
			}
		}
		r.comparedTicks++
		lib := got[tickload.Library]
		r.library = append(r.library, lib.Duration)
		r.floor = append(r.floor, got[tickload.Floor].Duration)
		r.hand = append(r.hand, got[tickload.Hand].Duration)
		r.stall = append(r.stall, got[tickload.Step].Duration)
		r.eval = append(r.eval, got[tickload.Evaluate].Duration)
		libStatements += lib.Statements
		libWrites += int64(lib.Report.Statements - 1) // the player store's round trips less the load
		changes += int64(lib.Changes)
		if s, ok := got[tickload.SeedPattern]; ok {
			r.seed = append(r.seed, s.Duration)
			seedStatements += s.Statements
		}
		if s, ok := got[tickload.SeedFlush3]; ok {
			r.flush3 = append(r.flush3, s.Duration)
			flush3RoundTrips += s.RoundTrips
		}
		w.Next()
		if err := ctx.Err(); err != nil {
			return r, err
		}
	}
	st := w.StepStats()
	r.DurableLagP50Ms, r.DurableLagP99Ms = round(ms(st.DurableLagP50), 3), round(ms(st.DurableLagP99), 3)
	r.StatementsPerTick = round(float64(libStatements)/float64(o.ticks), 3)
	r.WritesPerTick = round(float64(libWrites)/float64(o.ticks), 3)
	r.SeedStatementsPerTik = round(float64(seedStatements)/float64(max(1, len(r.seed))), 1)
	r.Flush3RoundTripsPerTick = round(float64(flush3RoundTrips)/float64(max(1, len(r.flush3))), 1)
	r.ChangesPerTick = round(float64(changes)/float64(o.ticks), 1)
	r.summarize()
	return r, nil
}

func createSchema(ctx context.Context, dbURL string) (string, func() error, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	schema := "tickbench_" + hex.EncodeToString(b[:])
	exec := func(ctx context.Context, sql string) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			return fmt.Errorf("connect to the database: %w", err)
		}
		defer func() { _ = conn.Close(context.Background()) }()
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return "", nil, err
	}
	cleanup := func() error {
		return exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	}
	return schema, cleanup, nil
}

func withSearchPath(dbURL, schema string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", errors.New("the database URL does not parse (it must be a postgres:// URL)")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
