package roomstore

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
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
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(MeterName)
	type def struct {
		name, unit, desc string
		read             func(ListenerStats) uint64
	}
	defs := []def{
		{MetricListenerNotices, "{notice}", "Change notices applied.", func(s ListenerStats) uint64 { return s.Notices }},
		{MetricListenerIDsInvalidated, "{room}", "Room ids invalidated by change notices.", func(s ListenerStats) uint64 { return s.IDsInvalidated }},
		{MetricListenerFullInvalidations, "{call}", "Times the cache was emptied by the change listener.", func(s ListenerStats) uint64 { return s.FullInvalidations }},
		{MetricListenerGaps, "{gap}", "Listening connections lost.", func(s ListenerStats) uint64 { return s.Gaps }},
		{MetricListenerReconnects, "{reconnect}", "Times listening resumed after a gap.", func(s ListenerStats) uint64 { return s.Reconnects }},
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
		s := l.Stats()
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
