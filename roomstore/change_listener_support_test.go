package roomstore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/roomstore"
)

// notifyNode is one "game server" of the change-capture tests: its own pool, store,
// Cached and ChangeListener on one shared schema.
type notifyNode struct {
	pool     *pgxpool.Pool
	store    *roomstore.Postgres
	cache    *roomstore.Cached
	listener *roomstore.ChangeListener
	target   *recordingTarget
}

// newNotifyNode opens a pool on connString, a migrated store with the change trigger on
// channel, a Cached over it and a running listener (Listening when it returns), all
// closed when t ends; Run's outcome is checked then.
func newNotifyNode(t testing.TB, connString, channel string, lcfg roomstore.ChangeListenerConfig) *notifyNode {
	t.Helper()
	return newHookedNotifyNode(t, connString, channel, lcfg, nil)
}

// newHookedNotifyNode is newNotifyNode whose target calls onInvalidate (if not nil) after
// each Invalidate.
func newHookedNotifyNode(t testing.TB, connString, channel string, lcfg roomstore.ChangeListenerConfig, onInvalidate func([]string)) *notifyNode {
	t.Helper()
	ctx := cachedCtx(t)
	pool, err := pgxpool.New(ctx, connString)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := migratedStore(t, pool, roomstore.PostgresConfig{NotifyChannel: channel})
	cache := newCached(t, store, roomstore.CacheConfig{})
	n := &notifyNode{pool: pool, store: store, cache: cache, target: &recordingTarget{inner: cache, onInvalidate: onInvalidate}}
	lcfg.Channel = channel
	n.listener = runListener(t, pool.Config().ConnConfig, n.target, lcfg)
	return n
}

// runListener starts a listener on connConfig in a goroutine the test owns, waits until
// it listens, and at the end of t closes it and checks that Run returned nil.
func runListener(t testing.TB, connConfig *pgx.ConnConfig, target roomstore.ChangeTarget, cfg roomstore.ChangeListenerConfig) *roomstore.ChangeListener {
	t.Helper()
	l := startListener(t, connConfig, target, cfg)
	cachedWaitFor(t, "the listener to listen", func() bool { return l.Stats().Listening })
	return l
}

// startListener is runListener without the wait.
func startListener(t testing.TB, connConfig *pgx.ConnConfig, target roomstore.ChangeTarget, cfg roomstore.ChangeListenerConfig) *roomstore.ChangeListener {
	t.Helper()
	l, err := roomstore.NewChangeListener(connConfig, target, cfg)
	if err != nil {
		t.Fatalf("NewChangeListener: %v", err)
	}
	var runErr error
	var wg sync.WaitGroup
	wg.Go(func() { runErr = l.Run(context.Background()) })
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		wg.Wait()
		if runErr != nil && !errors.Is(runErr, roomstore.ErrClosed) {
			t.Errorf("Run: %v", runErr)
		}
	})
	return l
}

// recordingTarget passes invalidations on to a Cached and counts them.
type recordingTarget struct {
	inner *roomstore.Cached
	ids   atomic.Uint64
	all   atomic.Uint64
	// onInvalidate, if set before the listener runs, is called after each Invalidate.
	onInvalidate func(ids []string)
}

func (r *recordingTarget) Invalidate(ids ...string) {
	r.inner.Invalidate(ids...)
	r.ids.Add(uint64(len(ids)))
	if r.onInvalidate != nil {
		r.onInvalidate(ids)
	}
}

func (r *recordingTarget) InvalidateAll() {
	r.inner.InvalidateAll()
	r.all.Add(1)
}
