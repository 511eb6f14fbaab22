package roomstore

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// observedCounter is one observable counter read from a Stats snapshot S.
type observedCounter[S any] struct {
	name, unit, desc string
	read             func(S) uint64
}

// registerObservedCounters registers, on mp (nil: no-op), the counters defs, read from one
// stats() snapshot per collection: nothing is recorded on the hot path. The returned
// registration is the caller's to unregister on Close.
func registerObservedCounters[S any](mp metric.MeterProvider, defs []observedCounter[S], stats func() S) (metric.Registration, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(MeterName)
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
		s := stats()
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
