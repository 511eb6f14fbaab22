package migrate_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/gamepersist/gamepersist/internal/migrate"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// steps is a three-step migration whose second step counts its runs in a table, so a step
// run twice shows.
var steps = fstest.MapFS{
	"m/001_things.sql": {Data: []byte(`CREATE TABLE {{.T}} (id int PRIMARY KEY); CREATE TABLE {{.R}} (step int);`)},
	"m/002_more.sql":   {Data: []byte(`ALTER TABLE {{.T}} ADD COLUMN note text; INSERT INTO {{.R}} VALUES (2);`)},
	"m/003_index.sql":  {Data: []byte(`CREATE INDEX ON {{.T}} (note); INSERT INTO {{.R}} VALUES (3);`)},
}

func component(t *testing.T, schema string) migrate.Component {
	t.Helper()
	table, runs := "things", "things_runs"
	if schema != "" {
		table, runs = pgx.Identifier{schema, "things"}.Sanitize(), pgx.Identifier{schema, "things_runs"}.Sanitize()
	}
	s, err := migrate.Load(steps, "m", map[string]string{"T": table, "R": runs})
	if err != nil {
		t.Fatal(err)
	}
	return migrate.Component{Name: "test things", Schema: schema, Steps: s, Baseline: "things"}
}

func TestLoadRefusesBadFiles(t *testing.T) {
	t.Parallel()
	for name, fsys := range map[string]fstest.MapFS{
		"gap":         {"m/001_a.sql": {}, "m/003_c.sql": {}},
		"duplicate":   {"m/001_a.sql": {}, "m/1_b.sql": {}},
		"name":        {"m/first.sql": {}},
		"missing key": {"m/001_a.sql": {Data: []byte("{{.Nope}}")}},
		"empty":       {},
	} {
		if _, err := migrate.Load(fsys, "m", map[string]string{}); !errors.Is(err, migrate.ErrBadStep) {
			t.Errorf("%s: Load = %v, want ErrBadStep", name, err)
		}
	}
	got, err := migrate.Load(steps, "m", map[string]string{"T": `"x"`, "R": `"r"`})
	if err != nil || len(got) != 3 || got[1].Version != 2 || got[1].Name != "002_more.sql" ||
		!strings.HasPrefix(got[1].SQL, `ALTER TABLE "x" ADD`) {
		t.Fatalf("Load = %+v, %v", got, err)
	}
}

// recorder is a pgx tracer keeping the text of every statement sent.
type recorder struct {
	mu     sync.Mutex
	sqls   []string
	failed []error // statements the server refused
}

func (r *recorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	r.sqls = append(r.sqls, d.SQL)
	r.mu.Unlock()
	return ctx
}

func (r *recorder) TraceQueryEnd(_ context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	if d.Err != nil {
		r.mu.Lock()
		r.failed = append(r.failed, d.Err)
		r.mu.Unlock()
	}
}

func (r *recorder) failures() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.sqls
	r.sqls = nil
	return out
}

func tracedPool(t *testing.T, cs string) (*pgxpool.Pool, *recorder) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(cs)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, rec
}

func count(t *testing.T, db *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(testCtx(t), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestUpConcurrentEachStepOnce: eight connections migrate a fresh schema at once; each step
// runs once, and a second Up sends only reads.
func TestUpConcurrentEachStepOnce(t *testing.T) {
	t.Parallel()
	cs, schema := testdb.NewSchema(t)
	const n = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied int
	)
	errs := make(chan error, n)
	c := component(t, "")
	for range n {
		wg.Go(func() {
			conn, err := pgx.Connect(testCtx(t), cs)
			if err != nil {
				errs <- err
				return
			}
			defer func() { _ = conn.Close(context.Background()) }()
			res, err := migrate.Up(testCtx(t), conn, c)
			mu.Lock()
			applied += res.Applied
			mu.Unlock()
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Up: %v", err)
		}
	}
	pool, rec := tracedPool(t, cs)
	if applied != 3 {
		t.Errorf("%d steps applied in all, want 3", applied)
	}
	if got := count(t, pool, "SELECT count(*) FROM things_runs"); got != 2 {
		t.Errorf("steps 2 and 3 ran %d times in all, want 2", got)
	}
	if got := count(t, pool, "SELECT count(*) FROM gamepersist_migrations WHERE component = 'test things' AND NOT baseline"); got != 3 {
		t.Errorf("%d versions recorded, want 3", got)
	}
	_ = rec.take()
	res, err := migrate.Up(testCtx(t), pool, component(t, ""))
	if err != nil || res.Applied+res.Baselined+len(res.Lookalikes) != 0 {
		t.Fatalf("second Up = %+v, %v", res, err)
	}
	sqls := rec.take()
	if len(sqls) != 2 {
		t.Errorf("second Up sent %d statements, want 2 reads: %q", len(sqls), sqls)
	}
	for _, s := range sqls {
		if !strings.HasPrefix(s, "SELECT") {
			t.Errorf("second Up sent %q", s)
		}
	}
	if got := count(t, pool, "SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema); got != 3 {
		t.Errorf("%d tables in the schema, want things, things_runs, gamepersist_migrations", got)
	}
}

// TestUpCreatesSchemaAndResumes: Up creates a schema that does not exist; a failing step
// rolls back whole and reports a *StepError wrapping the database's error; after the fix the
// next Up runs from that step on.
func TestUpCreatesSchemaAndResumes(t *testing.T) {
	t.Parallel()
	pool, schema := testdb.NewPool(t)
	fresh := schema + "_new"
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+fresh+" CASCADE") })

	c := component(t, fresh)
	bad := c
	bad.Steps = append([]migrate.Step(nil), c.Steps...)
	bad.Steps[2].SQL = "INSERT INTO " + pgx.Identifier{fresh, "things_runs"}.Sanitize() + " VALUES (3); SELECT 1/0;"
	res, err := migrate.Up(testCtx(t), pool, bad)
	var stepErr *migrate.StepError
	var pgErr *pgconn.PgError
	if !errors.As(err, &stepErr) || stepErr.Version != 3 || !errors.As(err, &pgErr) || pgErr.Code != "22012" {
		t.Fatalf("Up with a failing step 3 = %v", err)
	}
	if res.Applied != 2 {
		t.Errorf("applied %d before the failure, want 2", res.Applied)
	}
	if got := count(t, pool, "SELECT count(*) FROM "+fresh+".things_runs"); got != 1 {
		t.Errorf("%d runs recorded: the failed step did not roll back", got)
	}
	res, err = migrate.Up(testCtx(t), pool, c)
	if err != nil || res.Applied != 1 {
		t.Fatalf("Up after the fix = %+v, %v", res, err)
	}
	if got := count(t, pool, "SELECT max(version) FROM "+fresh+".gamepersist_migrations"); got != 3 {
		t.Errorf("version %d, want 3", got)
	}
}

// TestUpOnAFreshDatabaseSendsNothingThatFails: the first Up, on a schema without a
// version table and on a schema that does not exist yet, sends no statement the server
// refuses (a missing gamepersist_migrations used to be probed with a query that failed
// with 42P01, which pgx's tracelog reported as an error on every first start).
func TestUpOnAFreshDatabaseSendsNothingThatFails(t *testing.T) {
	t.Parallel()
	cs, schema := testdb.NewSchema(t)
	pool, rec := tracedPool(t, cs)
	fresh := schema + "_fresh"
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+fresh+" CASCADE") })
	for _, c := range []migrate.Component{component(t, ""), component(t, fresh)} {
		res, err := migrate.Up(testCtx(t), pool, c)
		if err != nil || res.Applied != 3 {
			t.Fatalf("Up in %q = %+v, %v", c.Schema, res, err)
		}
	}
	if failed := rec.failures(); len(failed) != 0 {
		t.Fatalf("the first Up sent %d statements that failed: %v", len(failed), failed)
	}
}

// TestUpBaseline: a table created before versioning is recorded as version 1 without
// running step 1 again (it would fail: no IF NOT EXISTS), and later steps run.
func TestUpBaseline(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	if _, err := pool.Exec(testCtx(t), "CREATE TABLE things (id int PRIMARY KEY); CREATE TABLE things_runs (step int); INSERT INTO things VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	res, err := migrate.Up(testCtx(t), pool, component(t, ""))
	if err != nil || res.Baselined != 1 || res.Applied != 2 {
		t.Fatalf("Up = %+v, %v; want 1 baselined, 2 applied", res, err)
	}
	if got := count(t, pool, "SELECT count(*) FROM things WHERE id = 7"); got != 1 {
		t.Error("the existing row is gone")
	}
	if got := count(t, pool, "SELECT count(*) FROM gamepersist_migrations WHERE version = 1 AND baseline"); got != 1 {
		t.Error("version 1 not recorded as baseline")
	}
}

// TestUpNewerDatabase: versions the binary does not know (a newer release migrated) are
// left alone.
func TestUpNewerDatabase(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	if _, err := migrate.Up(testCtx(t), pool, component(t, "")); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(testCtx(t), "INSERT INTO gamepersist_migrations (component, version, name) VALUES ('test things', 4, '004_later.sql')"); err != nil {
		t.Fatal(err)
	}
	if res, err := migrate.Up(testCtx(t), pool, component(t, "")); err != nil || res.Applied+res.Baselined+len(res.Lookalikes) != 0 {
		t.Fatalf("Up on a newer database = %+v, %v", res, err)
	}
}

// TestUpNoSchema: an empty Schema on a connection whose search_path names no existing
// schema is ErrNoSchema, before any DDL.
func TestUpNoSchema(t *testing.T) {
	t.Parallel()
	cs, err := testdb.WithParams(testdb.URL(t), map[string]string{"search_path": "gp_no_such_schema"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(testCtx(t), cs)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := migrate.Up(testCtx(t), conn, component(t, "")); !errors.Is(err, migrate.ErrNoSchema) {
		t.Fatalf("Up = %v, want ErrNoSchema", err)
	}
}

func TestCreateSchemaSQLQuotes(t *testing.T) {
	t.Parallel()
	pool, schema := testdb.NewPool(t)
	for _, name := range []string{schema + `_it's "odd"; DROP`, schema + "_$gp$"} {
		t.Cleanup(func() {
			_, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
		})
		for range 2 {
			if _, err := pool.Exec(testCtx(t), migrate.CreateSchemaSQL(name)); err != nil {
				t.Fatalf("%q: %v", name, err)
			}
		}
		if got := count(t, pool, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", name); got != 1 {
			t.Errorf("schema %q not created", name)
		}
	}
}

// TestUpReportsLookalikeTables: a component whose table Up creates next to an existing
// table with a similar name (a misspelled configuration) reports both names; an unrelated
// table, or a table that already exists, reports nothing.
func TestUpReportsLookalikeTables(t *testing.T) {
	t.Parallel()
	pool, schema := testdb.NewPool(t)
	if _, err := pool.Exec(testCtx(t), "CREATE TABLE thing (id int); CREATE TABLE inventory (id int)"); err != nil {
		t.Fatal(err)
	}
	res, err := migrate.Up(testCtx(t), pool, component(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	want := []migrate.Lookalike{{Schema: schema, Created: "things", Existing: "thing"}}
	if len(res.Lookalikes) != 1 || res.Lookalikes[0] != want[0] {
		t.Fatalf("Lookalikes = %+v, want %+v", res.Lookalikes, want)
	}
	res, err = migrate.Up(testCtx(t), pool, component(t, ""))
	if err != nil || len(res.Lookalikes) != 0 {
		t.Fatalf("second Up: %+v, %v; want no lookalikes (nothing created)", res, err)
	}
}
