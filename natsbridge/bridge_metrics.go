package natsbridge

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// The instrumentation scope and instrument names of a Bridge's metrics (listed in the
// package doc, "# Stats"), all observed from Stats once per collection: nothing is
// recorded on a message's path.
const (
	meterName = "github.com/gamepersist/gamepersist/natsbridge"

	metricReceived       = "gamepersist.natsbridge.received"
	metricHandled        = "gamepersist.natsbridge.handled"
	metricFailed         = "gamepersist.natsbridge.failed"
	metricDeadLettered   = "gamepersist.natsbridge.dead_lettered"
	metricDeadLetterLost = "gamepersist.natsbridge.dead_letter_lost"
	metricLatencyP50     = "gamepersist.natsbridge.latency.p50" // ms, publish→handled
	metricLatencyP99     = "gamepersist.natsbridge.latency.p99"
)

// newBridgeMetrics registers, on mp (nil: no-op), the observable instruments that read
// b.Stats() once per collection. The registration is unregistered when the Bridge
// finishes (Close or Drain).
func newBridgeMetrics(mp metric.MeterProvider, b *Bridge) (metric.Registration, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(meterName)
	type def struct {
		name, desc string
		read       func(Stats) uint64
	}
	defs := []def{
		{metricReceived, "Messages handed to the bridge's subscriptions.", func(s Stats) uint64 { return s.Received }},
		{metricHandled, "Messages whose handler returned nil.", func(s Stats) uint64 { return s.Handled }},
		{metricFailed, "Messages that ended in failure and were dead-lettered.", func(s Stats) uint64 { return s.Failed }},
		{metricDeadLettered, "Dead letters a JetStream stream acknowledged.", func(s Stats) uint64 { return s.DeadLettered }},
		{metricDeadLetterLost, "Dead letters that were not stored.", func(s Stats) uint64 { return s.DeadLetterLost }},
	}
	counters := make([]metric.Int64ObservableCounter, len(defs))
	obs := make([]metric.Observable, 0, len(defs)+2)
	for i, d := range defs {
		inst, err := m.Int64ObservableCounter(d.name, metric.WithUnit("{message}"), metric.WithDescription(d.desc))
		if err != nil {
			return nil, fmt.Errorf("natsbridge: metric %s: %w", d.name, err)
		}
		counters[i] = inst
		obs = append(obs, inst)
	}
	p50, err := m.Float64ObservableGauge(metricLatencyP50, metric.WithUnit("ms"),
		metric.WithDescription("Median publish-to-handled latency of handled messages."))
	if err != nil {
		return nil, fmt.Errorf("natsbridge: metric %s: %w", metricLatencyP50, err)
	}
	p99, err := m.Float64ObservableGauge(metricLatencyP99, metric.WithUnit("ms"),
		metric.WithDescription("99th percentile publish-to-handled latency of handled messages."))
	if err != nil {
		return nil, fmt.Errorf("natsbridge: metric %s: %w", metricLatencyP99, err)
	}
	obs = append(obs, p50, p99)
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := b.Stats()
		for i, d := range defs {
			o.ObserveInt64(counters[i], int64(min(d.read(s), 1<<63-1)))
		}
		o.ObserveFloat64(p50, float64(s.LatencyP50)/float64(time.Millisecond))
		o.ObserveFloat64(p99, float64(s.LatencyP99)/float64(time.Millisecond))
		return nil
	}, obs...)
	if err != nil {
		return nil, fmt.Errorf("natsbridge: metric callback: %w", err)
	}
	return reg, nil
}
