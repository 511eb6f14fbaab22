package roomstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/internal/testkit/pgcount"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/roomstore"
)

const pgBenchRooms = 1000

// benchPostgres returns a migrated store holding pgBenchRooms rooms, the ids, and the
// statement counter of its pool.
func benchPostgres(b *testing.B) (*roomstore.Postgres, []string, *pgcount.StatementCounter) {
	b.Helper()
	pool, counter, _ := testdb.NewTracedPool(b)
	s := migratedStore(b, pool, roomstore.PostgresConfig{})
	ctx := testCtx(b)
	_, err := pool.Exec(ctx, `INSERT INTO rooms (id, name, description, plane, zone, sub_zone, environment, exits, attributes)
SELECT 'room-' || i, 'Room ' || i, 'A room of the benchmark world.', 'earth', 'zone-' || (i % 20), 'sub-' || (i % 100),
       'graveyard', jsonb_build_object('north', 'room-' || ((i + 1) % $1), 'south', 'room-' || ((i + $1 - 1) % $1)),
       '{"dark":true,"depth":3}'::json
FROM generate_series(0, $1 - 1) AS i`, pgBenchRooms)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, pgBenchRooms)
	for i := range ids {
		ids[i] = fmt.Sprint("room-", i)
	}
	return s, ids, counter
}

// BenchmarkPostgresGetRooms1000 reads 1,000 rooms per op from the database (no cache):
// "batch" with one GetRooms, "singles" with 1,000 GetRoom calls. round_trips/op counts the
// statements the pool sent, with a pgx tracer.
func BenchmarkPostgresGetRooms1000(b *testing.B) {
	s, ids, counter := benchPostgres(b)
	ctx := testCtx(b)
	b.Run("batch", func(b *testing.B) {
		before := counter.RoundTrips()
		for b.Loop() {
			got, err := s.GetRooms(ctx, ids)
			if err != nil || len(got) != pgBenchRooms {
				b.Fatalf("GetRooms = %d rooms, %v", len(got), err)
			}
		}
		b.ReportMetric(float64(counter.RoundTrips()-before)/float64(b.N), "round_trips/op")
	})
	b.Run("singles", func(b *testing.B) {
		before := counter.RoundTrips()
		for b.Loop() {
			for _, id := range ids {
				if _, err := s.GetRoom(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(counter.RoundTrips()-before)/float64(b.N), "round_trips/op")
	})
}

// BenchmarkPostgresGetRooms1000Ratio times one GetRooms of 1,000 ids and 1,000 GetRoom
// calls in each op of the same run and reports both and their ratio (singles / batch).
func BenchmarkPostgresGetRooms1000Ratio(b *testing.B) {
	s, ids, counter := benchPostgres(b)
	ctx := testCtx(b)
	var batch, singles time.Duration
	var batchTrips, singleTrips int64
	for b.Loop() {
		c0 := counter.RoundTrips()
		t0 := time.Now()
		if _, err := s.GetRooms(ctx, ids); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		c1 := counter.RoundTrips()
		for _, id := range ids {
			if _, err := s.GetRoom(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		batch += t1.Sub(t0)
		singles += time.Since(t1)
		batchTrips += c1 - c0
		singleTrips += counter.RoundTrips() - c1
	}
	n := float64(b.N)
	b.ReportMetric(float64(batch.Nanoseconds())/n, "batch_ns/op")
	b.ReportMetric(float64(singles.Nanoseconds())/n, "singles_ns/op")
	b.ReportMetric(float64(singles)/float64(batch), "singles/batch")
	b.ReportMetric(float64(batchTrips)/n, "batch_round_trips/op")
	b.ReportMetric(float64(singleTrips)/n, "singles_round_trips/op")
}
