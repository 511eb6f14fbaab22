package flux_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

// TestPostgresLoadActiveTimestampWithoutTimeZone: a game whose activity columns are
// "timestamp without time zone" (UTC wall times, session TimeZone UTC) gets exactly the
// players Rules.IsActive calls active, whatever the location of the tick's time: the
// window's bounds are compared as instants, as the loaded times are, not as the wall
// clock of now's location.
func TestPostgresLoadActiveTimestampWithoutTimeZone(t *testing.T) {
	t.Parallel()
	cs, _ := testdb.NewSchema(t)
	cs, err := testdb.WithParams(cs, map[string]string{"timezone": "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE players (
    id text PRIMARY KEY, room text NOT NULL,
    lcd integer NOT NULL, tier text NOT NULL,
    seen timestamp NOT NULL, born timestamp NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	store, err := flux.NewPostgresPlayers(pool, flux.PostgresConfig{
		PlayersTable: "players", PlayerIDColumn: "id", RoomColumn: "room", LastActiveColumn: "seen",
		CreatedAtColumn: "born", LucidityColumn: "lcd", TierColumn: "tier", ExternalPlayerTables: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	for _, p := range []struct {
		id         string
		seen, born time.Time
	}{
		{"active", now.Add(-time.Minute), now.Add(-48 * time.Hour)},
		{"idle", now.Add(-3 * time.Hour), now.Add(-48 * time.Hour)},
		{"newcomer", now.Add(-3 * time.Hour), now.Add(-30 * time.Minute)},
	} {
		// Stored as UTC wall times, as a game writing timestamp columns in UTC does.
		if _, err := pool.Exec(ctx, `INSERT INTO players VALUES ($1, 'r', 100, 'lucid', $2::timestamptz, $3::timestamptz)`,
			p.id, p.seen, p.born); err != nil {
			t.Fatal(err)
		}
	}
	rules := flux.DefaultRules()
	for _, loc := range []*time.Location{time.UTC, time.FixedZone("east", 5*3600), time.FixedZone("west", -7*3600)} {
		at := now.In(loc)
		loaded, err := store.LoadActive(ctx, flux.ActiveQueryFor(rules, at), nil)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, p := range loaded {
			ids = append(ids, p.ID)
			if !rules.IsActive(p, at) {
				t.Errorf("now in %s: loaded %s (seen %v, born %v), which Rules.IsActive calls inactive",
					loc, p.ID, p.LastActive, p.CreatedAt)
			}
		}
		slices.Sort(ids)
		if want := []string{"active", "newcomer"}; !slices.Equal(ids, want) {
			t.Errorf("now in %s: LoadActive returned %v, want %v", loc, ids, want)
		}
	}
}
