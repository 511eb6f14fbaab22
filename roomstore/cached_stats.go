package roomstore

import "sync/atomic"

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

// cacheCounters are the Cached's own counters; hits and evictions come from the caches.
type cacheCounters struct {
	rechecks      atomic.Uint64 // cache hits inside a shared load, not counted as reader hits
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
}

// Stats returns a snapshot of the counters. It costs a few hundred atomic loads and one
// short lock.
func (c *Cached) Stats() CacheStats {
	rm, am := c.rooms.Metrics(), c.absent.Metrics()
	n := &c.stats
	notHits := n.rechecks.Load() + n.expiredHits.Load()
	s := CacheStats{
		Hits:             rm.Hits - min(rm.Hits, notHits),
		StaleHits:        n.staleHits.Load(),
		NegativeHits:     am.Hits,
		Misses:           n.misses.Load(),
		Loads:            n.loadCalls.Load(),
		LoadErrors:       n.loadErrors.Load(),
		RefreshesStarted: n.refreshes.Load(),
		RoomsRefreshed:   n.refreshed.Load(),
		RefreshFailures:  n.refreshErrors.Load(),
		RefreshesSkipped: n.refreshSkips.Load(),
		RefreshesRunning: c.refreshesRunning(),
		Evictions:        rm.KeysEvicted,
		Invalidations:    n.invalidations.Load(),
		DroppedFills:     n.droppedFills.Load(),
	}
	if total := s.Hits + s.NegativeHits + s.Misses; total > 0 {
		s.HitRatio = float64(s.Hits+s.NegativeHits) / float64(total)
	}
	return s
}
