package roomstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/internal/testkit/testlog"
	"github.com/gamepersist/gamepersist/roomstore"
)

// TestForgottenMigrateSaysCallMigrate: a store used without Migrate fails with an error
// wrapping ErrMissingSchema that says "call Postgres.Migrate", the database's
// *pgconn.PgError (42P01) still reachable with errors.As.
func TestForgottenMigrateSaysCallMigrate(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	s, err := roomstore.NewPostgres(pool, roomstore.PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	_, getErr := s.GetRoom(testCtx(t), "crypt")
	putErr := s.PutRoom(testCtx(t), roomstore.Room{ID: "crypt", Name: "The Crypt"})
	for what, err := range map[string]error{"GetRoom": getErr, "PutRoom": putErr} {
		var pgErr *pgconn.PgError
		if !errors.Is(err, roomstore.ErrMissingSchema) || !strings.Contains(err.Error(), "call Postgres.Migrate") ||
			!errors.As(err, &pgErr) || pgErr.Code != "42P01" {
			t.Errorf("%s before Migrate: %v; want ErrMissingSchema saying to call Migrate, wrapping the 42P01", what, err)
		}
	}
}

// TestMigrateWarnsOfALookalikeTable: Migrate with a misspelled Table ("room" beside the
// game's "rooms") creates it, but not silently: a warn line names both tables.
func TestMigrateWarnsOfALookalikeTable(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	migratedStore(t, pool, roomstore.PostgresConfig{})
	var logs testlog.Buffer
	s, err := roomstore.NewPostgres(pool, roomstore.PostgresConfig{Table: "room", Logger: logs.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	for _, l := range logs.Lines(t) {
		if l["level"] == "warn" && l["created"] == "room" && l["existing"] == "rooms" {
			return
		}
	}
	t.Fatalf("no warn line names the created table and the existing one; log:\n%s", logs.String())
}

// TestFirstMigrateLogsNoError: the first Migrate on a fresh schema, through a store whose
// pool logs pgx's failed statements (the default trace level), writes no error line: the
// missing gamepersist_migrations table is expected, not probed with a failing query.
func TestFirstMigrateLogsNoError(t *testing.T) {
	t.Parallel()
	cs, _ := testdb.NewSchema(t)
	var logs testlog.Buffer
	s, err := roomstore.OpenPostgres(testCtx(t), cs, roomstore.PostgresConfig{Logger: logs.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	for _, l := range logs.Lines(t) {
		if l["level"] == "error" {
			t.Fatalf("the first Migrate logged an error line: %v", l)
		}
	}
	// The check has teeth: a statement that does fail is logged at error level.
	var failing testlog.Buffer
	s2, err := roomstore.OpenPostgres(testCtx(t), cs, roomstore.PostgresConfig{Table: "no_such_rooms", Logger: failing.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	if _, err := s2.GetRoom(testCtx(t), "crypt"); !errors.Is(err, roomstore.ErrMissingSchema) {
		t.Fatalf("GetRoom on a missing table: %v", err)
	}
	if !strings.Contains(failing.String(), `"level":"error"`) {
		t.Fatalf("a failing statement logged no error line: %s", failing.String())
	}
}
