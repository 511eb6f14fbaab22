package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// withDatabase returns base with its database name, and its user when user is not empty,
// replaced.
func withDatabase(t *testing.T, base, database, user string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + database
	if user != "" {
		u.User = url.User(user)
	}
	return u.String()
}

// TestRefusedDatabaseFailsBeforeStart points the run at the local server with a database
// that does not exist, then with a role that does not exist: each is an error wrapping
// ErrDatabase and the server's *pgconn.PgError (SQLSTATE 3D000, 28000), on one line naming
// the SQLSTATE, returned before the NATS server started and without a summary — never a
// silent in-memory run.
func TestRefusedDatabaseFailsBeforeStart(t *testing.T) {
	t.Parallel()
	base := testdb.URL(t)
	for _, c := range []struct {
		name, url, code string
	}{
		{"missing database", withDatabase(t, base, "mudsim_no_such_database", ""), "3D000"},
		{"wrong role", withDatabase(t, base, "postgres", "mudsim_no_such_role"), "28000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			logs := newLogLines()
			cfg := smallWorld(logs)
			cfg.DatabaseURL = c.url
			var out bytes.Buffer
			err := run(context.Background(), cfg, &out)
			var pgErr *pgconn.PgError
			if !errors.Is(err, ErrDatabase) || !errors.As(err, &pgErr) || pgErr.Code != c.code {
				t.Fatalf("err = %v, want ErrDatabase with SQLSTATE %s", err, c.code)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, c.code) ||
				!strings.Contains(msg, "-database-url") {
				t.Errorf("message %q: want one line naming the SQLSTATE and the flag", msg)
			}
			if out.Len() != 0 || len(logs.withMessage("embedded nats server started")) != 0 ||
				len(logs.withMessage("world seeded in memory")) != 0 {
				t.Errorf("something started:\nstdout: %s\nlog:\n%s", out.String(), logs)
			}
		})
	}
}

// TestUnparsableURLFailsBeforeNATS: a database URL that does not parse is ErrInvalidConfig
// before the embedded NATS server starts, and the message never holds the password, even
// when the parser's complaint is about the password itself.
func TestUnparsableURLFailsBeforeNATS(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"postgres://%zz",
		"postgres://mud:hunter2@%zz/x",
		"postgres://mud:hun%ter2@127.0.0.1:5432/x",    // the password itself is broken
		"postgres://mud:hun@ter2@127.0.0.1:5432/x%zz", // an unencoded @ in it, and a broken path
		"host=127.0.0.1 password=hunter2 port=zz",
	} {
		logs := newLogLines()
		cfg := smallWorld(logs)
		cfg.DatabaseURL = raw
		_, err := simulate(context.Background(), cfg)
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", raw, err)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "ter2") || strings.Contains(msg, "\n") {
			t.Errorf("%s: message %q quotes the password or spans lines", raw, msg)
		}
		if logs.String() != "" {
			t.Errorf("%s: something started before the URL was checked:\n%s", raw, logs)
		}
	}
}

// TestCleanupDropsSchema runs with Cleanup on a schema of the test's own: the run seeds
// and ticks in it, and at the end the schema is gone (said in a log line).
func TestCleanupDropsSchema(t *testing.T) {
	t.Parallel()
	dbURL, schema := testdb.NewSchema(t)
	logs := newLogLines()
	cfg := smallWorld(logs)
	cfg.DatabaseURL, cfg.Schema, cfg.Ticks, cfg.Cleanup = dbURL, schema, 2, true
	sum, err := simulate(context.Background(), cfg)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, logs)
	}
	checkSummary(t, sum, "postgres")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1`, schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("schema %s still exists after a -cleanup run", schema)
	}
	if dropped := logs.withMessage("schema dropped"); len(dropped) != 1 || dropped[0]["schema"] != schema {
		t.Errorf("schema dropped lines = %v", dropped)
	}
}

// TestFlags checks the command line: the default run is finite (DefaultDuration), -ticks
// alone lifts the time limit, -cleanup parses, schemas mudsim does not own are refused, and
// -h never prints the password of $GAMEPERSIST_DATABASE_URL.
func TestFlags(t *testing.T) {
	var usage bytes.Buffer
	cfg, _, err := parseFlags(nil, &usage)
	if err != nil || cfg.Duration != DefaultDuration || DefaultDuration != 30*time.Second || cfg.Cleanup {
		t.Errorf("defaults: duration %v, cleanup %v, %v", cfg.Duration, cfg.Cleanup, err)
	}
	cfg, _, err = parseFlags([]string{"-ticks", "5", "-cleanup"}, &usage)
	if err != nil || cfg.Duration != 0 || cfg.Ticks != 5 || !cfg.Cleanup {
		t.Errorf("-ticks 5 -cleanup: %+v, %v", cfg, err)
	}
	cfg, _, err = parseFlags([]string{"-ticks", "5", "-duration", "2s"}, &usage)
	if err != nil || cfg.Duration != 2*time.Second {
		t.Errorf("-ticks 5 -duration 2s: duration %v, %v", cfg.Duration, err)
	}
	for _, schema := range []string{"public", "pg_catalog", "information_schema"} {
		if _, err := simulate(context.Background(), Config{Schema: schema}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("schema %s: err = %v, want ErrInvalidConfig", schema, err)
		}
	}

	t.Setenv(EnvDatabaseURL, "postgres://mud:hunter2@db.example:5432/game")
	usage.Reset()
	if _, _, err := parseFlags([]string{"-h"}, &usage); err == nil {
		t.Fatal("-h: no error")
	}
	if strings.Contains(usage.String(), "hunter2") || !strings.Contains(usage.String(), "postgres://mud:xxxxx@db.example:5432/game") {
		t.Errorf("-h prints the password or not the redacted default:\n%s", usage.String())
	}
	cfg, _, err = parseFlags(nil, &usage)
	if err != nil || cfg.DatabaseURL != os.Getenv(EnvDatabaseURL) {
		t.Errorf("the environment's URL is not the default: %q, %v", cfg.DatabaseURL, err)
	}
}

// TestRedactURL covers the connection string shapes pgx accepts.
func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://postgres@127.0.0.1:5432/postgres":       "postgres://postgres@127.0.0.1:5432/postgres",
		"postgres://mud:hunter2@db:5432/game":               "postgres://mud:xxxxx@db:5432/game",
		"postgresql://mud:hun@ter2@db/game?sslmode=disable": "postgresql://mud:xxxxx@db/game?sslmode=disable",
		"postgres://db/game?user=mud&password=hunter2&x=1":  "postgres://db/game?user=mud&password=xxxxx&x=1",
		"host=db user=mud password=hunter2 dbname=game":     "host=db user=mud password=xxxxx dbname=game",
		"host=db password='hun ter2' dbname=game":           "host=db password=xxxxx dbname=game",
		"cannot parse `postgres://mud:hunter2@%zz`: bad":    "cannot parse `postgres://mud:xxxxx@%zz`: bad",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSilentDatabaseFailsBeforeStart: something listens at the address but never answers
// (a TCP listener that accepts and stays silent): that is not "nothing listens", so the run
// stops with ErrDatabase naming the timeout instead of falling back to memory.
func TestSilentDatabaseFailsBeforeStart(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 4)
	done := make(chan struct{})
	go func() { // owned by this test: ends when ln closes
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case accepted <- c: // held open, silent
			default:
				_ = c.Close()
			}
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		close(accepted)
		for c := range accepted {
			_ = c.Close()
		}
	})

	logs := newLogLines()
	cfg := smallWorld(logs)
	cfg.DatabaseURL = "postgres://mud:hunter2@" + ln.Addr().String() + "/game?sslmode=disable"
	cfg.DBTimeout = 300 * time.Millisecond
	_, err = simulate(context.Background(), cfg)
	if !errors.Is(err, ErrDatabase) || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "no answer within 300ms") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v, want ErrDatabase naming the timeout", err)
	}
	if len(logs.withMessage("embedded nats server started")) != 0 || len(logs.withMessage("world seeded in memory")) != 0 {
		t.Errorf("something started:\n%s", logs)
	}
}

// TestHelpMasksEveryPasswordForm: -h with a default URL in every password form libpq and
// pgx accept — an unescaped comma in the URL password, sslpassword in the query and in
// key=value form — prints none of them.
func TestHelpMasksEveryPasswordForm(t *testing.T) {
	for _, raw := range []string{
		"postgres://mud:pa,ss-w0rd@db.example:5432/game?sslpassword=k3y,pa55",
		"host=db.example user=mud password='pa,ss w0rd' sslpassword=k3y,pa55",
	} {
		t.Setenv(EnvDatabaseURL, raw)
		var usage bytes.Buffer
		_, _, _ = parseFlags([]string{"-h"}, &usage)
		if strings.Contains(usage.String(), "pa,ss") || strings.Contains(usage.String(), "k3y") {
			t.Errorf("-h prints a password of %q:\n%s", raw, usage.String())
		}
	}
}
