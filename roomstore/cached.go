package roomstore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/singleflight"

	"github.com/gamepersist/gamepersist/internal/cache"
)

// genStripes is the number of invalidation generation counters; ids hash onto them. A
// collision only makes a concurrent load skip filling the cache, never serve stale data.
const genStripes = 1024

// Cached is a read-through cache in front of any RoomStore: the tick path's room reads
// are served from memory in steady state. It implements RoomStore, VersionedPutter and
// RoomVisitor.
//
//   - GetRoom: a hit costs a lookup in an in-process cache (no allocation, no I/O). On a
//     miss, concurrent readers of one id share one load from the inner store; each reader
//     still returns when its own ctx is done. Not-found ids are remembered for
//     NegativeTTL (at most MaxNegative of them). Load errors are not cached.
//   - GetRooms and VisitRooms (one code path): hits from memory, every miss loaded in one
//     inner GetRooms call. When every id is a hit, VisitRooms makes no allocation of its
//     own (the cache's access sampling, ristretto's, allocates a 512-byte buffer at most
//     once per 64 hits, as for GetRoom).
//   - PutRoom, PutRoomVersion, DeleteRoom write through to the inner store, then drop the
//     id from the cache and call CacheConfig.AfterWrite.
//   - Invalidate drops ids written elsewhere (another process). A load that started
//     before an invalidation never puts what it read into the cache after it.
//
// Rooms are values whose fields cannot be changed in place (see Room), so a caller
// changing a Room it got never changes what another caller gets.
//
// Cached runs goroutines of its own (the cache's, and one per in-flight load); Close stops
// them. Close does not close the inner store: the caller owns it.
type Cached struct {
	inner  RoomStore
	vput   VersionedPutter // inner's, or nil
	cfg    CacheConfig
	rooms  *cache.Cache[string, Room]
	absent *cache.Cache[string, struct{}]

	flights singleflight.Group
	sets    idSets // scratch sets of ids for VisitRooms
	seed    maphash.Seed
	gens    [genStripes]atomic.Uint64

	closed      atomic.Bool
	mu          sync.Mutex // orders loads.Add against Close
	loads       sync.WaitGroup
	loadCtx     context.Context // canceled by Close
	cancelLoads context.CancelFunc

	rechecks      atomic.Uint64 // cache hits inside a load, not counted as reader hits
	misses        atomic.Uint64
	loadCalls     atomic.Uint64
	loadErrors    atomic.Uint64
	invalidations atomic.Uint64
	droppedFills  atomic.Uint64
}

var (
	_ RoomStore       = (*Cached)(nil)
	_ VersionedPutter = (*Cached)(nil)
	_ RoomVisitor     = (*Cached)(nil)
)

// CacheStats is a snapshot of a Cached decorator's counters since NewCached.
type CacheStats struct {
	// Hits counts ids answered with a room from memory.
	Hits uint64
	// NegativeHits counts ids answered with ErrNotFound from memory.
	NegativeHits uint64
	// Misses counts ids that had to be loaded from the inner store (a shared load counts
	// once per reader).
	Misses uint64
	// Loads counts calls made to the inner store's GetRoom or GetRooms to fill the cache;
	// LoadErrors counts those that failed (other than not found).
	Loads, LoadErrors uint64
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
	rooms, err := cache.New[string, Room](cache.Config{MaxItems: cfg.MaxRooms, TTL: cfg.TTL})
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
		rooms:  rooms,
		absent: absent,
		seed:   maphash.MakeSeed(),
	}
	c.vput, _ = inner.(VersionedPutter)
	c.loadCtx, c.cancelLoads = context.WithCancel(context.Background())
	return c, nil
}

// GetRoom implements RoomStore. A hit returns without I/O and without looking at ctx.
func (c *Cached) GetRoom(ctx context.Context, id string) (Room, error) {
	if c.closed.Load() {
		return Room{}, ErrClosed
	}
	if r, ok := c.rooms.Get(id); ok {
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
	if r, ok := c.rooms.Get(id); ok {
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
			if !c.rooms.Store(id, r) {
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
func (c *Cached) visit(ctx context.Context, ids []string, isNew func(string) bool, dedupeMisses bool, fn func(Room)) error {
	var missing []string
	var seen map[string]struct{}
	for _, id := range ids {
		if !isNew(id) {
			continue
		}
		if r, ok := c.rooms.Get(id); ok {
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
	c.fillBatch(missing, gens, loaded)
	for _, id := range missing {
		if r, ok := loaded[id]; ok {
			fn(r)
		}
	}
	return nil
}

// fillBatch caches the result of one batch load: a room for each id found, a not-found
// entry for the others. Sets are buffered and applied together; dropped ones are retried
// once, so the rooms are visible to the next read.
func (c *Cached) fillBatch(ids []string, gens []uint64, loaded map[string]Room) {
	var dropped []int
	for i, id := range ids {
		if c.generation(id) != gens[i] {
			continue
		}
		var ok bool
		if r, found := loaded[id]; found {
			ok = c.rooms.Set(id, r)
			c.absent.Del(id)
		} else {
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
			if !c.rooms.Store(id, r) {
				c.droppedFill(id)
			}
		} else {
			c.absent.Store(id, struct{}{})
		}
	}
	for i, id := range ids {
		c.undoIfInvalidated(id, gens[i])
	}
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

// Stats returns a snapshot of the counters. It costs a few hundred atomic loads.
func (c *Cached) Stats() CacheStats {
	rm, am := c.rooms.Metrics(), c.absent.Metrics()
	s := CacheStats{
		Hits:          rm.Hits - min(rm.Hits, c.rechecks.Load()),
		NegativeHits:  am.Hits,
		Misses:        c.misses.Load(),
		Loads:         c.loadCalls.Load(),
		LoadErrors:    c.loadErrors.Load(),
		Evictions:     rm.KeysEvicted,
		Invalidations: c.invalidations.Load(),
		DroppedFills:  c.droppedFills.Load(),
	}
	if total := s.Hits + s.NegativeHits + s.Misses; total > 0 {
		s.HitRatio = float64(s.Hits+s.NegativeHits) / float64(total)
	}
	return s
}

// Close cancels the loads in flight, waits for them, and drops the cache. It does NOT
// close the inner store, which the caller owns. It is idempotent: a second call returns
// nil. Every other call made after Close returns ErrClosed.
func (c *Cached) Close() error {
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return nil
	}
	c.closed.Store(true)
	c.mu.Unlock()
	c.cancelLoads()
	c.loads.Wait()
	return errors.Join(c.rooms.Close(), c.absent.Close())
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
