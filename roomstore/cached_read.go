package roomstore

import (
	"context"
	"fmt"
	"strconv"
)

// GetRoom implements RoomStore. A hit returns without I/O and without looking at ctx; a
// stale hit also starts a background refresh of id.
func (c *Cached) GetRoom(ctx context.Context, id string) (Room, error) {
	if c.life.closed() {
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
	c.stats.misses.Add(1)
	if err := ctx.Err(); err != nil {
		return Room{}, fmt.Errorf("roomstore: get room %q: %w", id, err)
	}
	// Readers share a load only within one generation of id: a read that starts after a
	// write or Invalidate of id must not join a load that may have read the room before it.
	gen := c.gens.of(id)
	key := id + "\x00" + strconv.FormatUint(gen, 10) // ids hold no NUL
	ch := c.flights.DoChan(key, func() (any, error) { return c.loadShared(ctx, id, gen) })
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

// loadShared runs once per id and generation at a time (singleflight), in a goroutine of
// its own: it fetches id as a batch of one. It is detached from the first reader's
// cancellation, bounded by LoadTimeout and canceled by Close, which waits for it. gen is
// id's generation when the first reader missed.
func (c *Cached) loadShared(parent context.Context, id string, gen uint64) (Room, error) {
	if !c.life.enterLoad() {
		return Room{}, ErrClosed
	}
	defer c.life.leaveLoad()
	// A reader may have missed just before the previous load of id filled the cache.
	if r, _, ok := c.lookup(id, c.now()); ok {
		c.stats.rechecks.Add(1)
		return r, nil
	}
	if c.absent.Contains(id) {
		return Room{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), c.cfg.LoadTimeout)
	defer cancel()
	defer context.AfterFunc(c.life.ctx, cancel)() // Close cancels it
	loaded, err := c.fetch(ctx, forOneReader, []string{id}, []uint64{gen})
	if err != nil {
		return Room{}, err
	}
	if r, ok := loaded[id]; ok {
		return r, nil
	}
	return Room{}, fmt.Errorf("%w: %q", ErrNotFound, id)
}

// GetRooms implements RoomStore. Ids found in memory cost no I/O; all the others are
// loaded in one call to the inner store's GetRooms, then cached (present ones as rooms,
// absent ones as not-found entries). Beyond that, it costs the result map: one allocation
// per room (VisitRooms avoids it).
func (c *Cached) GetRooms(ctx context.Context, ids []string) (map[string]Room, error) {
	if c.life.closed() {
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
	if c.life.closed() {
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
// memory or, for every miss together, from one fetch. isNew(id) reports whether id is to
// be handled (false for an id seen before): GetRooms' looks in its result, which holds
// only the rooms found, so it asks for dedupeMisses (a set of the ids not found in memory,
// made on the first one); VisitRooms' keeps a set of every id.
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
	c.stats.misses.Add(uint64(len(missing)))
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("roomstore: get rooms: %w", err)
	}
	loaded, err := c.fetch(ctx, forReaders, missing, c.gens.snapshot(missing))
	if err != nil {
		return err
	}
	for _, id := range missing {
		if r, ok := loaded[id]; ok {
			fn(r)
		}
	}
	return nil
}

// lookup returns id's cached room and whether it is stale at now, or ok false when id has
// no entry or the entry's TTL has passed at now. It costs one cache Get.
func (c *Cached) lookup(id string, now int64) (r Room, stale, ok bool) {
	e, ok := c.rooms.Get(id)
	if !ok {
		return Room{}, false, false
	}
	if now >= e.expires {
		c.stats.expiredHits.Add(1)
		return Room{}, false, false
	}
	return e.room, now >= e.staleAt, true
}
