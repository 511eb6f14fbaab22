package roomstore

import (
	"hash/maphash"
	"sync/atomic"
)

// The ordering between invalidations and fills lives in this file, and only here.
//
// Invariant: once Invalidate(id) (or InvalidateAll) has returned, the cache holds no
// value of id read from the inner store before that call began (a room or a not-found
// entry), and no fill in flight can put one back.
//
// Why it holds. Each id hashes onto one generation counter.
//   - An invalidation bumps id's generation first, then deletes id's entries.
//   - A fill reads id's generation g before its inner read begins (snapshot), and after
//     the read stores id only if the generation is still g; once stored (and the cache's
//     buffer applied), it reads the generation again and deletes what it stored if it
//     moved (undo).
//
// Take an invalidation that began after the fill's inner read began, so that what the
// fill read may be older than the write behind it. Its bump comes after the snapshot.
// If the bump came before the fill's check, the fill stores nothing. If it came after the
// check but before the recheck, the recheck sees it and the fill deletes its own entry.
// If it came after the recheck, the invalidation's delete comes after the store and
// removes it. An invalidation that began before the inner read began bumped before the
// snapshot: the read saw the write, and its result may be kept.
//
// Readers never wait on the counters: a hit is one cache lookup. A collision of two ids
// on one counter only makes a fill skip storing (a spurious miss later), never serve
// stale data. Deleting entries without bumping, or storing without the recheck, breaks
// the invariant; every store of a loaded value goes through fill.

// genStripes is the number of invalidation generation counters ids hash onto.
const genStripes = 1024

// generations are the invalidation counters. The zero value needs a seed before use.
type generations struct {
	seed    maphash.Seed
	stripes [genStripes]atomic.Uint64
}

// of returns id's current generation. It costs a hash and an atomic load.
func (g *generations) of(id string) uint64 {
	return g.stripes[maphash.String(g.seed, id)%genStripes].Load()
}

// snapshot returns the generation of each id, taken before the inner read begins.
func (g *generations) snapshot(ids []string) []uint64 {
	gens := make([]uint64, len(ids))
	for i, id := range ids {
		gens[i] = g.of(id)
	}
	return gens
}

func (g *generations) bump(id string) {
	g.stripes[maphash.String(g.seed, id)%genStripes].Add(1)
}

func (g *generations) bumpAll() {
	for i := range g.stripes {
		g.stripes[i].Add(1)
	}
}

// Invalidate drops ids from the cache (rooms and not-found entries), for writes made
// elsewhere: another process, or the database directly. The next read of each id loads it
// again, and a load already in flight does not put what it read into the cache. It costs
// a hash and two deletes per id and does no I/O; ids need not be valid or cached.
func (c *Cached) Invalidate(ids ...string) {
	for _, id := range ids {
		c.gens.bump(id) // first: see the invariant above
		c.rooms.Del(id)
		c.absent.Del(id)
	}
	c.stats.invalidations.Add(uint64(len(ids)))
}

// InvalidateAll drops every room and not-found entry, for when writes made elsewhere may
// have been missed (for example while the cross-node invalidation channel was down). Loads
// in flight do not put what they read into the cache. It costs one pass over the
// generation counters and a clear of the cache; the next reads all go to the inner store.
func (c *Cached) InvalidateAll() {
	c.gens.bumpAll() // first: see the invariant above
	c.rooms.Clear()
	c.absent.Clear()
	c.stats.invalidations.Add(1)
}

// fill caches the result of one inner read of ids that began after gens were taken, at
// loadedAt on the Clock: a room for each id found, a not-found entry for the others
// (dropping a cached room, for a refresh of a room deleted elsewhere), each only if no
// invalidation of the id came since. Sets are buffered and applied together; dropped ones
// are retried once, so the rooms are visible to the next read. It returns the number of
// rooms stored.
func (c *Cached) fill(ids []string, gens []uint64, loaded map[string]Room, loadedAt int64) int {
	var dropped []int
	stored := 0
	setRooms, setAbsent := false, false
	for i, id := range ids {
		if c.gens.of(id) != gens[i] { // check
			continue
		}
		if c.afterCheck != nil {
			c.afterCheck(id)
		}
		var ok bool
		if r, found := loaded[id]; found {
			e, ttl := c.newEntry(id, r, loadedAt)
			ok = c.rooms.SetWithTTL(id, e, ttl)
			if c.absent.Contains(id) { // a Del costs a send to the cache's goroutine
				c.absent.Del(id)
			}
			setRooms = true
			stored++
		} else {
			if c.rooms.Contains(id) {
				c.rooms.Del(id)
			}
			ok = c.absent.Set(id, struct{}{})
			setAbsent = true
		}
		if !ok {
			dropped = append(dropped, i)
		}
	}
	if setRooms {
		c.rooms.Wait()
	}
	if setAbsent {
		c.absent.Wait()
	}
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
		if c.gens.of(id) != gens[i] { // recheck, then undo
			c.rooms.Del(id)
			c.absent.Del(id)
		}
	}
	return stored
}
