package roomstore

import (
	"errors"
	"fmt"
	"hash/maphash"
	"time"

	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/singleflight"

	"github.com/gamepersist/gamepersist/internal/cache"
)

// Cached is a read-through cache in front of any RoomStore (it implements RoomStore,
// VersionedPutter and RoomVisitor). A hit costs one in-memory lookup and no allocation; a
// miss costs one inner load shared by concurrent readers (GetRooms: one load for all its
// misses); writes go through and invalidate; stale hits are refreshed in the background.
// The package documentation details each behaviour. Its goroutines (the cache's, loads and
// refreshes in flight) stop in Close, which leaves the inner store open.
//
// Writes made elsewhere reach it only through Invalidate and InvalidateAll: from other
// servers through natsbridge, and from plain SQL, opt-in, through a ChangeListener
// (PostgresConfig.NotifyChannel). With a listener, a read that starts after the notice of
// a commit was applied serves that commit or a later one (p99 under 10 ms from commit here);
// without one, such a write is seen only after the room's refresh-ahead reload or TTL.
//
// The code is split by job: cached_read.go (GetRoom, GetRooms, VisitRooms), cached_fill.go
// (the one path from the inner store into memory), cached_invalidate.go (the ordering
// between invalidations and fills, and its invariant), cached_refresh.go (refresh-ahead),
// cached_write.go (writes), cached_stats.go (counters), cached_lifeline.go (Close and the
// goroutines it waits for).
type Cached struct {
	inner RoomStore
	vput  VersionedPutter // inner's, or nil
	cfg   CacheConfig
	epoch time.Time    // the Clock's time at NewCached; entry times count from it
	seed  maphash.Seed // for TTL jitter

	rooms  *cache.Cache[string, entry]
	absent *cache.Cache[string, struct{}]
	gens   generations // invalidation counters: see cached_invalidate.go

	flights singleflight.Group // GetRoom misses, keyed by id and generation
	sets    idSets             // scratch sets of ids for VisitRooms

	life    lifeline     // the one closed state; owns loads and refreshes
	refresh refreshState // which ids refresh-ahead is reloading
	stats   cacheCounters
	metrics metric.Registration // the observable counters, unregistered by Close

	// afterCheck, set only by tests (cached_export_test.go), runs inside fill between the
	// generation check of an id and the store: where an invalidation is hardest to catch.
	afterCheck func(id string)
}

// entry is a cached room with the times, in nanoseconds since Cached.epoch on
// CacheConfig.Clock, at which it goes stale (a hit starts a refresh) and expires (no
// longer served).
type entry struct {
	room    Room
	staleAt int64
	expires int64
}

var (
	_ RoomStore       = (*Cached)(nil)
	_ VersionedPutter = (*Cached)(nil)
	_ RoomVisitor     = (*Cached)(nil)
)

// NewCached returns a read-through cache over inner, configured by cfg (zero fields take
// their defaults), or an error wrapping ErrInvalidConfig. inner stays owned by the caller:
// Close the Cached first, then inner.
func NewCached(inner RoomStore, cfg CacheConfig) (*Cached, error) {
	if inner == nil {
		return nil, fmt.Errorf("%w: inner store is nil", ErrInvalidConfig)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// Each room gets its own (jittered) TTL; the configured one is only a default.
	rooms, err := cache.New[string, entry](cache.Config{MaxItems: cfg.MaxRooms, TTL: cfg.TTL})
	if err != nil {
		return nil, fmt.Errorf("%w: rooms: %w", ErrInvalidConfig, err)
	}
	absent, err := cache.New[string, struct{}](cache.Config{MaxItems: cfg.MaxNegative, TTL: cfg.NegativeTTL})
	if err != nil {
		_ = rooms.Close()
		return nil, fmt.Errorf("%w: negative entries: %w", ErrInvalidConfig, err)
	}
	c := &Cached{
		inner:  inner,
		cfg:    cfg,
		seed:   maphash.MakeSeed(),
		rooms:  rooms,
		absent: absent,
	}
	c.gens.seed = maphash.MakeSeed()
	c.refresh.busy = make(map[string]struct{})
	if cfg.Clock != nil {
		c.epoch = cfg.Clock()
	} else {
		c.epoch = time.Now()
	}
	c.vput, _ = inner.(VersionedPutter)
	if c.metrics, err = newCacheMetrics(cfg.MeterProvider, c); err != nil {
		_ = rooms.Close()
		_ = absent.Close()
		return nil, err
	}
	c.life.init()
	return c, nil
}

// Close cancels the loads and refreshes in flight, waits for them, and drops the cache. It
// does not close the inner store, which the caller owns. A later Close returns the first
// one's error; every other call made after Close returns ErrClosed.
func (c *Cached) Close() error {
	return c.life.close(func() error {
		var unreg error
		if err := c.metrics.Unregister(); err != nil {
			unreg = fmt.Errorf("roomstore: unregister metrics: %w", err)
		}
		return errors.Join(unreg, c.rooms.Close(), c.absent.Close())
	})
}

// now reads the Clock, in nanoseconds since epoch. Without a Clock it reads only the
// monotonic clock (about half the cost of time.Now).
func (c *Cached) now() int64 {
	if c.cfg.Clock == nil {
		return int64(time.Since(c.epoch))
	}
	return int64(c.cfg.Clock().Sub(c.epoch))
}
