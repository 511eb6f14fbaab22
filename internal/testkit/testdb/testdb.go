// Package testdb gives tests a real PostgreSQL database, resolved as docs/ARCHITECTURE.md says:
//
//  1. GAMEPERSIST_DATABASE_URL, if set;
//  2. else postgres://postgres@127.0.0.1:5432/postgres, if it answers;
//  3. else a testcontainers-go PostgreSQL container, if a Docker engine answers;
//  4. else the test is skipped with one line saying how to get a database — except when
//     CI=true, where a missing database fails the test.
//
// Each test gets its own schema (NewSchema, NewPool), dropped when the test ends, so tests
// run in parallel and leave nothing behind.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/gamepersist/gamepersist/internal/testkit/pgcount"
)

// EnvURL names the environment variable that points tests at a database.
const EnvURL = "GAMEPERSIST_DATABASE_URL"

// DefaultURL is the local database tried when EnvURL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// resolved caches the database URL for the whole test binary, so that a container, when one
// is needed, is started once per package rather than once per test. Test-only state.
var resolved struct {
	once sync.Once
	url  string
	why  string
}

// Resolve returns the database URL without a testing.TB: for examples and benchmarks run
// outside tests. ok is false, with the reason, when no database answers.
func Resolve(ctx context.Context) (url string, ok bool, reason string) {
	resolved.once.Do(func() {
		resolved.url, resolved.why = resolve(ctx)
	})
	return resolved.url, resolved.url != "", resolved.why
}

func resolve(ctx context.Context) (string, string) {
	return resolveWith(ctx, resolver{
		envURL:          os.Getenv(EnvURL),
		defaultURL:      DefaultURL,
		dockerAvailable: dockerAvailable,
		startContainer:  startContainer,
	})
}

// resolver holds the steps of the resolution order, so a test can run it with a default
// address that does not answer and no Docker engine.
type resolver struct {
	envURL          string
	defaultURL      string
	dockerAvailable func() bool
	startContainer  func(context.Context) (string, error)
}

func resolveWith(ctx context.Context, r resolver) (url, reason string) {
	if r.envURL != "" {
		return r.envURL, ""
	}
	if err := ping(ctx, r.defaultURL); err == nil {
		return r.defaultURL, ""
	}
	if !r.dockerAvailable() {
		return "", "no database: set " + EnvURL + " or start PostgreSQL on 127.0.0.1:5432 (no Docker engine for testcontainers either)"
	}
	u, err := r.startContainer(ctx)
	if err != nil {
		return "", "no database: set " + EnvURL + " or start PostgreSQL on 127.0.0.1:5432 (testcontainers failed: " + err.Error() + ")"
	}
	return u, ""
}

func ping(ctx context.Context, connString string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

// dockerAvailable reports whether a Docker engine answers, without testcontainers' own
// retries: DOCKER_HOST, or the default socket.
func dockerAvailable() bool {
	host := os.Getenv("DOCKER_HOST")
	network, addr := "unix", "/var/run/docker.sock"
	if host != "" {
		u, err := url.Parse(host)
		if err != nil {
			return false
		}
		switch u.Scheme {
		case "unix":
			addr = u.Path
		case "tcp":
			network, addr = "tcp", u.Host
		default:
			return false
		}
	}
	c, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func startContainer(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c, err := tcpostgres.Run(ctx, "postgres:16-alpine",
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies(),
	)
	if err != nil {
		if c != nil {
			_ = testcontainers.TerminateContainer(c)
		}
		return "", err
	}
	// The container lives as long as the test binary; testcontainers' reaper removes it.
	return c.ConnectionString(ctx, "sslmode=disable")
}

// URL returns the database URL for t, skipping t (or failing it under CI=true) when no
// database answers.
func URL(t testing.TB) string {
	t.Helper()
	u, ok, why := Resolve(context.Background())
	if !ok {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and " + why)
		}
		t.Skip(why)
	}
	return u
}

// NewSchema creates an empty schema for t, dropped when t ends, and returns a connection
// string whose connections use it as their search_path, and the schema's name.
// applicationName, if not empty, is set as the connections' application_name.
func NewSchema(t testing.TB) (connString, schema string) {
	t.Helper()
	base := URL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema = "gp_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exec(ctx, base, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("testdb: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := exec(ctx, base, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("testdb: drop schema %s: %v", schema, err)
		}
	})
	cs, err := WithParams(base, map[string]string{"search_path": schema})
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	return cs, schema
}

// NewPool returns a pool on a new schema (see NewSchema), closed when t ends.
func NewPool(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	cs, schema := NewSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, cs)
	if err != nil {
		t.Fatalf("testdb: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, schema
}

// NewTracedPool returns a pool on a new schema (see NewSchema) whose statements and
// batches are counted by the returned counter, closed when t ends, and the schema's
// connection string.
func NewTracedPool(t testing.TB) (*pgxpool.Pool, *pgcount.StatementCounter, string) {
	t.Helper()
	cs, _ := NewSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, counter, err := pgcount.NewPool(ctx, cs)
	if err != nil {
		t.Fatalf("testdb: traced pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, counter, cs
}

// WithParams returns connString with the given run-time parameters added (for example
// search_path or application_name). connString must be in URL form.
func WithParams(connString string, params map[string]string) (string, error) {
	u, err := url.Parse(connString)
	if err != nil {
		return "", errors.New("testdb: database URL does not parse")
	}
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Exec runs one statement on a short-lived connection to connString.
func Exec(ctx context.Context, connString, sql string, args ...any) error {
	return exec(ctx, connString, sql, args...)
}

func exec(ctx context.Context, connString, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return err
	}
	return nil
}
