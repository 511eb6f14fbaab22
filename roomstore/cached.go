package roomstore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/singleflight"

	"github.com/gamepersist/gamepersist/internal/cache"
	"github.com/gamepersist/gamepersist/internal/lifecycle"
)

// genStripes is the number of invalidation generation counters; ids hash onto them. A
// collision only makes a concurrent load skip filling the cache, never serve stale data.
const genStripes = 1024

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
type Cached struct {
	inner  RoomStore
	vput   VersionedPutter // inner's, or nil
	cfg    CacheConfig
	rooms  *cache.Cache[string, entry]
	absent *cache.Cache[string, struct{}]

	flights singleflight.Group
	sets    idSets // scratch sets of ids for VisitRooms
	seed    maphash.Seed
	gens    [genStripes]atomic.Uint64

	closed      atomic.Bool
	down        lifecycle.Shutdown
	refreshers  lifecycle.Group // the refresh-ahead goroutines, started under mu before Close
	mu          sync.Mutex      // orders loads.Add against Close; guards refreshing, refreshRunning
	loads       sync.WaitGroup
	loadCtx     context.Context // canceled by Close
	cancelLoads context.CancelFunc

	epoch time.Time // the Clock's time at NewCached; entry times count from it

	refreshing     map[string]struct{} // ids a running refresh is reloading
	refreshRunning int

	rechecks      atomic.Uint64 // cache hits inside a load, not counted as reader hits
	expiredHits   atomic.Uint64 // entries found past their TTL on the Clock: misses
	staleHits     atomic.Uint64
	refreshes     atomic.Uint64
	refreshed     atomic.Uint64
	refreshErrors atomic.Uint64
	refreshSkips  atomic.Uint64
	misses        atomic.Uint64
	loadCalls     atomic.Uint64
	loadErrors    atomic.Uint64
	invalidations atomic.Uint64
	droppedFills  atomic.Uint64

	metrics metric.Registration // the observable counters, unregistered by Close
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

// CacheStats is a snapshot of a Cached decorator's counters since NewCached.
type CacheStats struct {
	// Hits counts ids answered with a room from memory, stale or not.
	Hits uint64
	// StaleHits counts the hits on rooms older than RefreshAhead of their TTL; each asks
	// for a background refresh.
	StaleHits uint64
	// NegativeHits counts ids answered with ErrNotFound from memory.
	NegativeHits uint64
	// Misses counts ids that had to be loaded from the inner store on the reader's path (a
	// shared load counts once per reader).
	Misses uint64
	// Loads counts calls made to the inner store's GetRoom or GetRooms on a reader's path
	// (misses; background refreshes are not counted here); LoadErrors counts those that
	// failed (other than not found).
	Loads, LoadErrors uint64
	// RefreshesStarted counts background refreshes (one inner GetRooms call each, off
	// every reader's path); RoomsRefreshed counts the rooms they stored; RefreshFailures
	// counts those that failed (the stale rooms are served until their TTL passes).
	RefreshesStarted, RoomsRefreshed, RefreshFailures uint64
	// RefreshesSkipped counts stale ids not refreshed because MaxRefreshes refreshes were
	// running; a later hit asks again.
	RefreshesSkipped uint64
	// RefreshesRunning is the number of background refreshes in flight now.
	RefreshesRunning int
	// Evictions counts rooms removed to make room or because their TTL passed.
	Evictions uint64
	// Invalidations counts ids dropped by writes and Invalidate.
	Invalidations uint64
	// DroppedFills counts loaded rooms the cache did not keep (its admission policy
	// refused them or its buffer was full twice): the next read loads them again.
	DroppedFills uint64
	// HitRatio is (Hits + NegativeHits) / (Hits + NegativeHits + Misses), 0 before the
	// first read.
	HitRatio float64
}

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
		inner:      inner,
		cfg:        cfg,
		rooms:      rooms,
		absent:     absent,
		seed:       maphash.MakeSeed(),
		refreshing: make(map[string]struct{}),
	}
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
	c.loadCtx, c.cancelLoads = context.WithCancel(context.Background())
	return c, nil
}

// GetRoom implements RoomStore. A hit returns without I/O and without looking at ctx; a
// stale hit also starts a background refresh of id.
func (c *Cached) GetRoom(ctx context.Context, id string) (Room, error) {
	if c.closed.Load() {
		return Room{}, ErrClosed
	}
	if r, stale, ok := c.lookup(id, c.now()); ok {
		if stale {
			c.refreshAhead([]string{id})
		}
		return r, nil
	}
	return c.getMiss(ctx, id)
}

func (c *Cached) getMiss(ctx context.Context, id string) (Room, error) {
	if err := ValidateID(id); err != nil {
		return Room{}, err
	}
	if _, ok := c.absent.Get(id); ok {
		return Room{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	c.misses.Add(1)
	if err := ctx.Err(); err != nil {
		return Room{}, fmt.Errorf("roomstore: get room %q: %w", id, err)
	}
	// Readers share a load only within one generation of id: a read that starts after a
	// write or Invalidate of id must not join a load that may have read the room before it.
	gen := c.generation(id)
	key := id + "\x00" + strconv.FormatUint(gen, 10) // ids hold no NUL
	ch := c.flights.DoChan(key, func() (any, error) { return c.load(ctx, id, gen) })
	select {
	case res := <-ch:
		if res.Err != nil {
			return Room{}, res.Err
		}
		return res.Val.(Room), nil
	case <-ctx.Done():
		return Room{}, fmt.Errorf("roomstore: get room %q: %w", id, ctx.Err())
	}
}

// load runs once per id and generation at a time (singleflight), in a goroutine of its
// own. It is detached from the first reader's cancellation, bounded by LoadTimeout and
// canceled by Close, which waits for it. gen is id's generation when the first reader
// missed: the result is cached only if no invalidation of id came since.
func (c *Cached) load(parent context.Context, id string, gen uint64) (Room, error) {
	if !c.beginLoad() {
		return Room{}, ErrClosed
	}
	defer c.loads.Done()
	// A reader may have missed just before the previous load of id filled the cache.
	loadedAt := c.now()
	if r, _, ok := c.lookup(id, loadedAt); ok {
		c.rechecks.Add(1)
		return r, nil
	}
	if c.absent.Contains(id) {
		return Room{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), c.cfg.LoadTimeout)
	defer cancel()
	defer context.AfterFunc(c.loadCtx, cancel)()
	c.loadCalls.Add(1)
	r, err := c.inner.GetRoom(ctx, id)
	switch {
	case err == nil:
		if c.generation(id) == gen {
			if e, ttl := c.newEntry(id, r, loadedAt); !c.rooms.StoreWithTTL(id, e, ttl) {
				c.droppedFill(id)
			}
			c.absent.Del(id)
			c.undoIfInvalidated(id, gen)
		}
		return r, nil
	case errors.Is(err, ErrNotFound):
		if c.generation(id) == gen {
			c.absent.Store(id, struct{}{})
			c.undoIfInvalidated(id, gen)
		}
		return Room{}, err
	case errors.Is(err, ErrClosed) && c.closed.Load():
		return Room{}, ErrClosed
	default:
		c.loadErrors.Add(1)
		c.cfg.Logger.Debug().Str("room_id", id).Err(err).Msg("roomstore: cache load failed")
		return Room{}, fmt.Errorf("roomstore: load room %q into cache: %w", id, err)
	}
}

// GetRooms implements RoomStore. Ids found in memory cost no I/O; all the others are
// loaded in one call to the inner store's GetRooms, then cached (present ones as rooms,
// absent ones as not-found entries). Beyond that, it costs the result map: one allocation
// per room (VisitRooms avoids it).
func (c *Cached) GetRooms(ctx context.Context, ids []string) (map[string]Room, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	out := make(map[string]Room, len(ids))
	isNew := func(id string) bool { _, done := out[id]; return !done }
	if err := c.visit(ctx, ids, isNew, true, func(r Room) { out[r.ID] = r }); err != nil {
		return nil, err
	}
	return out, nil
}

// VisitRooms implements RoomVisitor with GetRooms' code path: hits go to fn straight
// from memory, with no allocation of its own and no I/O (a cache lookup and a set insert
// per id, to skip duplicates); all the misses are loaded in one inner GetRooms call and
// cached, then the rooms found go to fn. fn runs while Cached holds no lock (calling the
// Cached from fn is safe, unlike for RoomVisitor in general).
func (c *Cached) VisitRooms(ctx context.Context, ids []string, fn func(Room)) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if len(ids) == 0 {
		return nil
	}
	seen := c.sets.get(len(ids))
	defer c.sets.put(seen)
	return c.visit(ctx, ids, func(id string) bool { return addNew(seen, id) }, false, fn)
}

// visit is GetRooms and VisitRooms: it calls fn for each room found among ids, from
// memory or, for every miss together, from one inner GetRooms call. isNew(id) reports
// whether id is to be handled (false for an id seen before): GetRooms' looks in its
// result, which holds only the rooms found, so it asks for dedupeMisses (a set of the ids
// not found in memory, made on the first one); VisitRooms' keeps a set of every id.
//
// The stale hits are refreshed together in the background (refreshAhead) before the misses
// are loaded.
func (c *Cached) visit(ctx context.Context, ids []string, isNew func(string) bool, dedupeMisses bool, fn func(Room)) error {
	var missing, stale []string
	var seen map[string]struct{}
	now := c.now()
	for _, id := range ids {
		if !isNew(id) {
			continue
		}
		if r, isStale, ok := c.lookup(id, now); ok {
			if isStale {
				stale = append(stale, id)
			}
			fn(r)
			continue
		}
		if err := ValidateID(id); err != nil {
			return err
		}
		if dedupeMisses {
			if _, dup := seen[id]; dup {
				continue
			}
			if seen == nil {
				seen = make(map[string]struct{})
			}
			seen[id] = struct{}{}
		}
		if _, ok := c.absent.Get(id); ok {
			continue
		}
		missing = append(missing, id)
	}
	if len(stale) > 0 {
		c.refreshAhead(stale)
	}
	if len(missing) == 0 {
		return nil
	}
	c.misses.Add(uint64(len(missing)))
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("roomstore: get rooms: %w", err)
	}
	gens := make([]uint64, len(missing))
	for i, id := range missing {
		gens[i] = c.generation(id)
	}
	loadedAt := c.now()
	c.loadCalls.Add(1)
	loaded, err := c.inner.GetRooms(ctx, missing)
	if err != nil {
		if errors.Is(err, ErrClosed) && c.closed.Load() {
			return ErrClosed
		}
		c.loadErrors.Add(1)
		c.cfg.Logger.Debug().Int("rooms", len(missing)).Err(err).Msg("roomstore: cache batch load failed")
		return fmt.Errorf("roomstore: load %d rooms into cache: %w", len(missing), err)
	}
	c.fillBatch(missing, gens, loaded, loadedAt)
	for _, id := range missing {
		if r, ok := loaded[id]; ok {
			fn(r)
		}
	}
	return nil
}

// fillBatch caches the result of one batch load read at loadedAt (on the Clock): a room
// for each id found, a not-found entry for the others (dropping a cached room, for a
// refresh of a room deleted elsewhere). Sets are buffered and applied together; dropped
// ones are retried once, so the rooms are visible to the next read. It returns the number
// of rooms it set.
func (c *Cached) fillBatch(ids []string, gens []uint64, loaded map[string]Room, loadedAt int64) int {
	var dropped []int
	stored := 0
	for i, id := range ids {
		if c.generation(id) != gens[i] {
			continue
		}
		var ok bool
		if r, found := loaded[id]; found {
			e, ttl := c.newEntry(id, r, loadedAt)
			ok = c.rooms.SetWithTTL(id, e, ttl)
			c.absent.Del(id)
			stored++
		} else {
			if c.rooms.Contains(id) {
				c.rooms.Del(id)
			}
			ok = c.absent.Set(id, struct{}{})
		}
		if !ok {
			dropped = append(dropped, i)
		}
	}
	c.rooms.Wait()
	c.absent.Wait()
	for _, i := range dropped {
		id := ids[i]
		if r, found := loaded[id]; found {
			if e, ttl := c.newEntry(id, r, loadedAt); !c.rooms.StoreWithTTL(id, e, ttl) {
				c.droppedFill(id)
			}
		} else {
			c.absent.Store(id, struct{}{})
		}
	}
	for i, id := range ids {
		c.undoIfInvalidated(id, gens[i])
	}
	return stored
}

// now reads the Clock, in nanoseconds since epoch. Without a Clock it reads only the
// monotonic clock (about half the cost of time.Now).
func (c *Cached) now() int64 {
	if c.cfg.Clock == nil {
		return int64(time.Since(c.epoch))
	}
	return int64(c.cfg.Clock().Sub(c.epoch))
}

// lookup returns id's cached room and whether it is stale at now, or ok false when id has
// no entry or the entry's TTL has passed at now. It costs one cache Get.
func (c *Cached) lookup(id string, now int64) (r Room, stale, ok bool) {
	e, ok := c.rooms.Get(id)
	if !ok {
		return Room{}, false, false
	}
	if now >= e.expires {
		c.expiredHits.Add(1)
		return Room{}, false, false
	}
	return e.room, now >= e.staleAt, true
}

// newEntry wraps r, read at loadedAt, with its stale and expiry times; it returns the
// entry and its TTL: CacheConfig.TTL × (1 ± TTLJitter), drawn from a hash of id and
// loadedAt (rooms loaded together get independent TTLs).
func (c *Cached) newEntry(id string, r Room, loadedAt int64) (entry, time.Duration) {
	ttl := c.cfg.TTL
	if c.cfg.TTLJitter > 0 {
		u := float64(mix64(maphash.String(c.seed, id)^uint64(loadedAt))>>11) / (1 << 53) // [0, 1)
		ttl = time.Duration(float64(ttl) * (1 + c.cfg.TTLJitter*(2*u-1)))
	}
	e := entry{room: r, staleAt: math.MaxInt64, expires: loadedAt + int64(ttl)}
	if c.cfg.RefreshAhead > 0 {
		e.staleAt = loadedAt + int64(float64(ttl)*c.cfg.RefreshAhead)
	}
	return e, ttl
}

// mix64 is splitmix64's finalizer: it spreads every input bit over the output.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// refreshAhead starts one background reload of the stale ids that no running refresh is
// reloading, unless MaxRefreshes refreshes are running or Close has begun. It takes ids
// over and never waits for I/O: the reader already has the stale rooms.
func (c *Cached) refreshAhead(ids []string) {
	c.staleHits.Add(uint64(len(ids)))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return
	}
	batch := ids[:0]
	for _, id := range ids {
		if _, busy := c.refreshing[id]; !busy {
			batch = append(batch, id)
		}
	}
	if len(batch) == 0 {
		return
	}
	if c.refreshRunning >= c.cfg.MaxRefreshes {
		c.refreshSkips.Add(uint64(len(batch)))
		return
	}
	for _, id := range batch {
		c.refreshing[id] = struct{}{}
	}
	c.refreshRunning++
	c.refreshes.Add(1)
	c.refreshers.Go(func() { c.refresh(batch) })
}

// refresh reloads ids with one inner GetRooms call, bounded by LoadTimeout and canceled
// by Close (which waits for it), and caches what it read unless an invalidation of the id
// came after the read began.
func (c *Cached) refresh(ids []string) {
	defer func() {
		c.mu.Lock()
		for _, id := range ids {
			delete(c.refreshing, id)
		}
		c.refreshRunning--
		c.mu.Unlock()
	}()
	gens := make([]uint64, len(ids))
	for i, id := range ids {
		gens[i] = c.generation(id)
	}
	loadedAt := c.now()
	ctx, cancel := context.WithTimeout(c.loadCtx, c.cfg.LoadTimeout)
	defer cancel()
	loaded, err := c.inner.GetRooms(ctx, ids)
	if c.closed.Load() {
		return
	}
	if err != nil {
		c.refreshErrors.Add(1)
		c.cfg.Logger.Debug().Int("rooms", len(ids)).Err(err).Msg("roomstore: cache refresh failed")
		return
	}
	c.refreshed.Add(uint64(c.fillBatch(ids, gens, loaded, loadedAt)))
}

// PutRoom implements RoomStore: it writes through to the inner store, then invalidates
// the id and calls AfterWrite.
func (c *Cached) PutRoom(ctx context.Context, room Room) error {
	_, err := c.put(ctx, room, false)
	return err
}

// PutRoomVersion implements VersionedPutter. With an inner store that does not implement
// it, the write goes through inner.PutRoom and the version is read back with a second
// call to inner.GetRoom (which may then report a later write of the same room).
func (c *Cached) PutRoomVersion(ctx context.Context, room Room) (int64, error) {
	return c.put(ctx, room, true)
}

func (c *Cached) put(ctx context.Context, room Room, needVersion bool) (int64, error) {
	if c.closed.Load() {
		return 0, ErrClosed
	}
	var (
		version int64
		err     error
	)
	if c.vput != nil {
		version, err = c.vput.PutRoomVersion(ctx, room)
	} else {
		err = c.inner.PutRoom(ctx, room)
	}
	// Invalidate even after an error: the write may have been applied (a lost reply).
	c.Invalidate(room.ID)
	if err != nil {
		if mayHaveApplied(err) && c.cfg.AfterWrite != nil {
			c.cfg.AfterWrite(RoomChange{ID: room.ID}) // version unknown
		}
		return 0, err
	}
	if c.vput == nil && needVersion {
		stored, gerr := c.inner.GetRoom(ctx, room.ID)
		if gerr == nil {
			version = stored.Version
		} else {
			// The write happened: report it (version unknown), then the failed read.
			err = fmt.Errorf("roomstore: room %q written, reading its version back: %w", room.ID, gerr)
		}
	}
	if c.cfg.AfterWrite != nil {
		c.cfg.AfterWrite(RoomChange{ID: room.ID, Version: version})
	}
	return version, err
}

// DeleteRoom implements RoomStore: it deletes through the inner store, then invalidates
// the id and calls AfterWrite.
func (c *Cached) DeleteRoom(ctx context.Context, id string) error {
	if c.closed.Load() {
		return ErrClosed
	}
	err := c.inner.DeleteRoom(ctx, id)
	c.Invalidate(id)
	if err != nil {
		if mayHaveApplied(err) && c.cfg.AfterWrite != nil {
			c.cfg.AfterWrite(RoomChange{ID: id}) // outcome unknown: other nodes reload it
		}
		return err
	}
	if c.cfg.AfterWrite != nil {
		c.cfg.AfterWrite(RoomChange{ID: id, Deleted: true})
	}
	return nil
}

// Invalidate drops ids from the cache (rooms and not-found entries), for writes made
// elsewhere: another process, or the database directly. The next read of each id loads it
// again, and a load already in flight does not put what it read into the cache. It costs
// a hash and two deletes per id and does no I/O; ids need not be valid or cached.
func (c *Cached) Invalidate(ids ...string) {
	for _, id := range ids {
		// Bump first, delete second: a concurrent fill either sees the new generation or
		// lands before the delete.
		c.gens[c.stripe(id)].Add(1)
		c.rooms.Del(id)
		c.absent.Del(id)
	}
	c.invalidations.Add(uint64(len(ids)))
}

// InvalidateAll drops every room and not-found entry, for when writes made elsewhere may
// have been missed (for example while the cross-node invalidation channel was down). Loads
// in flight do not put what they read into the cache. It costs one pass over the
// generation counters and a clear of the cache; the next reads all go to the inner store.
func (c *Cached) InvalidateAll() {
	for i := range c.gens {
		c.gens[i].Add(1)
	}
	c.rooms.Clear()
	c.absent.Clear()
	c.invalidations.Add(1)
}

// mayHaveApplied reports whether a failed write may still have been applied by the inner
// store (a lost reply, a timeout after sending) rather than refused before any change.
func mayHaveApplied(err error) bool {
	for _, refused := range []error{ErrInvalidID, ErrInvalidRoom, ErrClosed, ErrReadOnly, ErrNotFound} {
		if errors.Is(err, refused) {
			return false
		}
	}
	return true
}

// Stats returns a snapshot of the counters. It costs a few hundred atomic loads and one
// short lock.
func (c *Cached) Stats() CacheStats {
	rm, am := c.rooms.Metrics(), c.absent.Metrics()
	notHits := c.rechecks.Load() + c.expiredHits.Load()
	s := CacheStats{
		Hits:             rm.Hits - min(rm.Hits, notHits),
		StaleHits:        c.staleHits.Load(),
		NegativeHits:     am.Hits,
		Misses:           c.misses.Load(),
		Loads:            c.loadCalls.Load(),
		LoadErrors:       c.loadErrors.Load(),
		RefreshesStarted: c.refreshes.Load(),
		RoomsRefreshed:   c.refreshed.Load(),
		RefreshFailures:  c.refreshErrors.Load(),
		RefreshesSkipped: c.refreshSkips.Load(),
		Evictions:        rm.KeysEvicted,
		Invalidations:    c.invalidations.Load(),
		DroppedFills:     c.droppedFills.Load(),
	}
	c.mu.Lock()
	s.RefreshesRunning = c.refreshRunning
	c.mu.Unlock()
	if total := s.Hits + s.NegativeHits + s.Misses; total > 0 {
		s.HitRatio = float64(s.Hits+s.NegativeHits) / float64(total)
	}
	return s
}

// Close cancels the loads and refreshes in flight, waits for them, and drops the cache. It
// does not close the inner store, which the caller owns. A later Close returns the first
// one's error; every other call made after Close returns ErrClosed.
func (c *Cached) Close() error {
	c.mu.Lock()
	c.closed.Store(true) // from here on beginLoad refuses
	c.mu.Unlock()
	return c.down.Do(func() error {
		c.cancelLoads()
		c.loads.Wait()
		c.refreshers.Wait()
		var unreg error
		if err := c.metrics.Unregister(); err != nil {
			unreg = fmt.Errorf("roomstore: unregister metrics: %w", err)
		}
		return errors.Join(unreg, c.rooms.Close(), c.absent.Close())
	})
}

// beginLoad registers a load with Close, or reports false once Close has begun.
func (c *Cached) beginLoad() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return false
	}
	c.loads.Add(1)
	return true
}

func (c *Cached) stripe(id string) uint64 {
	return maphash.String(c.seed, id) % genStripes
}

func (c *Cached) generation(id string) uint64 {
	return c.gens[c.stripe(id)].Load()
}

// undoIfInvalidated removes what a fill just stored when id was invalidated while the
// fill ran (the load may have read the room before the write that caused it).
func (c *Cached) undoIfInvalidated(id string, gen uint64) {
	if c.generation(id) != gen {
		c.rooms.Del(id)
		c.absent.Del(id)
	}
}

func (c *Cached) droppedFill(id string) {
	c.droppedFills.Add(1)
	c.cfg.Logger.Debug().Str("room_id", id).Msg("roomstore: cache did not keep a loaded room")
}
