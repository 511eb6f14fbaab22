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
		fmt.Fprintf(stdout, "tickbench: %d ticks per path (audit pattern: %d), players %v, schema %s\n", o.ticks, o.seedTicks, o.players, schema)
	}
	var results []result
	for i, n := range o.players {
		rooms := min(o.rooms, max(10, n/5))
		r, err := measure(ctx, pool, counter, tickload.Config{Players: n, Rooms: rooms, Seed: o.seed, Prefix: fmt.Sprintf("tb%d_", i)}, o)
		if err != nil {
			return fmt.Errorf("%d players: %w", n, err)
		}
		results = append(results, r)
		if !o.jsonOut {
			fmt.Fprintf(stdout, "  %6d players: library p50 %.3f ms, audit pattern p50 %.3f ms\n", n, r.LibraryP50Ms, r.SeedPatternP50Ms)
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
	return nil
}

// measure runs one player count: every tick runs the library and the floor (in
// alternating order), and the audit's pattern on the first seedTicks ticks.
func measure(ctx context.Context, pool *pgxpool.Pool, counter *pgcount.StatementCounter, cfg tickload.Config, o options) (r result, err error) {
	w, err := tickload.Setup(ctx, pool, counter, cfg)
	if err != nil {
		return r, err
	}
	defer func() { err = errors.Join(err, w.Close()) }()
	r = result{Players: cfg.Players, Rooms: cfg.Rooms, Ticks: o.ticks}
	var libStatements, libWrites, seedStatements, changes int64
	for tick := range o.ticks {
		paths := []tickload.Path{tickload.Library, tickload.Floor}
		if tick%2 == 1 {
			paths = []tickload.Path{tickload.Floor, tickload.Library}
		}
		if tick < o.seedTicks {
			paths = append(paths, tickload.SeedPattern)
		}
		got := map[tickload.Path]tickload.Sample{}
		for _, p := range paths {
			s, err := w.Run(ctx, p)
			if err != nil {
				return r, err
			}
			got[p] = s
		}
		lib := got[tickload.Library]
		if f := got[tickload.Floor]; f.Changes != lib.Changes {
			return r, fmt.Errorf("tick %d: floor made %d changes, library %d", tick, f.Changes, lib.Changes)
		}
		r.library = append(r.library, lib.Duration)
		r.floor = append(r.floor, got[tickload.Floor].Duration)
		libStatements += lib.Statements
		libWrites += int64(lib.Report.Statements - 1) // the player store's round trips less the load
		changes += int64(lib.Changes)
		if s, ok := got[tickload.SeedPattern]; ok {
			if s.Changes != lib.Changes {
				return r, fmt.Errorf("tick %d: audit pattern made %d changes, library %d", tick, s.Changes, lib.Changes)
			}
			r.seed = append(r.seed, s.Duration)
			seedStatements += s.Statements
		}
		w.Next()
		if err := ctx.Err(); err != nil {
			return r, err
		}
	}
	r.StatementsPerTick = round(float64(libStatements)/float64(o.ticks), 3)
	r.WritesPerTick = round(float64(libWrites)/float64(o.ticks), 3)
	r.SeedStatementsPerTik = round(float64(seedStatements)/float64(max(1, len(r.seed))), 1)
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
