package flux

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// MeterName is the instrumentation scope under which a Runner creates its instruments
// (RunnerConfig.MeterProvider).
const MeterName = "github.com/gamepersist/gamepersist/flux"

// Names of the instruments a Runner registers with RunnerConfig.MeterProvider.
const (
	// MetricTickDuration is a histogram of each Tick's or Step's total duration (ms).
	MetricTickDuration = "gamepersist.flux.tick.duration"
	// MetricPhaseDuration is a histogram of each Tick's or Step's phase durations (ms),
	// with the attribute phase = load, rooms, evaluate or apply.
	MetricPhaseDuration = "gamepersist.flux.phase.duration"
	// MetricStatements counts player-store statements (TickReport.Statements, plus the
	// background writer's and the final flush's).
	MetricStatements = "gamepersist.flux.statements"
	// MetricTicks, MetricFailures and MetricApplyFailures count ticks run, ticks failed and
	// applies failed (RunnerStats.Ticks, Failures, ApplyFailures).
	MetricTicks         = "gamepersist.flux.ticks"
	MetricFailures      = "gamepersist.flux.tick.failures"
	MetricApplyFailures = "gamepersist.flux.apply.failures"
	// MetricPendingPlayers is a gauge of RunnerStats.PendingPlayers.
	MetricPendingPlayers = "gamepersist.flux.pending.players"
	// MetricDurableLag is a gauge of RunnerStats.DurableLagP99 (ms).
	MetricDurableLag = "gamepersist.flux.durable_lag.p99"
)

// phase attribute values, each a precomputed record option.
var (
	phaseLoad     = metric.WithAttributeSet(attribute.NewSet(attribute.String("phase", "load")))
	phaseRooms    = metric.WithAttributeSet(attribute.NewSet(attribute.String("phase", "rooms")))
	phaseEvaluate = metric.WithAttributeSet(attribute.NewSet(attribute.String("phase", "evaluate")))
	phaseApply    = metric.WithAttributeSet(attribute.NewSet(attribute.String("phase", "apply")))
)

// msBuckets are the duration histograms' bucket bounds in ms: 0.1 ms to 10 s, about
// 2.5 per decade (a tick of 5,000 players takes milliseconds; an outage's, seconds).
var msBuckets = metric.WithExplicitBucketBoundaries(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

// runnerMetrics holds a Runner's instruments. Recording costs one Record per phase per
// tick and one Add; the counters and gauges are observed from Stats at collection.
type runnerMetrics struct {
	tick, phase metric.Float64Histogram
	statements  metric.Int64Counter
	reg         metric.Registration
	once        sync.Once
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// newRunnerMetrics creates the instruments on mp (nil: no-op) and registers the callback
// that observes r.Stats().
func newRunnerMetrics(mp metric.MeterProvider, r *Runner) (*runnerMetrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(MeterName)
	out := &runnerMetrics{}
	var err error
	wrap := func(name string, e error) error { return fmt.Errorf("flux: metric %s: %w", name, e) }
	if out.tick, err = m.Float64Histogram(MetricTickDuration, metric.WithUnit("ms"), msBuckets,
		metric.WithDescription("Duration of each flux tick or step.")); err != nil {
		return nil, wrap(MetricTickDuration, err)
	}
	if out.phase, err = m.Float64Histogram(MetricPhaseDuration, metric.WithUnit("ms"), msBuckets,
		metric.WithDescription("Duration of each phase (load, rooms, evaluate, apply) of a flux tick or step.")); err != nil {
		return nil, wrap(MetricPhaseDuration, err)
	}
	if out.statements, err = m.Int64Counter(MetricStatements, metric.WithUnit("{statement}"),
		metric.WithDescription("Player-store statements run by the flux runner.")); err != nil {
		return nil, wrap(MetricStatements, err)
	}
	ticks, err := m.Int64ObservableCounter(MetricTicks, metric.WithUnit("{tick}"),
		metric.WithDescription("Flux ticks run, successful or not."))
	if err != nil {
		return nil, wrap(MetricTicks, err)
	}
	failures, err := m.Int64ObservableCounter(MetricFailures, metric.WithUnit("{tick}"),
		metric.WithDescription("Flux ticks that returned an error."))
	if err != nil {
		return nil, wrap(MetricFailures, err)
	}
	applyFailures, err := m.Int64ObservableCounter(MetricApplyFailures, metric.WithUnit("{tick}"),
		metric.WithDescription("Flux applies (writes) that failed."))
	if err != nil {
		return nil, wrap(MetricApplyFailures, err)
	}
	pending, err := m.Int64ObservableGauge(MetricPendingPlayers, metric.WithUnit("{player}"),
		metric.WithDescription("Players whose writes wait for the next apply."))
	if err != nil {
		return nil, wrap(MetricPendingPlayers, err)
	}
	lag, err := m.Float64ObservableGauge(MetricDurableLag, metric.WithUnit("ms"),
		metric.WithDescription("99th percentile of the non-blocking mode's durable lag over the last 1024 writes."))
	if err != nil {
		return nil, wrap(MetricDurableLag, err)
	}
	out.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := r.Stats()
		o.ObserveInt64(ticks, s.Ticks)
		o.ObserveInt64(failures, s.Failures)
		o.ObserveInt64(applyFailures, s.ApplyFailures)
		o.ObserveInt64(pending, int64(s.PendingPlayers))
		o.ObserveFloat64(lag, ms(s.DurableLagP99))
		return nil
	}, ticks, failures, applyFailures, pending, lag)
	if err != nil {
		return nil, fmt.Errorf("flux: metric callback: %w", err)
	}
	return out, nil
}

// recordTick records one Tick's or Step's durations and statements.
func (m *runnerMetrics) recordTick(rep *TickReport) {
	ctx := context.Background()
	m.tick.Record(ctx, ms(rep.Total))
	m.phase.Record(ctx, ms(rep.Load), phaseLoad)
	m.phase.Record(ctx, ms(rep.Rooms), phaseRooms)
	m.phase.Record(ctx, ms(rep.Evaluate), phaseEvaluate)
	m.phase.Record(ctx, ms(rep.Apply), phaseApply)
	m.addStatements(rep.Statements)
}

func (m *runnerMetrics) addStatements(n int) {
	if n > 0 {
		m.statements.Add(context.Background(), int64(n))
	}
}

// unregister stops the observation of Stats; later calls do nothing.
func (m *runnerMetrics) unregister() error {
	var err error
	m.once.Do(func() {
		if e := m.reg.Unregister(); e != nil {
			err = fmt.Errorf("flux: unregister metrics: %w", e)
		}
	})
	return err
}
