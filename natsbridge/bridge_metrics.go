package natsbridge

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// MeterName is the instrumentation scope under which a Bridge creates its instruments
// (Config.MeterProvider).
const MeterName = "github.com/gamepersist/gamepersist/natsbridge"

// Names of the instruments a Bridge registers with Config.MeterProvider, all observed
// from Stats once per collection (nothing is recorded on a message's path).
const (
	// MetricReceived, MetricHandled, MetricFailed, MetricDeadLettered and
	// MetricDeadLetterLost count messages (Stats.Received, Handled, Failed, DeadLettered,
	// DeadLetterLost).
	MetricReceived       = "gamepersist.natsbridge.received"
	MetricHandled        = "gamepersist.natsbridge.handled"
	MetricFailed         = "gamepersist.natsbridge.failed"
	MetricDeadLettered   = "gamepersist.natsbridge.dead_lettered"
	MetricDeadLetterLost = "gamepersist.natsbridge.dead_letter_lost"
	// MetricLatencyP50 and MetricLatencyP99 are gauges of Stats.LatencyP50 and LatencyP99
	// (ms): publish→handled time over all handled messages since New. The Bridge keeps
	// its own histogram on the message path; exporting its percentiles costs nothing
	// there.
	MetricLatencyP50 = "gamepersist.natsbridge.latency.p50"
	MetricLatencyP99 = "gamepersist.natsbridge.latency.p99"
)

// newBridgeMetrics registers, on mp (nil: no-op), the observable instruments that read
// b.Stats() once per collection. The registration is unregistered when the Bridge
// finishes (Close or Drain).
func newBridgeMetrics(mp metric.MeterProvider, b *Bridge) (metric.Registration, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(MeterName)
	type def struct {
		name, desc string
		read       func(Stats) uint64
	}
	defs := []def{
		{MetricReceived, "Messages handed to the bridge's subscriptions.", func(s Stats) uint64 { return s.Received }},
		{MetricHandled, "Messages whose handler returned nil.", func(s Stats) uint64 { return s.Handled }},
		{MetricFailed, "Messages that ended in failure and were dead-lettered.", func(s Stats) uint64 { return s.Failed }},
		{MetricDeadLettered, "Dead letters a JetStream stream acknowledged.", func(s Stats) uint64 { return s.DeadLettered }},
		{MetricDeadLetterLost, "Dead letters that were not stored.", func(s Stats) uint64 { return s.DeadLetterLost }},
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
	p50, err := m.Float64ObservableGauge(MetricLatencyP50, metric.WithUnit("ms"),
		metric.WithDescription("Median publish-to-handled latency of handled messages."))
	if err != nil {
		return nil, fmt.Errorf("natsbridge: metric %s: %w", MetricLatencyP50, err)
	}
	p99, err := m.Float64ObservableGauge(MetricLatencyP99, metric.WithUnit("ms"),
		metric.WithDescription("99th percentile publish-to-handled latency of handled messages."))
	if err != nil {
		return nil, fmt.Errorf("natsbridge: metric %s: %w", MetricLatencyP99, err)
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
