package lease_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gamepersist/gamepersist/internal/lease"
	"github.com/gamepersist/gamepersist/internal/migrate"
)

// TestMigrateIsVersionedAndIdempotent: the tables are one versioned component of
// internal/migrate, a second Migrate changes nothing, and an empty Schema uses the pool's
// search_path.
func TestMigrateIsVersionedAndIdempotent(t *testing.T) {
	t.Parallel()
	g := newGroup(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cfg := g.config("unqualified")
	cfg.Schema = "" // the pool's search_path is the test's schema
	m, err := lease.New(g.pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	for range 2 {
		if err := m.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var versions int
	if err := g.pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{g.schema, migrate.VersionTable}.Sanitize()+
		" WHERE component = 'lease'").Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if versions != 1 {
		t.Fatalf("%d versions of the lease component recorded, want 1", versions)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the member holds all", func() string { return g.fair(m) })
}
