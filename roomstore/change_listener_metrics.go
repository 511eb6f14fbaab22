package roomstore

import (
	"go.opentelemetry.io/otel/metric"
)

// Names of the instruments a ChangeListener registers with
// ChangeListenerConfig.MeterProvider: observable counters read from Stats at each
// collection.
const (
	// MetricListenerNotices counts change notices applied (ListenerStats.Notices).
	MetricListenerNotices = "gamepersist.roomstore.listener.notices"
	// MetricListenerIDsInvalidated counts room ids invalidated by notices
	// (ListenerStats.IDsInvalidated).
	MetricListenerIDsInvalidated = "gamepersist.roomstore.listener.ids_invalidated"
	// MetricListenerFullInvalidations counts the target emptied
	// (ListenerStats.FullInvalidations).
	MetricListenerFullInvalidations = "gamepersist.roomstore.listener.full_invalidations"
	// MetricListenerGaps counts listening connections lost (ListenerStats.Gaps).
	MetricListenerGaps = "gamepersist.roomstore.listener.gaps"
	// MetricListenerReconnects counts the times listening resumed after a gap
	// (ListenerStats.Reconnects).
	MetricListenerReconnects = "gamepersist.roomstore.listener.reconnects"
)

// newListenerMetrics registers, on mp (nil: no-op), the observable counters that read
// l.Stats() once per collection. The returned registration is unregistered by Close.
func newListenerMetrics(mp metric.MeterProvider, l *ChangeListener) (metric.Registration, error) {
	defs := []observedCounter[ListenerStats]{
		{MetricListenerNotices, "{notice}", "Change notices applied.", func(s ListenerStats) uint64 { return s.Notices }},
		{MetricListenerIDsInvalidated, "{room}", "Room ids invalidated by change notices.", func(s ListenerStats) uint64 { return s.IDsInvalidated }},
		{MetricListenerFullInvalidations, "{call}", "Times the cache was emptied by the change listener.", func(s ListenerStats) uint64 { return s.FullInvalidations }},
		{MetricListenerGaps, "{gap}", "Listening connections lost.", func(s ListenerStats) uint64 { return s.Gaps }},
		{MetricListenerReconnects, "{reconnect}", "Times listening resumed after a gap.", func(s ListenerStats) uint64 { return s.Reconnects }},
	}
	return registerObservedCounters(mp, defs, l.Stats)
}
