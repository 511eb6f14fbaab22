package roomstore_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/internal/testkit/faultproxy"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

// TestChangeListenerBoundWhileNotListening: the listener's connection goes through a fault
// proxy that is cut for the rest of the test, while the cache's own store reaches the
// database directly and keeps filling the cache (as a game server's pool does once a cut
// ends and its listener is still backing off). The listener can neither hear notices nor
// listen again, whether it waits in its backoff or in a connect attempt that never
// completes. An edit committed in plain SQL during the cut must still be served once the
// listener emptied the cache after it: the cache never keeps serving, past the
// listener's next HealthCheck, a room filled before an edit it could not hear of.
//
// The soak saw this as a stale read past its 5 s bound under a db_cut: the listener
// emptied the cache at the gap and would again on listening, but in between the cache
// served fills made before later SQL edits.
func TestChangeListenerBoundWhileNotListening(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cut  func(*faultproxy.Proxy) error
		cfg  roomstore.ChangeListenerConfig
	}{
		{
			// Connects are refused at once; after the gap the listener sleeps in a backoff
			// longer than the test.
			name: "backing off",
			cut:  func(p *faultproxy.Proxy) error { p.Disable(); return nil },
			cfg:  roomstore.ChangeListenerConfig{MinBackoff: time.Hour, MaxBackoff: time.Hour},
		},
		{
			// Replies are dropped: the health check finds the silent loss, then every
			// connect attempt waits for a handshake reply within a ConnectTimeout longer
			// than the test.
			name: "connect hangs",
			cut:  (*faultproxy.Proxy).DropReplies,
			cfg:  roomstore.ChangeListenerConfig{ConnectTimeout: time.Hour},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
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
			target := &recordingTarget{inner: cache}
			connConfig, err := pgx.ParseConfig(faultproxy.RewriteURL(cs, proxy.Addr()))
			if err != nil {
				t.Fatal(err)
			}
			cfg := tc.cfg
			cfg.Channel, cfg.HealthCheck = channel, 50*time.Millisecond
			l := runListener(t, connConfig, target, cfg)
			if err := store.PutRoom(ctx, roomstoretest.SampleRoom("hall")); err != nil {
				t.Fatal(err)
			}
			cachedWaitFor(t, "the PutRoom's notice", func() bool { return l.Stats().Notices >= 1 })

			if err := tc.cut(proxy); err != nil {
				t.Fatal(err)
			}
			cachedWaitFor(t, "the gap", func() bool { return l.Stats().Gaps >= 1 })

			for version := int64(2); version <= 4; version++ {
				// Fill the cache from the database before the edit.
				if v := readVersion(t, cache, "hall"); v != version-1 {
					t.Fatalf("version %d before edit %d, want %d", v, version, version-1)
				}
				before := target.all.Load()
				if _, err := pool.Exec(ctx, `UPDATE rooms SET version = $1 WHERE id = 'hall'`, version); err != nil {
					t.Fatal(err)
				}
				// The second InvalidateAll counted after the commit began after it.
				served := int64(0)
				deadline := time.Now().Add(10 * time.Second)
				for target.all.Load() < before+2 {
					if time.Now().After(deadline) {
						t.Fatalf("the cache was not emptied after edit %d while the listener could not listen; it still serves version %d", version, served)
					}
					served = readVersion(t, cache, "hall")
					time.Sleep(time.Millisecond)
				}
				if v := readVersion(t, cache, "hall"); v != version {
					t.Fatalf("stale read: version %d after the cache was emptied, want %d", v, version)
				}
			}
			s := l.Stats()
			if s.Listening || s.Reconnects != 0 || s.Notices != 1 {
				t.Fatalf("stats %+v: the cut must hold through the edits", s)
			}
			if s.NotListeningInvalidations < 3 || s.FullInvalidations < s.NotListeningInvalidations+2 {
				t.Fatalf("stats %+v: want the emptying while not listening counted, and in FullInvalidations", s)
			}
		})
	}
}
