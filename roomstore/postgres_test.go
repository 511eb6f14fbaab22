package roomstore_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/tracelog"

	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/internal/testkit/testlog"
	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

func TestPostgresConformanceInjectedPool(t *testing.T) {
	t.Parallel()
	roomstoretest.Run(t, func(t *testing.T) roomstore.RoomStore {
		pool, _ := testdb.NewPool(t)
		// BatchChunk 500 makes the suite's 1,210-id GetRooms a three-chunk batch.
		return migratedStore(t, pool, roomstore.PostgresConfig{BatchChunk: 500})
	})
}

func TestPostgresConformanceOpenPostgres(t *testing.T) {
	t.Parallel()
	roomstoretest.Run(t, func(t *testing.T) roomstore.RoomStore {
		cs, _ := testdb.NewSchema(t)
		s, err := roomstore.OpenPostgres(testCtx(t), cs, roomstore.PostgresConfig{ApplicationName: uniqueName("gp-conf-")})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestPostgresSchemaField: Schema qualifies Table the way flux.PostgresConfig.Schema does,
// so a game names its schema the same way in both configs; Migrate creates it when it does
// not exist.
func TestPostgresSchemaField(t *testing.T) {
	t.Parallel()
	pool, schema := testdb.NewPool(t)
	gameSchema := schema + "_game" // does not exist yet
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+gameSchema+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	s := migratedStore(t, pool, roomstore.PostgresConfig{Schema: gameSchema, Table: "world rooms"})
	if err := s.PutRoom(testCtx(t), roomstore.Room{ID: "r1", Name: "One"}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(testCtx(t), `SELECT count(*) FROM `+pgx.Identifier{gameSchema, "world rooms"}.Sanitize()).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows in %s.\"world rooms\": %d, %v", gameSchema, n, err)
	}
}

func TestPostgresConformanceGameOwnedTable(t *testing.T) {
	t.Parallel()
	roomstoretest.Run(t, func(t *testing.T) roomstore.RoomStore {
		pool, _ := testdb.NewPool(t)
		_, gameSchema := testdb.NewSchema(t) // not on the pool's search_path
		table := gameSchema + `.World "Rooms"; --`
		s := migratedStore(t, pool, roomstore.PostgresConfig{Table: table})
		var n int
		err := pool.QueryRow(testCtx(t), `SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = $2`,
			gameSchema, `World "Rooms"; --`).Scan(&n)
		if err != nil || n != 1 {
			t.Fatalf("table in the game's schema: count %d, %v", n, err)
		}
		return s
	})
}

func TestPostgresCustomSelectOverSeveralTables(t *testing.T) {
	t.Parallel()
	pool, counter, _ := testdb.NewTracedPool(t)
	ctx := testCtx(t)
	_, err := pool.Exec(ctx, `
CREATE TABLE zones (id int PRIMARY KEY, plane text NOT NULL, name text NOT NULL);
CREATE TABLE sub_zones (id int PRIMARY KEY, zone_id int NOT NULL REFERENCES zones, name text NOT NULL);
CREATE TABLE world_rooms (id text PRIMARY KEY, title text NOT NULL, body text, sub_zone_id int REFERENCES sub_zones,
  env text, flags jsonb, rev bigint NOT NULL DEFAULT 1);
CREATE TABLE room_exits (room_id text REFERENCES world_rooms, direction text, target text NOT NULL,
  PRIMARY KEY (room_id, direction));
INSERT INTO zones VALUES (1, 'earth', 'arkham'), (2, 'dream', 'celephais');
INSERT INTO sub_zones VALUES (10, 1, 'sanitarium'), (20, 2, 'harbour');
INSERT INTO world_rooms VALUES
  ('ward', 'The Ward', 'White walls.', 10, 'sanctuary', '{"beds": 12}', 3),
  ('quay', 'The Quay', NULL, 20, 'sea', NULL, 1),
  ('limbo', 'Limbo', 'Nowhere.', NULL, NULL, NULL, 7);
INSERT INTO room_exits VALUES ('ward', 'north', 'hall'), ('ward', 'down', 'cellar'), ('quay', 'east', 'ward');
`)
	if err != nil {
		t.Fatal(err)
	}
	const selectSQL = `
SELECT r.id, r.title, r.body, z.plane, z.name, sz.name, r.env,
       (SELECT jsonb_object_agg(e.direction, e.target) FROM room_exits e WHERE e.room_id = r.id),
       r.flags, r.rev
FROM world_rooms r
LEFT JOIN sub_zones sz ON sz.id = r.sub_zone_id
LEFT JOIN zones z ON z.id = sz.zone_id
WHERE r.id = ANY($1)`
	s, err := roomstore.NewPostgres(pool, roomstore.PostgresConfig{SelectSQL: selectSQL, BatchChunk: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.ReadOnly() {
		t.Fatal("a store with SelectSQL is not read-only")
	}

	ward, err := s.GetRoom(ctx, "ward")
	if err != nil {
		t.Fatal(err)
	}
	want := roomstore.Room{
		ID: "ward", Name: "The Ward", Description: "White walls.", Plane: "earth", Zone: "arkham",
		SubZone: "sanitarium", Environment: "sanctuary", Version: 3,
		Exits:      roomstore.NewExits(map[string]string{"north": "hall", "down": "cellar"}),
		Attributes: roomstore.MustAttributes(map[string]int{"beds": 12}),
	}
	if !ward.Equal(want) {
		t.Fatalf("GetRoom(ward) = %+v, want %+v", ward, want)
	}
	if _, err := s.GetRoom(ctx, "missing"); !errors.Is(err, roomstore.ErrNotFound) {
		t.Fatalf("GetRoom(missing) = %v, want ErrNotFound", err)
	}

	before := counter.RoundTrips()
	got, err := s.GetRooms(ctx, []string{"ward", "quay", "limbo", "missing", "ward"}) // 3 chunks of 2
	if err != nil {
		t.Fatal(err)
	}
	if n := counter.RoundTrips() - before; n != 1 {
		t.Fatalf("chunked GetRooms sent %d round trips, want 1", n)
	}
	if len(got) != 3 || !got["ward"].Equal(want) {
		t.Fatalf("GetRooms = %+v", got)
	}
	quay := roomstore.Room{ID: "quay", Name: "The Quay", Plane: "dream", Zone: "celephais", SubZone: "harbour",
		Environment: "sea", Version: 1, Exits: roomstore.NewExits(map[string]string{"east": "ward"})}
	if !got["quay"].Equal(quay) {
		t.Fatalf("quay = %+v, want %+v", got["quay"], quay)
	}
	if l := got["limbo"]; !l.Equal(roomstore.Room{ID: "limbo", Name: "Limbo", Description: "Nowhere.", Version: 7}) {
		t.Fatalf("limbo (NULL sub-zone, exits, attributes) = %+v", l)
	}

	// Writes are refused before any round trip; the game's tables are untouched.
	before = counter.RoundTrips()
	if err := s.PutRoom(ctx, want); !errors.Is(err, roomstore.ErrReadOnly) {
		t.Fatalf("PutRoom = %v, want ErrReadOnly", err)
	}
	if _, err := s.PutRoomVersion(ctx, want); !errors.Is(err, roomstore.ErrReadOnly) {
		t.Fatalf("PutRoomVersion = %v, want ErrReadOnly", err)
	}
	if err := s.DeleteRoom(ctx, "ward"); !errors.Is(err, roomstore.ErrReadOnly) {
		t.Fatalf("DeleteRoom = %v, want ErrReadOnly", err)
	}
	if err := s.Migrate(ctx); !errors.Is(err, roomstore.ErrReadOnly) {
		t.Fatalf("Migrate = %v, want ErrReadOnly", err)
	}
	if n := counter.RoundTrips() - before; n != 0 {
		t.Fatalf("refused writes sent %d round trips", n)
	}
	// A game's own write is seen by the next read (no caching in this store).
	if _, err := pool.Exec(ctx, `UPDATE world_rooms SET title = 'Renamed', rev = rev + 1 WHERE id = 'ward'`); err != nil {
		t.Fatal(err)
	}
	if r, err := s.GetRoom(ctx, "ward"); err != nil || r.Name != "Renamed" || r.Version != 4 {
		t.Fatalf("after the game's update: %+v, %v", r, err)
	}
}

func TestPostgresInvalidInputMakesNoRoundTrip(t *testing.T) {
	t.Parallel()
	pool, counter, _ := testdb.NewTracedPool(t)
	s := migratedStore(t, pool, roomstore.PostgresConfig{})
	ctx := testCtx(t)
	before, beforeStats := counter.RoundTrips(), s.Stats().RoundTrips
	for name, id := range roomstoretest.InvalidIDs() {
		if _, err := s.GetRoom(ctx, id); !errors.Is(err, roomstore.ErrInvalidID) {
			t.Errorf("%s: GetRoom = %v", name, err)
		}
		if _, err := s.GetRooms(ctx, []string{"fine", id}); !errors.Is(err, roomstore.ErrInvalidID) {
			t.Errorf("%s: GetRooms = %v", name, err)
		}
		if err := s.VisitRooms(ctx, []string{"fine", id}, func(roomstore.Room) {}); !errors.Is(err, roomstore.ErrInvalidID) {
			t.Errorf("%s: VisitRooms = %v", name, err)
		}
		if err := s.PutRoom(ctx, roomstore.Room{ID: id}); !errors.Is(err, roomstore.ErrInvalidID) {
			t.Errorf("%s: PutRoom = %v", name, err)
		}
		if err := s.DeleteRoom(ctx, id); !errors.Is(err, roomstore.ErrInvalidID) {
			t.Errorf("%s: DeleteRoom = %v", name, err)
		}
	}
	bad := roomstore.Room{ID: "ok", Exits: roomstore.NewExits(map[string]string{"up": "bad\x00"})}
	if err := s.PutRoom(ctx, bad); !errors.Is(err, roomstore.ErrInvalidRoom) {
		t.Errorf("PutRoom(bad exit) = %v", err)
	}
	if got, err := s.GetRooms(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("GetRooms(nil) = %v, %v", got, err)
	}
	if n := counter.RoundTrips() - before; n != 0 {
		t.Fatalf("invalid input sent %d round trips", n)
	}
	if n := s.Stats().RoundTrips - beforeStats; n != 0 {
		t.Fatalf("Stats counted %d round trips for invalid input", n)
	}
}

func TestPostgresOneRoundTripPerCall(t *testing.T) {
	t.Parallel()
	pool, counter, _ := testdb.NewTracedPool(t)
	s := migratedStore(t, pool, roomstore.PostgresConfig{BatchChunk: 7})
	ctx := testCtx(t)
	ids := make([]string, 50)
	for i := range ids {
		ids[i] = fmt.Sprint("r", i)
	}
	for _, id := range ids[:25] {
		before := counter.RoundTrips()
		v, err := s.PutRoomVersion(ctx, roomstoretest.SampleRoom(id))
		if err != nil || v != 1 {
			t.Fatalf("PutRoomVersion = %d, %v", v, err)
		}
		if n := counter.RoundTrips() - before; n != 1 {
			t.Fatalf("PutRoom sent %d round trips", n)
		}
	}
	statsBefore := s.Stats()
	before := counter.RoundTrips()
	got, err := s.GetRooms(ctx, ids) // 8 chunks
	if err != nil || len(got) != 25 {
		t.Fatalf("GetRooms = %d rooms, %v", len(got), err)
	}
	if n := counter.RoundTrips() - before; n != 1 {
		t.Fatalf("GetRooms of 50 ids in chunks of 7 sent %d round trips", n)
	}
	st := s.Stats()
	if st.RoundTrips-statsBefore.RoundTrips != 1 || st.RoomsRead-statsBefore.RoomsRead != 25 || st.Writes != 25 {
		t.Fatalf("Stats = %+v (before %+v)", st, statsBefore)
	}
	if st.TotalConns < 1 || st.MaxConns < 1 {
		t.Fatalf("Stats pool fields = %+v", st)
	}
	before = counter.RoundTrips()
	visited := 0
	if err := s.VisitRooms(ctx, append(ids, ids...), func(roomstore.Room) { visited++ }); err != nil || visited != 25 {
		t.Fatalf("VisitRooms = %d rooms, %v", visited, err)
	}
	if n := counter.RoundTrips() - before; n != 1 {
		t.Fatalf("VisitRooms of 100 ids in chunks of 7 sent %d round trips", n)
	}
	before = counter.RoundTrips()
	if err := s.DeleteRoom(ctx, "r0"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRoom(ctx, "r0"); !errors.Is(err, roomstore.ErrNotFound) {
		t.Fatalf("second delete = %v", err)
	}
	if n := counter.RoundTrips() - before; n != 2 {
		t.Fatalf("two deletes sent %d round trips", n)
	}
}

func TestPostgresErrorsStayMatchable(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	s, err := roomstore.NewPostgres(pool, roomstore.PostgresConfig{Table: "never_migrated"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.GetRoom(testCtx(t), "x")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42P01" {
		t.Fatalf("GetRoom on a missing table = %v, want a *pgconn.PgError 42P01", err)
	}
	if !strings.HasPrefix(err.Error(), "roomstore: get room:") {
		t.Fatalf("error lacks context: %v", err)
	}
	if s.Stats().Errors != 1 {
		t.Fatalf("Stats().Errors = %d, want 1", s.Stats().Errors)
	}
}

func TestPostgresInvalidConfig(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	bad := map[string]roomstore.PostgresConfig{
		"three-part table":   {Table: "a.b.c"},
		"schema twice":       {Schema: "game", Table: "other.rooms"},
		"dotted schema":      {Schema: "a.b", Table: "rooms"},
		"long schema":        {Schema: strings.Repeat("s", 64), Table: "rooms"},
		"empty schema":       {Table: ".rooms"},
		"long table":         {Table: strings.Repeat("t", 64)},
		"NUL in table":       {Table: "ro\x00oms"},
		"negative chunk":     {BatchChunk: -1},
		"huge chunk":         {BatchChunk: roomstore.MaxBatchChunk + 1},
		"select without $1":  {SelectSQL: "SELECT 1"},
		"bad trace level":    {TraceLogLevel: 99},
		"long app name":      {ApplicationName: strings.Repeat("a", 64)},
		"invalid utf-8 name": {ApplicationName: "\xff"},
	}
	for name, cfg := range bad {
		if _, err := roomstore.NewPostgres(pool, cfg); !errors.Is(err, roomstore.ErrInvalidConfig) {
			t.Errorf("%s: NewPostgres = %v, want ErrInvalidConfig", name, err)
		}
		if _, err := roomstore.OpenPostgres(testCtx(t), testdb.URL(t), cfg); !errors.Is(err, roomstore.ErrInvalidConfig) {
			t.Errorf("%s: OpenPostgres = %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := roomstore.NewPostgres(nil, roomstore.PostgresConfig{}); !errors.Is(err, roomstore.ErrInvalidConfig) {
		t.Errorf("NewPostgres(nil pool) = %v", err)
	}
	_, err := roomstore.OpenPostgres(testCtx(t), "postgres://u:hunter2@[bad", roomstore.PostgresConfig{})
	if !errors.Is(err, roomstore.ErrInvalidConfig) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("OpenPostgres(unparsable) = %v", err)
	}
	// An unparsable string is refused saying where it fails, never quoting a password.
	for connString, where := range map[string]string{
		"postgres://u:hunter2@127.0.0.1:notaport/db":   "invalid port",
		"host=127.0.0.1 password=hunter2 port=abc":     "invalid port",
		"postgres://u:hunter2@127.0.0.1/db?sslmode=no": "sslmode is invalid",
		"host=127.0.0.1 password='hunter2":             "unterminated quoted string",
		"postgres://u:hunter2@[bad":                    "IPv6 host address",
	} {
		_, err := roomstore.OpenPostgres(testCtx(t), connString, roomstore.PostgresConfig{})
		if !errors.Is(err, roomstore.ErrInvalidConfig) || !strings.Contains(err.Error(), where) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("OpenPostgres(a string with %s) = %v; want ErrInvalidConfig saying so, without the password", where, err)
		}
	}
	d := roomstore.PostgresConfig{}.WithDefaults()
	if d.Table != roomstore.DefaultTable || d.BatchChunk != roomstore.DefaultBatchChunk ||
		d.ApplicationName != roomstore.DefaultApplicationName || d.TraceLogLevel != roomstore.DefaultTraceLogLevel {
		t.Errorf("WithDefaults = %+v", d)
	}
	if sql, err := roomstore.Schema("game.rooms"); err != nil || !strings.Contains(sql, `CREATE TABLE IF NOT EXISTS "game"."rooms"`) {
		t.Errorf("Schema = %q, %v", sql, err)
	}
	if _, err := roomstore.Schema("a.b.c"); !errors.Is(err, roomstore.ErrInvalidConfig) {
		t.Errorf("Schema(a.b.c) = %v", err)
	}
}

func TestPostgresMigrateConcurrentlyFromSeveralPools(t *testing.T) {
	t.Parallel()
	cs, schema := testdb.NewSchema(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for range n {
		wg.Go(func() {
			s, err := roomstore.OpenPostgres(testCtx(t), cs, roomstore.PostgresConfig{Table: "shared_rooms"})
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			errs <- s.Migrate(testCtx(t))
			errs <- s.Migrate(testCtx(t)) // and again: idempotent
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	pool, err := pgxpool.New(testCtx(t), cs)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var tables int
	if err := pool.QueryRow(testCtx(t), `SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'shared_rooms'`,
		schema).Scan(&tables); err != nil || tables != 1 {
		t.Fatalf("tables = %d, %v", tables, err)
	}
}

func TestPostgresCloseKeepsCallerPoolAndRejectsCalls(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	s := migratedStore(t, pool, roomstore.PostgresConfig{})
	ctx := testCtx(t)
	if err := s.PutRoom(ctx, roomstoretest.SampleRoom("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := s.GetRoom(ctx, "a"); !errors.Is(err, roomstore.ErrClosed) {
		t.Fatalf("GetRoom after Close = %v", err)
	}
	if err := s.Migrate(ctx); !errors.Is(err, roomstore.ErrClosed) {
		t.Fatalf("Migrate after Close = %v", err)
	}
	var name string
	if err := pool.QueryRow(ctx, "SELECT name FROM rooms WHERE id = 'a'").Scan(&name); err != nil || name == "" {
		t.Fatalf("caller's pool after store.Close: %q, %v", name, err)
	}
	// The caller's pool serves a new store.
	s2 := migratedStore(t, pool, roomstore.PostgresConfig{})
	if _, err := s2.GetRoom(ctx, "a"); err != nil {
		t.Fatal(err)
	}
}

// TestPostgresCloseDuringCalls closes an OpenPostgres store while many goroutines use it:
// every call either succeeds or reports ErrClosed, nothing panics or hangs.
func TestPostgresCloseDuringCalls(t *testing.T) {
	t.Parallel()
	cs, _ := testdb.NewSchema(t)
	ctx := testCtx(t)
	s, err := roomstore.OpenPostgres(ctx, cs, roomstore.PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const workers = 16
	var wg sync.WaitGroup
	started := make(chan struct{}, workers)
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			signaled := false
			defer func() {
				if !signaled {
					started <- struct{}{}
				}
			}()
			for i := 0; ; i++ {
				id := fmt.Sprint("w", w, "-", i%5)
				var err error
				if i%2 == 0 {
					err = s.PutRoom(ctx, roomstoretest.SampleRoom(id))
				} else {
					_, err = s.GetRooms(ctx, []string{id, "x"})
				}
				if i == 3 {
					started <- struct{}{}
					signaled = true
				}
				if err != nil {
					if !errors.Is(err, roomstore.ErrClosed) {
						errs <- err
					}
					return
				}
			}
		})
	}
	for range workers {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("call racing Close = %v, want ErrClosed", err)
	}
}

// TestPostgresManyReadersAndWriters is heavier than the suite's Concurrent case: many
// goroutines on few rooms, checked by the version sum.
func TestPostgresManyReadersAndWriters(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	s := migratedStore(t, pool, roomstore.PostgresConfig{})
	ctx := testCtx(t)
	const rooms, workers, rounds = 5, 32, 30
	ids := make([]string, rooms)
	for i := range ids {
		ids[i] = fmt.Sprint("hot-", i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				id := ids[(w+i)%rooms]
				var err error
				switch i % 3 {
				case 0:
					err = s.PutRoom(ctx, roomstoretest.SampleRoom(id))
				case 1:
					_, err = s.GetRooms(ctx, ids)
				default:
					_, err = s.GetRoom(ctx, id)
					if errors.Is(err, roomstore.ErrNotFound) {
						err = nil
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := s.GetRooms(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, r := range got {
		sum += r.Version
	}
	if want := int64(workers * rounds / 3); sum != want {
		t.Fatalf("sum of versions = %d, want %d", sum, want)
	}
}

func TestOpenPostgresApplicationName(t *testing.T) {
	t.Parallel()
	cs, _ := testdb.NewSchema(t)
	fromURL, err := testdb.WithParams(cs, map[string]string{"application_name": "from-url"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, cs, cfgName, want string
	}{
		{"default", cs, "", roomstore.DefaultApplicationName},
		{"connection string wins over the default", fromURL, "", "from-url"},
		{"explicit config wins", fromURL, "explicit", "explicit"},
	}
	for _, c := range cases {
		s, err := roomstore.OpenPostgres(testCtx(t), c.cs, roomstore.PostgresConfig{ApplicationName: c.cfgName})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = s.Pool().QueryRow(testCtx(t), "SHOW application_name").Scan(&got)
		_ = s.Close()
		if err != nil || got != c.want {
			t.Errorf("%s: application_name = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

func TestOpenPostgresTracesThroughZerolog(t *testing.T) {
	t.Parallel()
	cs, _ := testdb.NewSchema(t)
	var buf testlog.Buffer
	s, err := roomstore.OpenPostgres(testCtx(t), cs, roomstore.PostgresConfig{
		Logger:        buf.Logger(),
		TraceLogLevel: tracelog.LogLevelInfo,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetRoom(testCtx(t), "traced-id"); err == nil {
		t.Fatal("GetRoom before Migrate succeeded")
	}
	out := buf.String()
	if !strings.Contains(out, `"module":"pgx"`) || !strings.Contains(out, "WHERE id = ANY($1)") ||
		!strings.Contains(out, `"level":"error"`) {
		t.Fatalf("pgx trace log through zerolog = %s", out)
	}
	// Nothing logged at LogLevelNone.
	var quiet testlog.Buffer
	s2, err := roomstore.OpenPostgres(testCtx(t), cs, roomstore.PostgresConfig{
		Logger: quiet.Logger(), TraceLogLevel: tracelog.LogLevelNone,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = s2.GetRoom(testCtx(t), "x")
	_ = s2.Close()
	if strings.Contains(quiet.String(), `"module":"pgx"`) {
		t.Fatalf("LogLevelNone still traced: %s", quiet.String())
	}
}

// TestPostgresCustomSelectExtraRowsIgnored: a game's query that returns more rows than it
// was asked for (here: every room) still yields exactly the rooms asked for.
func TestPostgresCustomSelectExtraRowsIgnored(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	ctx := testCtx(t)
	if _, err := pool.Exec(ctx, `
CREATE TABLE loose_rooms (id text PRIMARY KEY, title text);
INSERT INTO loose_rooms VALUES ('a', 'A'), ('b', 'B'), ('c', 'C');`); err != nil {
		t.Fatal(err)
	}
	s, err := roomstore.NewPostgres(pool, roomstore.PostgresConfig{SelectSQL: `
SELECT id, title, NULL, NULL, NULL, NULL, NULL, NULL::jsonb, NULL::jsonb, NULL::bigint
FROM loose_rooms WHERE cardinality($1::text[]) > 0`})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.GetRooms(ctx, []string{"a", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["a"].Name != "A" {
		t.Fatalf("GetRooms = %v, want only room a", got)
	}
	if r, err := s.GetRoom(ctx, "b"); err != nil || r.ID != "b" {
		t.Fatalf("GetRoom(b) = %+v, %v", r, err)
	}
	var visited []string
	if err := s.VisitRooms(ctx, []string{"a", "missing", "a"}, func(r roomstore.Room) {
		visited = append(visited, r.ID+"="+r.Name)
	}); err != nil {
		t.Fatal(err)
	}
	if len(visited) != 1 || visited[0] != "a=A" {
		t.Fatalf("VisitRooms visited %q, want only room a, once", visited)
	}

	// A query that returns each room twice: GetRooms and VisitRooms still give it once.
	twice, err := roomstore.NewPostgres(pool, roomstore.PostgresConfig{SelectSQL: `
SELECT id, title, NULL, NULL, NULL, NULL, NULL, NULL::jsonb, NULL::jsonb, NULL::bigint
FROM loose_rooms, generate_series(1, 2) WHERE id = ANY($1)`})
	if err != nil {
		t.Fatal(err)
	}
	defer twice.Close()
	visited = visited[:0]
	if err := twice.VisitRooms(ctx, []string{"b", "c"}, func(r roomstore.Room) { visited = append(visited, r.ID) }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(visited)
	if !slices.Equal(visited, []string{"b", "c"}) {
		t.Fatalf("VisitRooms over a query returning rows twice visited %q, want b and c once", visited)
	}
	if got, err := twice.GetRooms(ctx, []string{"b", "c"}); err != nil || len(got) != 2 || got["c"].Name != "C" {
		t.Fatalf("GetRooms over a query returning rows twice = %v, %v", got, err)
	}
}
