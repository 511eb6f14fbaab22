// Package migrate applies the numbered SQL migrations of gamepersist's Postgres stores,
// each step once, and records them in a version table beside the tables they create.
//
// A store describes what it owns as Components: a name (the store and its table), a
// schema and the Steps loaded from an embedded folder of files named NNN_description.sql,
// rendered with text/template (the one templating of the module: every value spliced in is
// an identifier already quoted by pgx.Identifier.Sanitize, or a number). Up then:
//
//  1. reads which schemas hold a version table (one catalogue query) and the recorded
//     versions (one query per such schema, no lock): when every step is recorded it
//     returns, having sent no DDL and no statement that fails on a fresh database;
//  2. otherwise creates, in one transaction under advisory locks, the schemas and the
//     version table gamepersist_migrations(component, version, name, applied_at,
//     baseline), and records version 1 as a baseline for a component whose tables a
//     release before versioning created (its Baseline table exists, no version recorded);
//  3. runs each missing step in its own transaction, which takes the component's advisory
//     lock (keyed by schema and component), checks the step is still missing, runs it and
//     records it. Several processes calling Up at once therefore run each step exactly
//     once; a failed step rolls back whole and is retried by the next Up.
//
// A released step is never edited: a schema change is a new file with the next number,
// written so that the previous release still runs on the new schema (add, then drop in a
// later release).
//
// Versions recorded in the database that the running binary does not know (a newer
// release migrated it) are left alone and are not an error.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/jackc/pgx/v5"
)

// VersionTable is the name of the table, one per schema, that records applied steps.
const VersionTable = "gamepersist_migrations"

// ErrNoSchema reports a component without a schema whose connection has no current schema
// (no schema of its search_path exists), so there is nowhere to put its tables.
var ErrNoSchema = errors.New("no schema configured and search_path names no existing schema")

// ErrBadStep reports an embedded migration file that cannot be used: a name that is not
// NNN_description.sql, a gap or duplicate in the numbering, or a template that fails.
var ErrBadStep = errors.New("bad migration file")

// Step is one numbered migration: SQL run in one transaction.
type Step struct {
	Version int    // 1, 2, 3 …
	Name    string // the file name, recorded beside the version
	SQL     string // rendered; may hold several statements, no parameters
}

// Component is a set of tables versioned together, such as one store's table.
type Component struct {
	// Name identifies the component in the version table, for example
	// "roomstore rooms"; it is unique within Schema.
	Name string
	// Schema holds the component's tables and its version table; Up creates it if it does
	// not exist. Empty: the connection's current_schema().
	Schema string
	// Steps are the component's migrations in version order (Load returns them so).
	Steps []Step
	// Baseline, if set, is the table (unquoted, in Schema) step 1 creates. When it exists
	// and no version of the component is recorded, a release before versioning created
	// it: Up records step 1 as applied (baseline) without running it.
	Baseline string
}

// Result says what Up did.
type Result struct {
	Applied   int // steps run
	Baselined int // steps recorded as already applied by a release before versioning
	// Lookalikes are the tables Up created (a component's Baseline, by its step 1) whose
	// name is within a typo of a table already in the schema: a misspelled name in a
	// store's configuration makes a new, empty table where the game meant its own. The
	// caller logs them.
	Lookalikes []Lookalike
}

// Lookalike is a table Up created next to an existing one with a similar name.
type Lookalike struct {
	Schema, Created, Existing string
}

// DB is what Up needs of a connection: *pgxpool.Pool and *pgx.Conn satisfy it.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// StepError reports a step that failed; it unwraps to the database's error.
type StepError struct {
	Schema, Component, Name string
	Version                 int
	Err                     error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s in schema %q: step %d (%s): %v", e.Component, e.Schema, e.Version, e.Name, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// Load reads the files dir/NNN_description.sql of fsys and renders each as a text/template
// with data (a missing key is an error). Versions must run 1, 2, 3 … without gaps. It does
// no I/O beyond fsys and returns the steps in version order, or an error wrapping ErrBadStep.
func Load(fsys fs.FS, dir string, data any) ([]Step, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.sql"))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadStep, dir, err)
	}
	steps := make([]Step, 0, len(names))
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("%w: %s: want NNN_description.sql", ErrBadStep, name)
		}
		raw, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadStep, name, err)
		}
		tpl, err := template.New(base).Option("missingkey=error").Parse(string(raw))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadStep, err)
		}
		var b strings.Builder
		if err := tpl.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadStep, err)
		}
		steps = append(steps, Step{Version: v, Name: base, SQL: b.String()})
	}
	slices.SortFunc(steps, func(a, b Step) int { return a.Version - b.Version })
	for i, s := range steps {
		if s.Version != i+1 {
			return nil, fmt.Errorf("%w: %s: version %d, want %d (no gaps or duplicates)", ErrBadStep, s.Name, s.Version, i+1)
		}
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("%w: no NNN_description.sql in %s", ErrBadStep, dir)
	}
	return steps, nil
}

// CreateSchemaSQL returns a statement creating schema if it does not exist. It checks
// pg_namespace first, so that a role without CREATE on the database can use a schema that
// exists.
func CreateSchemaSQL(schema string) string {
	if strings.Contains(schema, "$gp$") {
		return "CREATE SCHEMA IF NOT EXISTS " + pgx.Identifier{schema}.Sanitize()
	}
	lit := quoteLiteral(schema)
	return "DO $gp$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = " + lit +
		") THEN EXECUTE format('CREATE SCHEMA %I', " + lit + "); END IF; END $gp$"
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// lockKey derives an advisory lock key from its parts: a hash, so that unrelated schemas
// and components do not wait for each other.
func lockKey(parts ...string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("gamepersist/migrate"))
	for _, p := range parts {
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(p))
	}
	return int64(h.Sum64()) //nolint:gosec // a hash reinterpreted as a lock key, overflow intended
}

func versionTable(schema string) string { return pgx.Identifier{schema, VersionTable}.Sanitize() }

// Up brings every component to its last step (see the package doc). When nothing is
// missing it costs one read of the catalogue and one query per schema, and sends no DDL;
// otherwise one transaction to set up and one per missing step. It returns what it did,
// and errors wrapping the database's error (a failed step as a *StepError).
func Up(ctx context.Context, db DB, comps ...Component) (Result, error) {
	var res Result
	comps = slices.Clone(comps)
	versioned, err := resolveSchemas(ctx, db, comps)
	if err != nil {
		return res, err
	}
	recorded, setup, err := readRecorded(ctx, db, comps, versioned)
	if err != nil {
		return res, err
	}
	if !setup && allRecorded(comps, recorded) {
		return res, nil
	}
	if setup {
		n, err := prepare(ctx, db, comps)
		if err != nil {
			return res, err
		}
		res.Baselined = n
	}
	for _, c := range comps {
		for _, s := range c.Steps {
			if recorded[c.Schema+"\x00"+c.Name][s.Version] {
				continue
			}
			ran, err := runStep(ctx, db, c, s)
			if err != nil {
				return res, err
			}
			if ran {
				res.Applied++
			}
			if ran && s.Version == 1 && c.Baseline != "" {
				similar, err := lookalikes(ctx, db, c.Schema, c.Baseline)
				if err != nil {
					return res, err
				}
				res.Lookalikes = append(res.Lookalikes, similar...)
			}
		}
	}
	return res, nil
}

// resolveSchemas fills the empty schemas with the connection's current_schema() and
// returns the set of the components' schemas that hold a version table. It is one read
// of the catalogue, so that Up never sends a statement that fails on a fresh database
// (a missing table is an error the server logs, and so does a pgx tracer).
func resolveSchemas(ctx context.Context, db DB, comps []Component) (map[string]bool, error) {
	named := make([]string, 0, len(comps))
	for _, c := range comps {
		if c.Schema != "" {
			named = append(named, c.Schema)
		}
	}
	rows, err := db.Query(ctx, `SELECT cur, ARRAY(SELECT n.nspname::text FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid
  WHERE c.relname = $2 AND c.relkind IN ('r', 'p') AND (n.nspname = ANY($1::text[]) OR n.nspname = cur))
FROM (SELECT current_schema()::text AS cur) s`, named, VersionTable)
	if err != nil {
		return nil, fmt.Errorf("read the catalogue: %w", err)
	}
	type answer struct {
		Cur    *string
		Tables []string
	}
	a, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[answer])
	if err != nil {
		return nil, fmt.Errorf("read the catalogue: %w", err)
	}
	for i := range comps {
		if comps[i].Schema != "" {
			continue
		}
		if a.Cur == nil {
			return nil, ErrNoSchema
		}
		comps[i].Schema = *a.Cur
	}
	versioned := make(map[string]bool, len(a.Tables))
	for _, schema := range a.Tables {
		versioned[schema] = true
	}
	return versioned, nil
}

// schemasOf returns the distinct schemas of comps, sorted (the order locks are taken in).
func schemasOf(comps []Component) []string {
	var out []string
	for _, c := range comps {
		out = append(out, c.Schema)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// readRecorded returns the recorded versions by schema and component, and whether setup
// is needed: a version table is missing (not in versioned) or a component has no version
// recorded. It reads only the version tables that exist.
func readRecorded(ctx context.Context, db DB, comps []Component, versioned map[string]bool) (map[string]map[int]bool, bool, error) {
	recorded := map[string]map[int]bool{}
	setup := false
	for _, schema := range schemasOf(comps) {
		if !versioned[schema] {
			setup = true // no version table (or no schema) yet: create them
			continue
		}
		var names []string
		for _, c := range comps {
			if c.Schema == schema {
				names = append(names, c.Name)
			}
		}
		rows, err := db.Query(ctx, "SELECT component, version FROM "+versionTable(schema)+" WHERE component = ANY($1)", names)
		if err == nil {
			err = readVersions(rows, schema, recorded)
		}
		if err != nil {
			return nil, false, fmt.Errorf("read versions in schema %q: %w", schema, err)
		}
	}
	for _, c := range comps {
		if len(recorded[c.Schema+"\x00"+c.Name]) == 0 {
			setup = true // a component seen for the first time: maybe a baseline
		}
	}
	return recorded, setup, nil
}

func readVersions(rows pgx.Rows, schema string, into map[string]map[int]bool) error {
	defer rows.Close()
	var (
		name string
		v    int
	)
	for rows.Next() {
		if err := rows.Scan(&name, &v); err != nil {
			return err
		}
		k := schema + "\x00" + name
		if into[k] == nil {
			into[k] = map[int]bool{}
		}
		into[k][v] = true
	}
	return rows.Err()
}

func allRecorded(comps []Component, recorded map[string]map[int]bool) bool {
	for _, c := range comps {
		for _, s := range c.Steps {
			if !recorded[c.Schema+"\x00"+c.Name][s.Version] {
				return false
			}
		}
	}
	return true
}

// prepare creates the schemas and version tables and records baselines, in one
// transaction holding each schema's lock, then each component's, in sorted order.
func prepare(ctx context.Context, db DB, comps []Component) (int, error) {
	baselined := 0
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		schemas := schemasOf(comps)
		for _, schema := range schemas {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("schema", schema)); err != nil {
				return fmt.Errorf("lock schema %q: %w", schema, err)
			}
		}
		for _, schema := range schemas {
			if _, err := tx.Exec(ctx, CreateSchemaSQL(schema)); err != nil {
				return fmt.Errorf("create schema %q: %w", schema, err)
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+versionTable(schema)+` (
    component  text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    baseline   boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (component, version)
)`); err != nil {
				return fmt.Errorf("create version table in schema %q: %w", schema, err)
			}
		}
		sorted := slices.Clone(comps)
		slices.SortFunc(sorted, func(a, b Component) int {
			return strings.Compare(a.Schema+"\x00"+a.Name, b.Schema+"\x00"+b.Name)
		})
		for _, c := range sorted {
			if c.Baseline == "" || len(c.Steps) == 0 {
				continue
			}
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("component", c.Schema, c.Name)); err != nil {
				return fmt.Errorf("lock %s: %w", c.Name, err)
			}
			// Version 1 is recorded when the component has no version yet and its table
			// exists: created by a release before versioning.
			tag, err := tx.Exec(ctx, `INSERT INTO `+versionTable(c.Schema)+` (component, version, name, baseline)
SELECT $1, 1, $2, true
WHERE NOT EXISTS (SELECT 1 FROM `+versionTable(c.Schema)+` WHERE component = $1)
  AND to_regclass($3) IS NOT NULL
ON CONFLICT DO NOTHING`, c.Name, c.Steps[0].Name, pgx.Identifier{c.Schema, c.Baseline}.Sanitize())
			if err != nil {
				return fmt.Errorf("record baseline of %s: %w", c.Name, err)
			}
			baselined += int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("create schemas and version tables: %w", err)
	}
	return baselined, nil
}

// runStep runs s in its own transaction holding c's lock, unless it is recorded by then.
// It reports whether it ran.
func runStep(ctx context.Context, db DB, c Component, s Step) (bool, error) {
	ran := false
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("component", c.Schema, c.Name)); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		var done bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+versionTable(c.Schema)+
			" WHERE component = $1 AND version = $2)", c.Name, s.Version).Scan(&done); err != nil {
			return fmt.Errorf("read version: %w", err)
		}
		if done {
			return nil // another process ran it while this one waited for the lock
		}
		// Simple protocol: a step is several statements without parameters.
		if _, err := tx.Exec(ctx, s.SQL, pgx.QueryExecModeSimpleProtocol); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+versionTable(c.Schema)+" (component, version, name) VALUES ($1, $2, $3)",
			c.Name, s.Version, s.Name); err != nil {
			return fmt.Errorf("record version: %w", err)
		}
		ran = true
		return nil
	})
	if err != nil {
		return false, &StepError{Schema: c.Schema, Component: c.Name, Version: s.Version, Name: s.Name, Err: err}
	}
	return ran, nil
}

// lookalikes returns the tables of schema, other than table, whose names are within a
// typo of table's (see similarName). It costs one catalogue query.
func lookalikes(ctx context.Context, db DB, schema, table string) ([]Lookalike, error) {
	rows, err := db.Query(ctx, `SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relname <> $2 ORDER BY 1`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("list the tables of schema %q: %w", schema, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list the tables of schema %q: %w", schema, err)
	}
	var out []Lookalike
	for _, n := range names {
		if similarName(table, n) {
			out = append(out, Lookalike{Schema: schema, Created: table, Existing: n})
		}
	}
	return out, nil
}

// similarName reports whether a and b differ by a typo: the same name but for case,
// or an edit distance of at most 2 (1 for names under 5 characters).
func similarName(a, b string) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	if a == b {
		return true
	}
	limit := 2
	if min(len(a), len(b)) < 5 {
		limit = 1
	}
	return editDistance(a, b) <= limit
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
