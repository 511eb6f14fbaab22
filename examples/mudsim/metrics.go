package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// metricsServer serves the simulation's metrics in Prometheus format at /metrics: an
// OpenTelemetry MeterProvider (given to the Runner, the cache and the Bridge) read by
// OpenTelemetry's Prometheus exporter into a registry of its own (no global state). It
// owns its HTTP server and the goroutine serving it; close stops both.
type metricsServer struct {
	provider *sdkmetric.MeterProvider
	srv      *http.Server
	addr     string
	served   chan error // Serve's result, once it returned
}

// startMetrics listens on addr and serves /metrics from a new MeterProvider.
func startMetrics(addr string, log zerolog.Logger) (*metricsServer, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("mudsim: prometheus exporter: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = provider.Shutdown(context.Background())
		return nil, fmt.Errorf("mudsim: metrics address: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	m := &metricsServer{
		provider: provider,
		srv:      &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		addr:     ln.Addr().String(),
		served:   make(chan error, 1),
	}
	go func() { m.served <- m.srv.Serve(ln) }()
	log.Info().Str("metrics_addr", m.addr).Str("path", "/metrics").Msg("metrics serving")
	return m, nil
}

// close shuts the HTTP server down (waiting for running scrapes, within shutdownTimeout),
// waits for its goroutine, and shuts the MeterProvider down.
func (m *metricsServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var errs []error
	if err := m.srv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("mudsim: metrics server shutdown: %w", err))
		_ = m.srv.Close()
	}
	if err := <-m.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("mudsim: metrics server: %w", err))
	}
	if err := m.provider.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("mudsim: meter provider shutdown: %w", err))
	}
	return errors.Join(errs...)
}
