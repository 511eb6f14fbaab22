package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// promNames are the series the Prometheus exporter renders from the libraries'
// instruments: dots become underscores, the unit ms becomes _milliseconds, counters end in
// _total and histograms are _bucket, _sum and _count series.
var promNames = []string{
	"gamepersist_flux_tick_duration_milliseconds_bucket",
	"gamepersist_flux_tick_duration_milliseconds_count",
	"gamepersist_flux_phase_duration_milliseconds_bucket",
	"gamepersist_flux_phase_duration_milliseconds_count",
	"gamepersist_flux_statements_total",
	"gamepersist_flux_ticks_total",
	"gamepersist_flux_tick_failures_total",
	"gamepersist_flux_apply_failures_total",
	"gamepersist_flux_pending_players",
	"gamepersist_flux_durable_lag_p99_milliseconds",
	"gamepersist_roomstore_cache_hits_total",
	"gamepersist_roomstore_cache_negative_hits_total",
	"gamepersist_roomstore_cache_misses_total",
	"gamepersist_roomstore_cache_loads_total",
	"gamepersist_roomstore_cache_evictions_total",
	"gamepersist_roomstore_cache_refreshes_total",
	"gamepersist_natsbridge_received_total",
	"gamepersist_natsbridge_handled_total",
	"gamepersist_natsbridge_failed_total",
	"gamepersist_natsbridge_dead_lettered_total",
	"gamepersist_natsbridge_dead_letter_lost_total",
	"gamepersist_natsbridge_latency_p50_milliseconds",
	"gamepersist_natsbridge_latency_p99_milliseconds",
}

// scrape GETs url and returns the body.
func scrape(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d, %v", url, resp.StatusCode, err)
	}
	return string(body)
}

// TestMetricsEndpoint runs the simulation with -metrics-addr on a free port, scrapes
// /metrics while it runs and finds every instrument of the three libraries, with values
// that moved; when run returns, the server is gone (and TestMain's goleak check finds no
// goroutine left).
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	logs := newLogLines()
	cfg := smallWorld(logs)
	cfg.MetricsAddr = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, &out) }()
	logs.waitFor(t, "metrics serving", 1)
	addr, _ := logs.withMessage("metrics serving")[0]["metrics_addr"].(string)
	logs.waitFor(t, "tick", 5)
	url := "http://" + addr + "/metrics"
	body := scrape(t, url)
	for _, name := range promNames {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("scrape lacks %s", name)
		}
	}
	for _, phase := range []string{"load", "rooms", "evaluate", "apply"} {
		if !strings.Contains(body, `phase="`+phase+`"`) {
			t.Errorf("scrape lacks the phase %s", phase)
		}
	}
	for _, moved := range []string{"gamepersist_flux_ticks_total", "gamepersist_flux_tick_duration_milliseconds_count",
		"gamepersist_natsbridge_handled_total", "gamepersist_roomstore_cache_hits_total"} {
		if v := valueOf(body, moved); v == "" || v == "0" {
			t.Errorf("%s = %q after 5 ticks", moved, v)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of cancel")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		_ = c.Close()
		t.Errorf("metrics server still listening at %s after run", addr)
	}
}

// valueOf returns the value of the first sample of the series name in a Prometheus text body.
func valueOf(body, name string) string {
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			f := strings.Fields(line)
			return f[len(f)-1]
		}
	}
	return ""
}

// TestMetricsAddrBusy: an address already in use fails the run before anything starts, and
// -metrics-addr sets Config.MetricsAddr.
func TestMetricsAddrBusy(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := smallWorld(newLogLines())
	cfg.MetricsAddr = ln.Addr().String()
	if _, err := simulate(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "metrics address") {
		t.Errorf("busy address: err = %v", err)
	}
	c, _, err := parseFlags([]string{"-metrics-addr", "127.0.0.1:9464"}, io.Discard)
	if err != nil || c.MetricsAddr != "127.0.0.1:9464" {
		t.Errorf("-metrics-addr: %q, %v", c.MetricsAddr, err)
	}
}
