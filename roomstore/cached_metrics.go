package roomstore

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
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
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(MeterName)
	type def struct {
		name, unit, desc string
		read             func(CacheStats) uint64
	}
	defs := []def{
		{MetricCacheHits, "{room}", "Room ids answered from the cache.", func(s CacheStats) uint64 { return s.Hits }},
		{MetricCacheNegativeHits, "{room}", "Room ids answered not-found from the cache.", func(s CacheStats) uint64 { return s.NegativeHits }},
		{MetricCacheMisses, "{room}", "Room ids loaded from the inner store on a reader's path.", func(s CacheStats) uint64 { return s.Misses }},
		{MetricCacheLoads, "{call}", "Inner-store calls made on a reader's path.", func(s CacheStats) uint64 { return s.Loads }},
		{MetricCacheEvictions, "{room}", "Rooms evicted from the cache.", func(s CacheStats) uint64 { return s.Evictions }},
		{MetricCacheRefreshes, "{call}", "Background refreshes started.", func(s CacheStats) uint64 { return s.RefreshesStarted }},
	}
	insts := make([]metric.Int64ObservableCounter, len(defs))
	obs := make([]metric.Observable, len(defs))
	for i, d := range defs {
		inst, err := m.Int64ObservableCounter(d.name, metric.WithUnit(d.unit), metric.WithDescription(d.desc))
		if err != nil {
			return nil, fmt.Errorf("roomstore: metric %s: %w", d.name, err)
		}
		insts[i], obs[i] = inst, inst
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := c.Stats()
		for i, d := range defs {
			o.ObserveInt64(insts[i], int64(min(d.read(s), 1<<63-1)))
		}
		return nil
	}, obs...)
	if err != nil {
		return nil, fmt.Errorf("roomstore: metric callback: %w", err)
	}
	return reg, nil
}
