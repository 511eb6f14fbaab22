// Package faultproxy is a test helper that puts an in-process TCP fault proxy (Shopify's
// toxiproxy, embedded as a library, no HTTP API) between a client and an upstream address,
// so tests can make a real database or NATS server look down, slow, or unreliable.
//
// A Proxy listens on 127.0.0.1 on a random port and forwards every connection to upstream.
// Faults:
//
//   - Disable / Enable: "server down" (every open connection is closed, new ones are
//     refused) and "server back" (the same address accepts again).
//   - CloseConnections: close every open connection, keep accepting new ones.
//   - Latency: delay every chunk in both directions.
//   - ResetPeer: reset (TCP RST) each connection when the client next sends data, that is
//     mid-statement.
//   - DropReplies: the server still receives and executes what the client sends, but every
//     reply is dropped on the floor; with CloseConnections afterwards this is a "reply lost
//     after the server committed" fault.
//   - RemoveToxics: remove every fault except Disable.
//
// Toxiproxy's logs go to zerolog.Nop(). Stop (also run at the end of the test) removes the
// toxics, closes every connection and the listener.
package faultproxy

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Proxy is a running fault proxy. Its methods are safe for concurrent use. A Proxy holds a
// listener, goroutines per connection and the connections themselves; Stop releases all.
type Proxy struct {
	proxy  *toxiproxy.Proxy
	addr   string
	logCtx context.Context

	mu      sync.Mutex
	stopped bool
}

// Start starts a proxy on 127.0.0.1 (random port) forwarding to upstream (host:port) and
// registers Stop with t.Cleanup. It fails t if the listener cannot be opened.
func Start(t testing.TB, upstream string) *Proxy {
	t.Helper()
	p, err := New(upstream)
	if err != nil {
		t.Fatalf("faultproxy: %v", err)
	}
	t.Cleanup(p.Stop)
	return p
}

// New starts a proxy like Start without a testing.TB (for benchmarks and examples run
// outside tests). The caller must call Stop.
func New(upstream string) (*Proxy, error) {
	logger := zerolog.Nop()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), logger)
	px := toxiproxy.NewProxy(server, "faultproxy", "127.0.0.1:0", upstream)
	if err := px.Start(); err != nil {
		return nil, err
	}
	px.Lock()
	addr := px.Listen
	px.Unlock()
	return &Proxy{proxy: px, addr: addr, logCtx: logger.WithContext(context.Background())}, nil
}

// Addr returns the host:port clients dial to reach upstream through the proxy. It does not
// change across Disable/Enable.
func (p *Proxy) Addr() string { return p.addr }

// Host returns the proxy's host (127.0.0.1).
func (p *Proxy) Host() string {
	h, _, _ := net.SplitHostPort(p.addr)
	return h
}

// Port returns the proxy's port.
func (p *Proxy) Port() string {
	_, port, _ := net.SplitHostPort(p.addr)
	return port
}

// Disable closes every open connection and the listener: connects are refused until
// Enable. Disabling a disabled proxy does nothing.
func (p *Proxy) Disable() {
	p.proxy.Stop()
}

// Enable reopens the listener on the same address after Disable. Enabling an enabled proxy
// does nothing.
func (p *Proxy) Enable() error {
	err := p.proxy.Start()
	if errors.Is(err, toxiproxy.ErrProxyAlreadyStarted) {
		return nil
	}
	return err
}

// CloseConnections closes every open connection (clients see EOF) and keeps accepting new
// ones. It is Disable followed by Enable.
func (p *Proxy) CloseConnections() error {
	p.Disable()
	return p.Enable()
}

// Latency delays every chunk of data in both directions by d (so a round trip costs about
// 2·d more). It replaces a previous Latency.
func (p *Proxy) Latency(d time.Duration) error {
	ms := strconv.FormatInt(d.Milliseconds(), 10)
	for _, dir := range []string{"upstream", "downstream"} {
		if err := p.replaceToxic("latency_"+dir, "latency", dir, `{"latency":`+ms+`}`); err != nil {
			return err
		}
	}
	return nil
}

// ResetPeer resets (TCP RST, data discarded) each connection, open or new, after timeout
// once the client sends data on it: the next statement fails mid-flight and new connections
// fail during their handshake until RemoveToxics.
func (p *Proxy) ResetPeer(timeout time.Duration) error {
	ms := strconv.FormatInt(timeout.Milliseconds(), 10)
	return p.replaceToxic("reset_peer_upstream", "reset_peer", "upstream", `{"timeout":`+ms+`}`)
}

// DropReplies drops everything the upstream sends from now on, on open and new connections,
// while what clients send still reaches the upstream: a statement is executed (and
// committed) but its reply never arrives. Clients wait until their deadline or until
// CloseConnections; RemoveToxics restores replies.
func (p *Proxy) DropReplies() error {
	return p.replaceToxic("timeout_downstream", "timeout", "downstream", `{"timeout":0}`)
}

// RemoveToxics removes every fault added with Latency, ResetPeer or DropReplies. It does
// not Enable a disabled proxy. Removing DropReplies closes the connections it was dropping
// replies on; for a clean "reply lost" fault call CloseConnections first, then RemoveToxics.
func (p *Proxy) RemoveToxics() {
	p.proxy.Toxics.ResetToxics(p.logCtx)
}

// Stop removes the toxics and closes every connection and the listener. It is idempotent
// and is registered with t.Cleanup by Start.
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	p.RemoveToxics()
	p.proxy.Stop()
}

func (p *Proxy) replaceToxic(name, typ, stream, attributes string) error {
	if p.proxy.Toxics.GetToxic(name) != nil {
		if err := p.proxy.Toxics.RemoveToxic(p.logCtx, name); err != nil {
			return err
		}
	}
	body := `{"name":"` + name + `","type":"` + typ + `","stream":"` + stream +
		`","toxicity":1,"attributes":` + attributes + `}`
	_, err := p.proxy.Toxics.AddToxicJson(strings.NewReader(body))
	return err
}

// RewriteURL returns connString (a postgres:// URL or a keyword/value string) pointed at
// addr (host:port), for example a Proxy's Addr. Everything else — user, password, database,
// parameters — is kept. A URL that does not parse is returned unchanged.
func RewriteURL(connString, addr string) string {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") ||
		strings.HasPrefix(connString, "nats://") {
		u, err := url.Parse(connString)
		if err != nil {
			return connString
		}
		u.Host = addr
		return u.String()
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return connString
	}
	// In keyword/value form the last occurrence of a keyword wins.
	return strings.TrimSpace(connString + " host=" + host + " port=" + port)
}
