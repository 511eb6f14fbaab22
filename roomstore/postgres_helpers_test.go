package roomstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/internal/testdb"
	"github.com/gamepersist/gamepersist/roomstore"
)

// roundTripCounter is a pgx tracer that counts what a pool sends: every query, and every
// batch once (a batch is sent as one pipeline).
type roundTripCounter struct {
	queries, batches atomic.Int64
}

func (c *roundTripCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.queries.Add(1)
	return ctx
}

func (c *roundTripCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *roundTripCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.batches.Add(1)
	return ctx
}

func (c *roundTripCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (c *roundTripCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// RoundTrips returns queries + batches sent so far.
func (c *roundTripCounter) RoundTrips() int64 { return c.queries.Load() + c.batches.Load() }

// countedPool returns a pool on a fresh schema whose statements are counted, closed at the
// end of tb, and the schema's name.
func countedPool(tb testing.TB) (*pgxpool.Pool, *roundTripCounter, string) {
	tb.Helper()
	cs, schema := testdb.NewSchema(tb)
	cfg, err := pgxpool.ParseConfig(cs)
	if err != nil {
		tb.Fatal(err)
	}
	counter := &roundTripCounter{}
	cfg.ConnConfig.Tracer = counter
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool, counter, schema
}

// migratedStore returns a migrated store on pool, closed at the end of tb.
func migratedStore(tb testing.TB, pool *pgxpool.Pool, cfg roomstore.PostgresConfig) *roomstore.Postgres {
	tb.Helper()
	s, err := roomstore.NewPostgres(pool, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(testCtx(tb)); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	return s
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// uniqueName returns prefix followed by random hex, for application names and schemas.
func uniqueName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
