package roomstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/roomstore"
)

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
