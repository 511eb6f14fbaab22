// Package testmetrics is the tests' OpenTelemetry kit: a MeterProvider on a manual reader,
// shut down when the test ends, and a way to read every metric it holds by name.
package testmetrics

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Provider returns a MeterProvider for t (shut down when t ends) and a function that
// collects everything it holds, by instrument name.
func Provider(t testing.TB) (*sdkmetric.MeterProvider, func() map[string]metricdata.Metrics) {
	t.Helper()
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp, func() map[string]metricdata.Metrics {
		t.Helper()
		var rm metricdata.ResourceMetrics
		if err := rd.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		out := map[string]metricdata.Metrics{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				out[m.Name] = m
			}
		}
		return out
	}
}
