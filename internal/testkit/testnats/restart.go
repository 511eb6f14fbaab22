package testnats

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Restartable is an in-process server that can be stopped and started again on the same
// port and with the same JetStream store, the way an operator restarts nats-server. Its
// methods are safe for concurrent use.
//
// Its port is chosen below the kernel's ephemeral port range (where the OS never puts a
// listener on port 0 or the local end of an outgoing connection), so that while it is
// stopped no other test's server or client socket can take the port and make the
// restart fail; Restart also waits for the port to be free.
type Restartable struct {
	t        testing.TB
	opts     []func(*server.Options)
	port     int
	storeDir string

	mu  sync.Mutex
	srv *server.Server
}

// StartRestartable starts a server like Start (the same opts) on a port outside the
// ephemeral range and remembers it so Restart can bring it back there. Every server it
// starts is shut down when t ends.
func StartRestartable(t testing.TB, opts ...func(*server.Options)) *Restartable {
	t.Helper()
	r := &Restartable{t: t, opts: opts, storeDir: t.TempDir()}
	for range 20 {
		port := stablePort()
		s, err := start(t, r.options(port)...)
		if err != nil {
			continue // another process took the port between the probe and the listen
		}
		r.srv = s
		addr, ok := s.Addr().(*net.TCPAddr)
		if !ok {
			t.Fatalf("testnats: server address %v is not TCP", s.Addr())
		}
		r.port = addr.Port
		return r
	}
	t.Fatal("testnats: no restartable server could be started")
	return nil
}

func (r *Restartable) options(port int) []func(*server.Options) {
	return append(append([]func(*server.Options){}, r.opts...), func(o *server.Options) {
		if port != 0 {
			o.Port = port
		}
		o.StoreDir = r.storeDir
	})
}

// Server returns the running server (the newest one after a Restart).
func (r *Restartable) Server() *server.Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.srv
}

// URL returns the client URL, which stays the same across restarts.
func (r *Restartable) URL() string { return r.Server().ClientURL() }

// Stop shuts the server down and waits until it is gone; clients see a disconnect.
func (r *Restartable) Stop() {
	s := r.Server()
	s.Shutdown()
	s.WaitForShutdown()
}

// Restart stops the server (if running) and starts a new one on the same port with the
// same options and store directory. If the port is busy it retries for up to 10 s.
func (r *Restartable) Restart() {
	r.t.Helper()
	r.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if portFree(r.port) {
			if s, err := start(r.t, r.options(r.port)...); err == nil {
				r.mu.Lock()
				r.srv = s
				r.mu.Unlock()
				return
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("testnats: port %d still busy 10s after the stop: cannot restart", r.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stablePort returns a loopback port that is free now and lies below the ephemeral port
// range, or 0 (any port) if no such port is found or the range is unknown.
func stablePort() int {
	lo := 32768 // Linux's default start of net.ipv4.ip_local_port_range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				lo = n
			}
		}
	}
	const first = 20000
	if lo <= first+100 {
		return 0
	}
	for range 50 {
		port := first + rand.IntN(lo-first)
		if portFree(port) {
			return port
		}
	}
	return 0
}

// portFree reports whether a listener can bind 127.0.0.1:port now.
func portFree(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}
