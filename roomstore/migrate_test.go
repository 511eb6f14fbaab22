package roomstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

// queryInt runs a query returning one integer.
func queryInt(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(testCtx(t), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestMigrateUpgradesReleaseSchema: a table created by the release before versioned
// migrations (its DDL kept in testdata) keeps every row through Migrate, which records it as
// version 1 (baseline) without running the DDL again.
func TestMigrateUpgradesReleaseSchema(t *testing.T) {
	t.Parallel()
	old, err := os.ReadFile("testdata/release_schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	pool, schema := testdb.NewPool(t)
	game := schema + "_game"
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+game+" CASCADE") })
	for _, cfg := range []roomstore.PostgresConfig{{}, {Schema: game, Table: "world"}} {
		t.Run(cfg.Schema+"/"+cfg.Table, func(t *testing.T) {
			table, versions := pgx.Identifier{roomstore.DefaultTable}.Sanitize(), "gamepersist_migrations"
			if cfg.Schema != "" {
				table, versions = pgx.Identifier{cfg.Schema, cfg.Table}.Sanitize(), game+".gamepersist_migrations"
				if _, err := pool.Exec(testCtx(t), "CREATE SCHEMA "+game); err != nil {
					t.Fatal(err)
				}
			}
			// The release's Migrate: the file with {{table}} replaced, run whole.
			if _, err := pool.Exec(testCtx(t), strings.ReplaceAll(string(old), "{{table}}", table), pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
			s, err := roomstore.NewPostgres(pool, cfg)
			if err != nil {
				t.Fatal(err)
			}
			const n = 50
			for i := range n {
				if err := s.PutRoom(testCtx(t), roomstoretest.SampleRoom(fmt.Sprint("r", i))); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Migrate(testCtx(t)); err != nil {
				t.Fatalf("Migrate over the release's table: %v", err)
			}
			if got := queryInt(t, pool, "SELECT count(*) FROM "+table); got != n {
				t.Fatalf("%d of %d rooms after Migrate", got, n)
			}
			want := roomstoretest.SampleRoom("r7")
			want.Version = 1
			r, err := s.GetRoom(testCtx(t), "r7")
			if err != nil || !r.Equal(want) {
				t.Fatalf("GetRoom after Migrate = %+v, %v", r, err)
			}
			if got := queryInt(t, pool, "SELECT count(*) FROM "+versions+" WHERE version = 1 AND baseline"); got != 1 {
				t.Fatalf("version 1 not recorded as baseline (%d rows)", got)
			}
			if err := s.Migrate(testCtx(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestMigrateEightProcessesEachStepOnce: eight stores, each with its own pool, migrate a fresh
// schema at once: no error, each step recorded once (not as a baseline), and the next
// Migrate sends two reads and no DDL.
func TestMigrateEightProcessesEachStepOnce(t *testing.T) {
	t.Parallel()
	cs, schema := testdb.NewSchema(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			s, err := roomstore.OpenPostgres(testCtx(t), cs, roomstore.PostgresConfig{})
			if err != nil {
				errs <- err
				return
			}
			defer func() { _ = s.Close() }()
			errs <- s.Migrate(testCtx(t))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	check, err := pgxpool.New(testCtx(t), cs)
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	steps := queryInt(t, check, "SELECT count(*) FROM gamepersist_migrations WHERE component = 'roomstore rooms' AND NOT baseline")
	if steps != 1 || queryInt(t, check, "SELECT count(*) FROM gamepersist_migrations") != steps {
		t.Fatalf("%d steps recorded, want 1 (the only step), none twice", steps)
	}
	if got := queryInt(t, check, "SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema); got != 2 {
		t.Fatalf("%d tables, want rooms and gamepersist_migrations", got)
	}

	// Idempotent: on a traced pool (its own schema), the second Migrate only reads.
	pool, counter, _ := testdb.NewTracedPool(t)
	s := migratedStore(t, pool, roomstore.PostgresConfig{})
	before := counter.Statements()
	if err := s.Migrate(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := counter.Statements() - before; got != 2 {
		t.Fatalf("second Migrate sent %d statements, want 2 (current_schema, recorded versions)", got)
	}
}

// TestMigrateCreatesTheConfiguredSchema: Migrate into a schema that does not exist creates
// it, with the table and the version table inside.
func TestMigrateCreatesTheConfiguredSchema(t *testing.T) {
	t.Parallel()
	pool, schema := testdb.NewPool(t)
	fresh := schema + "_new"
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+fresh+" CASCADE") })
	for _, cfg := range []roomstore.PostgresConfig{{Schema: fresh}, {Table: fresh + ".other"}} {
		s := migratedStore(t, pool, cfg)
		if err := s.PutRoom(testCtx(t), roomstoretest.SampleRoom("a")); err != nil {
			t.Fatalf("%+v: PutRoom after Migrate: %v", cfg, err)
		}
	}
	if got := queryInt(t, pool, "SELECT count(*) FROM pg_tables WHERE schemaname = $1", fresh); got != 3 {
		t.Fatalf("%d tables in the new schema, want rooms, other and gamepersist_migrations", got)
	}
	if got := queryInt(t, pool, "SELECT count(*) FROM "+fresh+".gamepersist_migrations"); got != 2 {
		t.Fatalf("%d versions recorded, want one per table", got)
	}
}

// TestMigrateWithoutSchema: no Schema and a search_path naming no existing schema is a
// configuration error, not a failed CREATE.
func TestMigrateWithoutSchema(t *testing.T) {
	t.Parallel()
	cs, err := testdb.WithParams(testdb.URL(t), map[string]string{"search_path": "gp_no_such_schema"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := roomstore.OpenPostgres(testCtx(t), cs, roomstore.PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if err := s.Migrate(testCtx(t)); !errors.Is(err, roomstore.ErrInvalidConfig) {
		t.Fatalf("Migrate = %v, want ErrInvalidConfig", err)
	}
}
