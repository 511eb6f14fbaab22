package testnats

import (
	"net"
	"sync"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// Restartable is an in-process server that can be stopped and started again on the same
// port and with the same JetStream store, the way an operator restarts nats-server. Its
// methods are safe for concurrent use.
type Restartable struct {
	t        testing.TB
	opts     []func(*server.Options)
	port     int
	storeDir string

	mu  sync.Mutex
	srv *server.Server
}

// StartRestartable starts a server like Start (the same opts) and remembers its port so
// Restart can bring it back there. Every server it starts is shut down when t ends.
func StartRestartable(t testing.TB, opts ...func(*server.Options)) *Restartable {
	t.Helper()
	r := &Restartable{t: t, opts: opts, storeDir: t.TempDir()}
	r.srv = Start(t, r.options(0)...)
	addr, ok := r.srv.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("testnats: server address %v is not TCP", r.srv.Addr())
	}
	r.port = addr.Port
	return r
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
// same options and store directory.
func (r *Restartable) Restart() {
	r.t.Helper()
	r.Stop()
	s := Start(r.t, r.options(r.port)...)
	r.mu.Lock()
	r.srv = s
	r.mu.Unlock()
}
