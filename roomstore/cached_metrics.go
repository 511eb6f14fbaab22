package roomstore

import (
	"go.opentelemetry.io/otel/metric"
)

// MeterName is the instrumentation scope under which a Cached creates its instruments
// (CacheConfig.MeterProvider).
const MeterName = "github.com/gamepersist/gamepersist/roomstore"

// Names of the instruments a Cached registers with CacheConfig.MeterProvider: observable
// counters read from Stats at each collection.
const (
	// MetricCacheHits counts ids answered with a room from memory (CacheStats.Hits).
	MetricCacheHits = "gamepersist.roomstore.cache.hits"
	// MetricCacheNegativeHits counts ids answered not-found from memory
	// (CacheStats.NegativeHits).
	MetricCacheNegativeHits = "gamepersist.roomstore.cache.negative_hits"
	// MetricCacheMisses counts ids loaded on a reader's path (CacheStats.Misses).
	MetricCacheMisses = "gamepersist.roomstore.cache.misses"
	// MetricCacheLoads counts inner-store calls on a reader's path (CacheStats.Loads).
	MetricCacheLoads = "gamepersist.roomstore.cache.loads"
	// MetricCacheEvictions counts rooms evicted (CacheStats.Evictions).
	MetricCacheEvictions = "gamepersist.roomstore.cache.evictions"
	// MetricCacheRefreshes counts background refreshes started
	// (CacheStats.RefreshesStarted).
	MetricCacheRefreshes = "gamepersist.roomstore.cache.refreshes"
)

// newCacheMetrics registers, on mp (nil: no-op), the observable counters that read
// c.Stats() once per collection. The returned registration is unregistered by Close.
func newCacheMetrics(mp metric.MeterProvider, c *Cached) (metric.Registration, error) {
	defs := []observedCounter[CacheStats]{
		{MetricCacheHits, "{room}", "Room ids answered from the cache.", func(s CacheStats) uint64 { return s.Hits }},
		{MetricCacheNegativeHits, "{room}", "Room ids answered not-found from the cache.", func(s CacheStats) uint64 { return s.NegativeHits }},
		{MetricCacheMisses, "{room}", "Room ids loaded from the inner store on a reader's path.", func(s CacheStats) uint64 { return s.Misses }},
		{MetricCacheLoads, "{call}", "Inner-store calls made on a reader's path.", func(s CacheStats) uint64 { return s.Loads }},
		{MetricCacheEvictions, "{room}", "Rooms evicted from the cache.", func(s CacheStats) uint64 { return s.Evictions }},
		{MetricCacheRefreshes, "{call}", "Background refreshes started.", func(s CacheStats) uint64 { return s.RefreshesStarted }},
	}
	return registerObservedCounters(mp, defs, c.Stats)
}
