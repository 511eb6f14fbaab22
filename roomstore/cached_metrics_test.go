package roomstore_test

import (
	"testing"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/gamepersist/gamepersist/internal/testkit/testmetrics"
	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

// TestCachedMetrics: a configured MeterProvider observes the cache's counters as Stats
// holds them, with their units; after Close they are no longer observed.
func TestCachedMetrics(t *testing.T) {
	t.Parallel()
	mp, collect := testmetrics.Provider(t)
	inner := newCountingStore()
	c, err := roomstore.NewCached(inner, roomstore.CacheConfig{MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	ctx := cachedCtx(t)
	if err := inner.PutRoom(ctx, roomstoretest.SampleRoom("a")); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := c.GetRoom(ctx, "a"); err != nil {
			t.Fatal(err)
		}
	}
	m := collect()
	s := c.Stats()
	for name, want := range map[string]int64{
		roomstore.MetricCacheHits: 4, roomstore.MetricCacheMisses: 1, roomstore.MetricCacheLoads: 1,
		roomstore.MetricCacheNegativeHits: 0,
		roomstore.MetricCacheEvictions:    int64(s.Evictions), roomstore.MetricCacheRefreshes: int64(s.RefreshesStarted),
	} {
		sum, ok := m[name].Data.(metricdata.Sum[int64])
		if !ok || !sum.IsMonotonic || len(sum.DataPoints) != 1 || sum.DataPoints[0].Value != want || m[name].Unit == "" {
			t.Errorf("%s = %+v, want one monotonic point of %d with a unit", name, m[name], want)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := collect()[roomstore.MetricCacheHits]; ok {
		t.Errorf("%s still observed after Close", roomstore.MetricCacheHits)
	}
	_ = inner.Close()
}

// TestCachedNilMeterProvider: without a MeterProvider the cache serves and closes as before.
func TestCachedNilMeterProvider(t *testing.T) {
	t.Parallel()
	inner := newCountingStore()
	c := newCached(t, inner, roomstore.CacheConfig{})
	ctx := cachedCtx(t)
	if err := inner.PutRoom(ctx, roomstoretest.SampleRoom("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetRoom(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
