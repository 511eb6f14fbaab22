package natsbridge_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/gamepersist/gamepersist/internal/testkit/testmetrics"
	"github.com/gamepersist/gamepersist/natsbridge"
)

// TestBridgeMetrics: a configured MeterProvider observes received, handled, failed and
// dead-lettered messages as Stats counts them, and a latency; Close unregisters them.
func TestBridgeMetrics(t *testing.T) {
	t.Parallel()
	mp, collect := testmetrics.Provider(t)
	b, nc := startBridge(t, natsbridge.Config{MaxAttempts: 1, MeterProvider: mp})
	h := func(_ context.Context, m natsbridge.Msg) error {
		if string(m.Data) == "bad" {
			return errors.New("refused")
		}
		return nil
	}
	if err := b.Handle("metrics.m1", h); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	publishSeq(t, nc, "metrics.m1", 1, []byte("ok"))
	publishSeq(t, nc, "metrics.m1", 2, []byte("bad"))
	publishSeq(t, nc, "metrics.m1", 3, []byte("ok"))
	flushConn(t, nc)
	eventually(t, "outcomes counted", func() bool {
		s := b.Stats()
		return s.Handled == 2 && s.Failed == 1 && s.DeadLettered+s.DeadLetterLost == 1
	})
	m := collect()
	s := b.Stats()
	for name, want := range map[string]int64{
		"gamepersist.natsbridge.received": 3, "gamepersist.natsbridge.handled": 2, "gamepersist.natsbridge.failed": 1,
		"gamepersist.natsbridge.dead_lettered": int64(s.DeadLettered), "gamepersist.natsbridge.dead_letter_lost": int64(s.DeadLetterLost),
	} {
		sum, ok := m[name].Data.(metricdata.Sum[int64])
		if !ok || !sum.IsMonotonic || len(sum.DataPoints) != 1 || sum.DataPoints[0].Value != want || m[name].Unit != "{message}" {
			t.Errorf("%s = %+v, want one monotonic point of %d {message}", name, m[name], want)
		}
	}
	for _, name := range []string{"gamepersist.natsbridge.latency.p50", "gamepersist.natsbridge.latency.p99"} {
		g, ok := m[name].Data.(metricdata.Gauge[float64])
		if !ok || len(g.DataPoints) != 1 || g.DataPoints[0].Value <= 0 || m[name].Unit != "ms" {
			t.Errorf("%s = %+v, want one positive point in ms", name, m[name])
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := collect()["gamepersist.natsbridge.received"]; ok {
		t.Errorf("%s still observed after Close", "gamepersist.natsbridge.received")
	}
}

// TestBridgeNilMeterProvider: without a MeterProvider a Bridge handles and closes as before.
func TestBridgeNilMeterProvider(t *testing.T) {
	t.Parallel()
	b, nc := startBridge(t, natsbridge.Config{})
	if err := b.Handle("metrics.nil", func(context.Context, natsbridge.Msg) error { return nil }); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	publishSeq(t, nc, "metrics.nil", 1, nil)
	flushConn(t, nc)
	eventually(t, "handled", func() bool { return b.Stats().Handled == 1 })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}
