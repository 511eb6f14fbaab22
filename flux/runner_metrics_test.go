package flux_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/testkit/testmetrics"
)

// TestRunnerMetrics: a configured MeterProvider receives every instrument with the values
// of the ticks run (one failed apply among them), and after Close the observations stop.
func TestRunnerMetrics(t *testing.T) {
	t.Parallel()
	mp, collect := testmetrics.Provider(t)
	b := memoryBackend(t, scenarioPlayers()...)
	flaky := &flakyStore{PlayerStore: b.store, failApply: 1}
	r, err := flux.NewRunner(flaky, memoryRooms(t, scenarioRooms()...), flux.RunnerConfig{MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := r.Tick(ctx, rtNight); !errors.Is(err, flux.ErrApplyFailed) {
		t.Fatalf("tick 1: %v", err)
	}
	m := collect()
	if g := m[flux.MetricPendingPlayers].Data.(metricdata.Gauge[int64]); g.DataPoints[0].Value != 5 {
		t.Errorf("pending %v, want 5", g.DataPoints[0].Value)
	}
	if _, err := r.Tick(ctx, rtNight.Add(flux.DefaultTickLength)); err != nil {
		t.Fatalf("tick 2: %v", err)
	}
	m = collect()
	h := m[flux.MetricTickDuration].Data.(metricdata.Histogram[float64])
	if m[flux.MetricTickDuration].Unit != "ms" || h.DataPoints[0].Count != 2 || h.DataPoints[0].Sum <= 0 {
		t.Errorf("tick duration: %+v", m[flux.MetricTickDuration])
	}
	ph := m[flux.MetricPhaseDuration].Data.(metricdata.Histogram[float64])
	phases := map[string]uint64{}
	for _, dp := range ph.DataPoints {
		v, _ := dp.Attributes.Value("phase")
		phases[v.AsString()] = dp.Count
	}
	for _, p := range []string{"load", "rooms", "evaluate", "apply"} {
		if phases[p] != 2 {
			t.Errorf("phase %s: %d records, want 2 (%v)", p, phases[p], phases)
		}
	}
	sum := func(name string) int64 {
		s := m[name].Data.(metricdata.Sum[int64])
		if !s.IsMonotonic || len(s.DataPoints) != 1 {
			t.Fatalf("%s: %+v", name, m[name])
		}
		return s.DataPoints[0].Value
	}
	if st := sum(flux.MetricStatements); st < 4 { // two loads and two applies at least
		t.Errorf("statements %d, want >= 4", st)
	}
	if n, f, af := sum(flux.MetricTicks), sum(flux.MetricFailures), sum(flux.MetricApplyFailures); n != 2 || f != 1 || af != 1 {
		t.Errorf("ticks %d failures %d apply failures %d, want 2 1 1", n, f, af)
	}
	if g := m[flux.MetricPendingPlayers].Data.(metricdata.Gauge[int64]); g.DataPoints[0].Value != 0 {
		t.Errorf("pending %v, want 0", g.DataPoints[0].Value)
	}
	if _, ok := m[flux.MetricDurableLag]; !ok {
		t.Errorf("no %s", flux.MetricDurableLag)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := collect()[flux.MetricTicks]; ok {
		t.Errorf("%s still observed after Close", flux.MetricTicks)
	}
}

// TestRunnerNilMeterProvider: without a MeterProvider a Runner ticks and closes as before.
func TestRunnerNilMeterProvider(t *testing.T) {
	t.Parallel()
	b := memoryBackend(t, scenarioPlayers()...)
	r, err := flux.NewRunner(b.store, memoryRooms(t, scenarioRooms()...), flux.RunnerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Tick(context.Background(), rtNight); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}
