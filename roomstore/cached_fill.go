package roomstore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"time"
)

// fetchFor says who asked for a fetch: it picks the inner call and the counters.
type fetchFor uint8

const (
	// forOneReader is GetRoom's shared load of one id: a batch of one, read with the
	// inner store's GetRoom.
	forOneReader fetchFor = iota
	// forReaders is the misses of one GetRooms or VisitRooms call: one inner GetRooms.
	forReaders
	// forRefresh is a refresh-ahead reload, off every reader's path: one inner GetRooms.
	forRefresh
)

// fetch is the one path from the inner store into the cache, for single reads, batch
// reads and refresh-ahead alike: it reads ids with one inner call and caches what it read
// through fill (rooms found, not-found entries for the others), keeping every id whose
// generation is still the one in gens (taken by the caller before this call). It returns
// the rooms found. An error of the inner store is counted, logged at debug level and
// wrapped; after Close began, a refresh stores nothing and returns ErrClosed.
func (c *Cached) fetch(ctx context.Context, why fetchFor, ids []string, gens []uint64) (map[string]Room, error) {
	loadedAt := c.now()
	if why != forRefresh {
		c.stats.loadCalls.Add(1)
	}
	loaded, err := c.readInner(ctx, why, ids)
	if why == forRefresh && c.life.closed() {
		return nil, ErrClosed
	}
	if err != nil {
		return nil, c.fetchFailed(why, ids, err)
	}
	stored := c.fill(ids, gens, loaded, loadedAt)
	if why == forRefresh {
		c.stats.refreshed.Add(uint64(stored))
	}
	return loaded, nil
}

// readInner makes fetch's one inner call. A batch of one from GetRoom reads with the
// inner GetRoom (a not-found room is an absent key, as GetRooms reports it).
func (c *Cached) readInner(ctx context.Context, why fetchFor, ids []string) (map[string]Room, error) {
	if why != forOneReader {
		return c.inner.GetRooms(ctx, ids)
	}
	r, err := c.inner.GetRoom(ctx, ids[0])
	switch {
	case err == nil:
		return map[string]Room{ids[0]: r}, nil
	case errors.Is(err, ErrNotFound):
		return nil, nil
	default:
		return nil, err
	}
}

// fetchFailed counts, logs and wraps a failed inner read.
func (c *Cached) fetchFailed(why fetchFor, ids []string, err error) error {
	log := c.cfg.Logger.Debug().Err(err)
	switch {
	case why == forRefresh:
		c.stats.refreshErrors.Add(1)
		log.Int("rooms", len(ids)).Msg("roomstore: cache refresh failed")
		return fmt.Errorf("roomstore: refresh %d rooms: %w", len(ids), err)
	case errors.Is(err, ErrClosed) && c.life.closed():
		log.Discard()
		return ErrClosed
	case why == forOneReader:
		c.stats.loadErrors.Add(1)
		log.Str("room_id", ids[0]).Msg("roomstore: cache load failed")
		return fmt.Errorf("roomstore: load room %q into cache: %w", ids[0], err)
	default:
		c.stats.loadErrors.Add(1)
		log.Int("rooms", len(ids)).Msg("roomstore: cache batch load failed")
		return fmt.Errorf("roomstore: load %d rooms into cache: %w", len(ids), err)
	}
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

func (c *Cached) droppedFill(id string) {
	c.stats.droppedFills.Add(1)
	c.cfg.Logger.Debug().Str("room_id", id).Msg("roomstore: cache did not keep a loaded room")
}
