package roomstore

import (
	"context"
	"sync"
)

// refreshState is refresh-ahead's bookkeeping. Its lock has one job: deciding which stale
// ids a new refresh takes, within CacheConfig.MaxRefreshes.
type refreshState struct {
	mu      sync.Mutex
	busy    map[string]struct{} // ids a running refresh is reloading; guarded by mu
	running int                 // refreshes started and not finished; guarded by mu
}

// refreshAhead starts one background reload of the stale ids that no running refresh is
// reloading, unless MaxRefreshes refreshes are running or Close has begun. It takes ids
// over and never waits for I/O: the reader already has the stale rooms.
func (c *Cached) refreshAhead(ids []string) {
	c.stats.staleHits.Add(uint64(len(ids)))
	if c.life.closed() {
		return
	}
	r := &c.refresh
	r.mu.Lock()
	defer r.mu.Unlock()
	batch := ids[:0]
	for _, id := range ids {
		if _, busy := r.busy[id]; !busy {
			batch = append(batch, id)
		}
	}
	if len(batch) == 0 {
		return
	}
	if r.running >= c.cfg.MaxRefreshes {
		c.stats.refreshSkips.Add(uint64(len(batch)))
		return
	}
	// Lock order: refresh.mu, then the lifeline's; the lifeline never takes this one.
	if !c.life.goRefresh(func() { c.reload(batch) }) {
		return
	}
	for _, id := range batch {
		r.busy[id] = struct{}{}
	}
	r.running++
	c.stats.refreshes.Add(1)
}

// reload is one refresh: a fetch of ids off every reader's path, bounded by LoadTimeout
// and canceled by Close (which waits for it).
func (c *Cached) reload(ids []string) {
	defer c.refreshDone(ids)
	gens := c.gens.snapshot(ids)
	ctx, cancel := context.WithTimeout(c.life.ctx, c.cfg.LoadTimeout)
	defer cancel()
	_, _ = c.fetch(ctx, forRefresh, ids, gens) // counted and logged by fetch
}

func (c *Cached) refreshDone(ids []string) {
	r := &c.refresh
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		delete(r.busy, id)
	}
	r.running--
}

// refreshesRunning is the number of refreshes in flight.
func (c *Cached) refreshesRunning() int {
	c.refresh.mu.Lock()
	defer c.refresh.mu.Unlock()
	return c.refresh.running
}
