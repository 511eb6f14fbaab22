// Package pgcount counts what a pgx pool sends to PostgreSQL, so tests, benchmarks and the
// tickbench program can say how many statements and round trips an operation cost.
package pgcount

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// StatementCounter is a pgx.QueryTracer and pgx.BatchTracer that counts the statements a
// pool sends and the batches it sends (each batch is one pipeline: one round trip). The
// statements inside a batch are not counted as statements. Safe for concurrent use; each
// traced call costs one atomic add.
type StatementCounter struct {
	statements, batches atomic.Int64
}

// TraceQueryStart counts one statement.
func (c *StatementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.statements.Add(1)
	return ctx
}

// TraceQueryEnd does nothing.
func (c *StatementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TraceBatchStart counts one batch.
func (c *StatementCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.batches.Add(1)
	return ctx
}

// TraceBatchQuery does nothing.
func (c *StatementCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

// TraceBatchEnd does nothing.
func (c *StatementCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// Statements returns the statements sent so far outside batches.
func (c *StatementCounter) Statements() int64 { return c.statements.Load() }

// Batches returns the batches sent so far.
func (c *StatementCounter) Batches() int64 { return c.batches.Load() }

// RoundTrips returns Statements + Batches: what was sent so far, a batch counted once.
func (c *StatementCounter) RoundTrips() int64 { return c.statements.Load() + c.batches.Load() }

// NewPool opens a pool on connString whose statements are counted by the returned counter,
// and pings it once (the ping is not counted). The caller closes the pool.
func NewPool(ctx context.Context, connString string) (*pgxpool.Pool, *StatementCounter, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgx's parse error may quote the connection string, password and all.
		return nil, nil, errors.New("pgcount: database URL does not parse")
	}
	counter := &StatementCounter{}
	cfg.ConnConfig.Tracer = counter
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("pgcount: open pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("pgcount: ping: %w", err)
	}
	return pool, counter, nil
}
