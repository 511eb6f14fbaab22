// Package testnats runs a real nats-server inside the test process (real server, real
// protocol), as docs/ARCHITECTURE.md says, or points tests at GAMEPERSIST_NATS_URL.
package testnats

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EnvURL names the environment variable that points tests at an external NATS server.
const EnvURL = "GAMEPERSIST_NATS_URL"

// Start runs a new in-process nats-server with JetStream on a random loopback port and
// shuts it down when t ends. opts may adjust the options before start (TLS, auth, cluster).
func Start(t testing.TB, opts ...func(*server.Options)) *server.Server {
	t.Helper()
	s, err := start(t, opts...)
	if err != nil {
		t.Fatalf("testnats: %v", err)
	}
	return s
}

// start is Start returning its error instead of failing t; on success the server is
// shut down when t ends.
func start(t testing.TB, opts ...func(*server.Options)) (*server.Server, error) {
	t.Helper()
	o := &server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		NoLog:     true,
		NoSigs:    true,
		JetStream: true,
		StoreDir:  t.TempDir(),
	}
	for _, f := range opts {
		f(o)
	}
	s, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, errors.New("server not ready within 10s (port taken?)")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s, nil
}

// URL returns GAMEPERSIST_NATS_URL when set, else the client URL of a new in-process
// server (see Start).
func URL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return Start(t).ClientURL()
}
