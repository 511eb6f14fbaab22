package roomstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/gamepersist/gamepersist/internal/testkit/faultproxy"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/internal/testkit/testlog"
	"github.com/gamepersist/gamepersist/internal/testkit/testmetrics"
	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

// readVersion reads id through c and returns its version.
func readVersion(t testing.TB, c *roomstore.Cached, id string) int64 {
	t.Helper()
	r, err := c.GetRoom(cachedCtx(t), id)
	if err != nil {
		t.Fatalf("GetRoom %q: %v", id, err)
	}
	return r.Version
}

// TestChangeListenerSQLUpdateReachesEveryCache: three caches, each with its own listener,
// hold a room; an UPDATE in plain SQL reaches all three (they serve the new version once
// their listener applied the notice), and so do an INSERT of a room they remember as
// absent and a DELETE.
func TestChangeListenerSQLUpdateReachesEveryCache(t *testing.T) {
	t.Parallel()
	cs, _ := testdb.NewSchema(t)
	channel := uniqueName("gp_chan_")
	var nodes []*notifyNode
	for range 3 {
		nodes = append(nodes, newNotifyNode(t, cs, channel, roomstore.ChangeListenerConfig{}))
	}
	ctx := cachedCtx(t)
	if err := nodes[0].store.PutRoom(ctx, roomstoretest.SampleRoom("hall")); err != nil {
		t.Fatal(err)
	}
	waitNotices := func(want uint64) {
		t.Helper()
		for i, n := range nodes {
			cachedWaitFor(t, fmt.Sprintf("node %d to apply %d notices", i, want), func() bool { return n.listener.Stats().Notices >= want })
		}
	}
	waitNotices(1) // the PutRoom
	for _, n := range nodes {
		if v := readVersion(t, n.cache, "hall"); v != 1 {
			t.Fatalf("version %d before the edit, want 1", v)
		}
		if _, err := n.cache.GetRoom(ctx, "attic"); !errors.Is(err, roomstore.ErrNotFound) {
			t.Fatalf("attic: %v, want ErrNotFound (now remembered as absent)", err)
		}
	}

	if _, err := nodes[0].pool.Exec(ctx, `UPDATE rooms SET name = 'Great Hall', version = version + 1 WHERE id = 'hall'`); err != nil {
		t.Fatal(err)
	}
	waitNotices(2)
	for i, n := range nodes {
		r, err := n.cache.GetRoom(ctx, "hall")
		if err != nil || r.Name != "Great Hall" || r.Version != 2 {
			t.Fatalf("node %d after the UPDATE: %+v, %v; want Great Hall, version 2", i, r, err)
		}
	}

	if _, err := nodes[0].pool.Exec(ctx, `INSERT INTO rooms (id, name) VALUES ('attic', 'Attic')`); err != nil {
		t.Fatal(err)
	}
	waitNotices(3)
	for i, n := range nodes {
		if r, err := n.cache.GetRoom(ctx, "attic"); err != nil || r.Name != "Attic" {
			t.Fatalf("node %d after the INSERT: %+v, %v; want the attic", i, r, err)
		}
	}

	if _, err := nodes[0].pool.Exec(ctx, `DELETE FROM rooms WHERE id = 'hall'`); err != nil {
		t.Fatal(err)
	}
	waitNotices(4)
	for i, n := range nodes {
		if _, err := n.cache.GetRoom(ctx, "hall"); !errors.Is(err, roomstore.ErrNotFound) {
			t.Fatalf("node %d after the DELETE: %v, want ErrNotFound", i, err)
		}
		s := n.listener.Stats()
		if s.Notices != 4 || s.IDsInvalidated != 4 || s.Gaps != 0 || s.Malformed != 0 || s.FullInvalidations != 1 {
			t.Errorf("node %d stats %+v, want 4 notices of one id each, the start's full invalidation only", i, s)
		}
	}
}

// TestChangeListenerBackendTerminated: when the listener's backend is terminated
// (pg_terminate_backend), the cache is emptied, the listener reconnects, empties it again
// once listening (an edit made while it was away is served), and applies later notices.
func TestChangeListenerBackendTerminated(t *testing.T) {
	t.Parallel()
	cs, _ := testdb.NewSchema(t)
	channel := uniqueName("gp_chan_")
	ctx := cachedCtx(t)
	pool, err := pgxpool.New(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := migratedStore(t, pool, roomstore.PostgresConfig{NotifyChannel: channel})
	cache := newCached(t, store, roomstore.CacheConfig{})
	target := &recordingTarget{inner: cache}
	connConfig := pool.Config().ConnConfig.Copy()
	appName := uniqueName("gp_listener_")
	connConfig.RuntimeParams["application_name"] = appName
	l := runListener(t, connConfig, target, roomstore.ChangeListenerConfig{Channel: channel})

	if err := store.PutRoom(ctx, roomstoretest.SampleRoom("hall")); err != nil {
		t.Fatal(err)
	}
	cachedWaitFor(t, "the PutRoom's notice", func() bool { return l.Stats().Notices >= 1 })
	if v := readVersion(t, cache, "hall"); v != 1 {
		t.Fatalf("version %d, want 1", v)
	}
	// The edit rides in the same transaction as the termination: it commits while the
	// listener is down, so its notice never reaches the listener.
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1;
UPDATE rooms SET name = 'Hall, edited unseen', version = version + 1 WHERE id = 'hall'`, pgx.QueryExecModeSimpleProtocol, appName); err != nil {
		t.Fatal(err)
	}
	cachedWaitFor(t, "the listener to listen again", func() bool {
		s := l.Stats()
		return s.Reconnects >= 1 && s.Listening
	})
	s := l.Stats()
	// At Run's start, at the loss, and once listening again.
	if s.Gaps != 1 || s.Reconnects != 1 || s.FullInvalidations != 3 || target.all.Load() != 3 {
		t.Fatalf("stats %+v, InvalidateAll calls %d; want 1 gap, 1 reconnect, 3 full invalidations", s, target.all.Load())
	}
	if r, err := cache.GetRoom(ctx, "hall"); err != nil || r.Version != 2 {
		t.Fatalf("after the reconnect: %+v, %v; want the unseen edit (version 2)", r, err)
	}
	before := l.Stats().Notices
	if _, err := pool.Exec(ctx, `UPDATE rooms SET version = version + 1 WHERE id = 'hall'`); err != nil {
		t.Fatal(err)
	}
	cachedWaitFor(t, "a notice on the new connection", func() bool { return l.Stats().Notices > before })
	if v := readVersion(t, cache, "hall"); v != 3 {
		t.Fatalf("version %d after an edit on the new connection, want 3", v)
	}
}

// TestChangeListenerGameOwnedTables: a store reading the game's own tables through a
// SelectSQL, keyed by other columns, follows SQL edits of each table once
// ChangeTriggerSQL is installed on them with the column that holds the room id.
func TestChangeListenerGameOwnedTables(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	ctx := cachedCtx(t)
	channel := uniqueName("gp_chan_")
	if _, err := pool.Exec(ctx, `
CREATE TABLE world_rooms (room_key text PRIMARY KEY, title text NOT NULL, rev bigint NOT NULL DEFAULT 1);
CREATE TABLE room_exits (from_room text REFERENCES world_rooms, direction text, target text NOT NULL,
  PRIMARY KEY (from_room, direction));
INSERT INTO world_rooms VALUES ('ward', 'The Ward', 1), ('quay', 'The Quay', 1);
INSERT INTO room_exits VALUES ('ward', 'north', 'quay');`); err != nil {
		t.Fatal(err)
	}
	for table, column := range map[string]string{"world_rooms": "room_key", "room_exits": "from_room"} {
		sql, err := roomstore.ChangeTriggerSQL(table, column, channel)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("install on %s: %v", table, err)
		}
	}
	store, err := roomstore.NewPostgres(pool, roomstore.PostgresConfig{SelectSQL: `
SELECT r.room_key, r.title, '', '', '', '', '',
       (SELECT jsonb_object_agg(e.direction, e.target) FROM room_exits e WHERE e.from_room = r.room_key),
       NULL, r.rev
FROM world_rooms r WHERE r.room_key = ANY($1)`})
	if err != nil {
		t.Fatal(err)
	}
	cache := newCached(t, store, roomstore.CacheConfig{})
	l := runListener(t, pool.Config().ConnConfig, cache, roomstore.ChangeListenerConfig{Channel: channel})

	ward, err := cache.GetRoom(ctx, "ward")
	if err != nil || ward.Exits.Len() != 1 {
		t.Fatalf("ward: %+v, %v; want one exit", ward, err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO room_exits VALUES ('ward', 'south', 'quay')`); err != nil {
		t.Fatal(err)
	}
	cachedWaitFor(t, "the exits notice", func() bool { return l.Stats().Notices >= 1 })
	if ward, err = cache.GetRoom(ctx, "ward"); err != nil || ward.Exits.Len() != 2 {
		t.Fatalf("after an exit was added in SQL: %+v, %v; want two exits", ward, err)
	}
	if _, err := pool.Exec(ctx, `UPDATE world_rooms SET title = 'The Old Ward' WHERE room_key = 'ward'`); err != nil {
		t.Fatal(err)
	}
	cachedWaitFor(t, "the rooms notice", func() bool { return l.Stats().Notices >= 2 })
	if ward, err = cache.GetRoom(ctx, "ward"); err != nil || ward.Name != "The Old Ward" {
		t.Fatalf("after a title edit in SQL: %+v, %v", ward, err)
	}
}

// TestChangeListenerLargeStatements: a statement touching many rooms reaches the listener
// as several notices within NOTIFY's limit carrying every id, one too large for
// MaxNotifyBatches notices (and a TRUNCATE) as NotifyAll, which empties the cache.
func TestChangeListenerLargeStatements(t *testing.T) {
	t.Parallel()
	cs, _ := testdb.NewSchema(t)
	channel := uniqueName("gp_chan_")
	n := newNotifyNode(t, cs, channel, roomstore.ChangeListenerConfig{})
	ctx := cachedCtx(t)
	long := strings.Repeat("x", 200)
	// 300 ids of about 210 bytes: about 8 notices.
	if _, err := n.pool.Exec(ctx, `INSERT INTO rooms (id) SELECT 'r' || g || $1 FROM generate_series(1, 300) g`, long); err != nil {
		t.Fatal(err)
	}
	cachedWaitFor(t, "300 ids", func() bool { return n.listener.Stats().IDsInvalidated >= 300 })
	s := n.listener.Stats()
	if s.IDsInvalidated != 300 || s.Notices < 2 || s.Notices > roomstore.MaxNotifyBatches || s.FullInvalidations != 1 {
		t.Fatalf("after 300 ids: %+v; want them all, over 2 to %d notices, no full invalidation", s, roomstore.MaxNotifyBatches)
	}
	// 2,000 such ids need more than MaxNotifyBatches notices: one NotifyAll instead.
	if _, err := n.pool.Exec(ctx, `INSERT INTO rooms (id) SELECT 's' || g || $1 FROM generate_series(1, 2000) g`, long); err != nil {
		t.Fatal(err)
	}
	cachedWaitFor(t, "the NotifyAll", func() bool { return n.listener.Stats().FullInvalidations >= 2 })
	if _, err := n.cache.GetRoom(ctx, "r1"+long); err != nil {
		t.Fatal(err)
	}
	if _, err := n.pool.Exec(ctx, `TRUNCATE rooms`); err != nil {
		t.Fatal(err)
	}
	cachedWaitFor(t, "the TRUNCATE's NotifyAll", func() bool { return n.listener.Stats().FullInvalidations >= 3 })
	if _, err := n.cache.GetRoom(ctx, "r1"+long); !errors.Is(err, roomstore.ErrNotFound) {
		t.Fatalf("after TRUNCATE: %v, want ErrNotFound", err)
	}
	if s := n.listener.Stats(); s.IDsInvalidated != 300 || s.Malformed != 0 {
		t.Fatalf("stats %+v: the large statements must not have sent ids", s)
	}
}

// TestChangeListenerMalformedNotice: a notice on the channel that is not the trigger's
// (someone's own pg_notify) empties the cache rather than being ignored, and is counted.
func TestChangeListenerMalformedNotice(t *testing.T) {
	t.Parallel()
	cs, _ := testdb.NewSchema(t)
	channel := uniqueName("gp_chan_")
	n := newNotifyNode(t, cs, channel, roomstore.ChangeListenerConfig{})
	ctx := cachedCtx(t)
	if _, err := n.pool.Exec(ctx, `SELECT pg_notify($1, 'room 7 changed')`, channel); err != nil {
		t.Fatal(err)
	}
	cachedWaitFor(t, "the notice", func() bool { return n.listener.Stats().Notices >= 1 })
	if s := n.listener.Stats(); s.Malformed != 1 || s.FullInvalidations != 2 || n.target.all.Load() != 2 {
		t.Fatalf("stats %+v, InvalidateAll calls %d; want 1 malformed notice and a full invalidation for it", s, n.target.all.Load())
	}
}

// TestChangeListenerDatabaseDown: a listener whose database does not answer keeps trying
// with backoff, counts the failures, never logs the password, and closes promptly.
func TestChangeListenerDatabaseDown(t *testing.T) {
	t.Parallel()
	cs, _ := testdb.NewSchema(t)
	connConfig, err := pgx.ParseConfig(withPassword(t, cs, closedPort(t)))
	if err != nil {
		t.Fatal(err)
	}
	var logs testlog.Buffer
	cache := newCached(t, newCountingStore(), roomstore.CacheConfig{})
	l := startListener(t, connConfig, cache, roomstore.ChangeListenerConfig{
		Channel: uniqueName("gp_chan_"), Logger: logs.Logger(),
	})
	cachedWaitFor(t, "two failed attempts", func() bool { return l.Stats().ConnectFailures >= 2 })
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Listening || s.Notices != 0 || s.Reconnects != 0 {
		t.Fatalf("stats %+v", s)
	}
	if out := logs.String(); !strings.Contains(out, "cannot listen") || strings.Contains(out, secretPassword) {
		t.Fatalf("log %q: want the failure logged, without the password", out)
	}
}

// TestChangeListenerLifecycle: Run returns nil when its ctx ends and ErrClosed after
// Close; a second concurrent Run is refused; Close before Run and twice is safe; a bad
// config is refused at construction.
func TestChangeListenerLifecycle(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	cache := newCached(t, newCountingStore(), roomstore.CacheConfig{})
	cc := pool.Config().ConnConfig

	l, err := roomstore.NewChangeListener(cc, cache, roomstore.ChangeListenerConfig{Channel: uniqueName("gp_chan_")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	var wg sync.WaitGroup
	wg.Go(func() { runErr = l.Run(ctx) })
	cachedWaitFor(t, "listening", func() bool { return l.Stats().Listening })
	if err := l.Run(context.Background()); !errors.Is(err, roomstore.ErrListenerRunning) {
		t.Fatalf("second Run: %v, want ErrListenerRunning", err)
	}
	cancel()
	wg.Wait()
	if runErr != nil {
		t.Fatalf("Run after its ctx ended: %v, want nil", runErr)
	}
	if err := l.Run(context.Background()); !errors.Is(err, roomstore.ErrClosed) {
		t.Fatalf("Run after Run returned: %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close after Run returned: %v", err)
	}

	l2, err := roomstore.NewChangeListener(cc, cache, roomstore.ChangeListenerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(l2.Close(), l2.Close()); err != nil {
		t.Fatalf("Close before Run, twice: %v", err)
	}
	if err := l2.Run(context.Background()); !errors.Is(err, roomstore.ErrClosed) {
		t.Fatalf("Run after Close: %v, want ErrClosed", err)
	}

	for _, bad := range []struct {
		cc     *pgx.ConnConfig
		target roomstore.ChangeTarget
		cfg    roomstore.ChangeListenerConfig
	}{
		{nil, cache, roomstore.ChangeListenerConfig{}},
		{cc, nil, roomstore.ChangeListenerConfig{}},
		{cc, cache, roomstore.ChangeListenerConfig{Channel: strings.Repeat("c", 64)}},
		{cc, cache, roomstore.ChangeListenerConfig{MinBackoff: -1}},
		{cc, cache, roomstore.ChangeListenerConfig{MinBackoff: 2e9, MaxBackoff: 1e9}},
	} {
		if _, err := roomstore.NewChangeListener(bad.cc, bad.target, bad.cfg); !errors.Is(err, roomstore.ErrInvalidConfig) {
			t.Errorf("NewChangeListener(%+v): %v, want ErrInvalidConfig", bad.cfg, err)
		}
	}
	if _, err := roomstore.NewPostgres(pool, roomstore.PostgresConfig{NotifyChannel: "bad\x00"}); !errors.Is(err, roomstore.ErrInvalidConfig) {
		t.Errorf("NotifyChannel with a NUL: %v, want ErrInvalidConfig", err)
	}
	if _, err := roomstore.ChangeTriggerSQL("rooms", "", "c"); !errors.Is(err, roomstore.ErrInvalidConfig) {
		t.Errorf("ChangeTriggerSQL without a column: %v, want ErrInvalidConfig", err)
	}
}

// TestChangeNotifyMigrateOptIn: Migrate installs the trigger only with NotifyChannel; an
// existing table gets it as one more versioned step, and a second Migrate does nothing.
func TestChangeNotifyMigrateOptIn(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.NewPool(t)
	ctx := cachedCtx(t)
	triggers := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass('rooms') AND NOT tgisinternal`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	migratedStore(t, pool, roomstore.PostgresConfig{})
	if n := triggers(); n != 0 {
		t.Fatalf("%d triggers without NotifyChannel, want 0", n)
	}
	migratedStore(t, pool, roomstore.PostgresConfig{NotifyChannel: roomstore.DefaultNotifyChannel})
	migratedStore(t, pool, roomstore.PostgresConfig{NotifyChannel: roomstore.DefaultNotifyChannel})
	if n := triggers(); n != 4 {
		t.Fatalf("%d triggers with NotifyChannel, want 4 (insert, update, delete, truncate)", n)
	}
	var steps int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM gamepersist_migrations WHERE component = 'roomstore rooms change notify'`).Scan(&steps); err != nil || steps != 1 {
		t.Fatalf("recorded change-notify steps: %d, %v; want 1", steps, err)
	}
}

// TestChangeListenerMetrics: the listener's counters are observed as Stats holds them,
// and no longer after Close.
func TestChangeListenerMetrics(t *testing.T) {
	t.Parallel()
	cs, _ := testdb.NewSchema(t)
	mp, collect := testmetrics.Provider(t)
	channel := uniqueName("gp_chan_")
	n := newNotifyNode(t, cs, channel, roomstore.ChangeListenerConfig{MeterProvider: mp})
	ctx := cachedCtx(t)
	if _, err := n.pool.Exec(ctx, `INSERT INTO rooms (id) VALUES ('a'), ('b')`); err != nil {
		t.Fatal(err)
	}
	cachedWaitFor(t, "the notice", func() bool { return n.listener.Stats().Notices >= 1 })
	m := collect()
	for name, want := range map[string]int64{
		roomstore.MetricListenerNotices: 1, roomstore.MetricListenerIDsInvalidated: 2,
		roomstore.MetricListenerFullInvalidations: 1, roomstore.MetricListenerGaps: 0, roomstore.MetricListenerReconnects: 0,
	} {
		sum, ok := m[name].Data.(metricdata.Sum[int64])
		if !ok || !sum.IsMonotonic || len(sum.DataPoints) != 1 || sum.DataPoints[0].Value != want || m[name].Unit == "" {
			t.Errorf("%s = %+v, want one monotonic point of %d with a unit", name, m[name], want)
		}
	}
	if err := n.listener.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := collect()[roomstore.MetricListenerNotices]; ok {
		t.Errorf("%s still observed after Close", roomstore.MetricListenerNotices)
	}
}

// TestChangeListenerSilentConnectionLoss: a quiet connection survives its health checks
// (no false gap), and one that stops answering without a word (replies dropped on the
// way) is found out by a health check: the cache is emptied, the listener reconnects once
// the path works again, and applies notices as before.
func TestChangeListenerSilentConnectionLoss(t *testing.T) {
	t.Parallel()
	cs, _ := testdb.NewSchema(t)
	proxy := faultproxy.Start(t, mustHost(t, cs))
	channel := uniqueName("gp_chan_")
	ctx := cachedCtx(t)
	pool, err := pgxpool.New(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := migratedStore(t, pool, roomstore.PostgresConfig{NotifyChannel: channel})
	cache := newCached(t, store, roomstore.CacheConfig{})
	connConfig, err := pgx.ParseConfig(faultproxy.RewriteURL(cs, proxy.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	l := runListener(t, connConfig, cache, roomstore.ChangeListenerConfig{
		Channel: channel, HealthCheck: 50 * time.Millisecond, ConnectTimeout: time.Second,
	})
	cachedWaitFor(t, "three health checks", func() bool { return l.Stats().HealthChecks >= 3 })
	if err := store.PutRoom(ctx, roomstoretest.SampleRoom("hall")); err != nil {
		t.Fatal(err)
	}
	cachedWaitFor(t, "a notice after the health checks", func() bool { return l.Stats().Notices >= 1 })
	if s := l.Stats(); s.Gaps != 0 {
		t.Fatalf("a quiet connection was taken for lost: %+v", s)
	}
	readVersion(t, cache, "hall")

	if err := proxy.DropReplies(); err != nil {
		t.Fatal(err)
	}
	cachedWaitFor(t, "the health check to find the silent loss", func() bool { return l.Stats().Gaps >= 1 })
	if s := l.Stats(); s.FullInvalidations < 2 {
		t.Fatalf("stats %+v: the gap must empty the cache", s)
	}
	proxy.RemoveToxics()
	cachedWaitFor(t, "listening again", func() bool {
		s := l.Stats()
		return s.Reconnects >= 1 && s.Listening
	})
	before := l.Stats().Notices
	if _, err := pool.Exec(ctx, `UPDATE rooms SET version = 9 WHERE id = 'hall'`); err != nil {
		t.Fatal(err)
	}
	cachedWaitFor(t, "a notice on the new connection", func() bool { return l.Stats().Notices > before })
	if v := readVersion(t, cache, "hall"); v != 9 {
		t.Fatalf("version %d, want 9", v)
	}
}
