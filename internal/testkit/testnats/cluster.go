package testnats

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartCluster runs n in-process servers (named node-0 … node-n-1) joined into one
// cluster by routes on loopback, waits until every node has a route to every other, and
// shuts them all down when t ends. JetStream is off (a JetStream cluster needs seconds to
// elect a meta leader); opts may turn it on or add TLS/auth, and are applied to every node
// after the cluster settings. Publish on one node, subscribe on another: interest
// crosses the routes asynchronously, so use WaitForInterest before publishing.
func StartCluster(t testing.TB, n int, opts ...func(*server.Options)) []*server.Server {
	t.Helper()
	if n < 2 {
		t.Fatalf("testnats: a cluster needs at least 2 nodes, got %d", n)
	}
	nodes := make([]*server.Server, 0, n)
	var seed *url.URL
	for i := range n {
		node := func(o *server.Options) {
			o.ServerName = "node-" + strconv.Itoa(i)
			o.JetStream = false
			o.Cluster = server.ClusterOpts{Name: "gamepersist-test", Host: "127.0.0.1", Port: -1, PoolSize: -1}
			if seed != nil {
				o.Routes = []*url.URL{seed}
			}
		}
		s := Start(t, append([]func(*server.Options){node}, opts...)...)
		if seed == nil {
			addr := s.ClusterAddr()
			if addr == nil {
				t.Fatal("testnats: first node has no cluster listener")
			}
			seed = &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(addr.Port))}
		}
		nodes = append(nodes, s)
	}
	waitFor(t, 10*time.Second, func() error {
		for _, s := range nodes {
			if got := s.NumRemotes(); got != n-1 {
				return fmt.Errorf("%s has %d routes, want %d", s.Name(), got, n-1)
			}
		}
		return nil
	})
	return nodes
}

// WaitForInterest waits (up to 10 s) until s knows of a subscription matching subject
// in the global account, locally or across a route, so a message published on s will be
// delivered to it.
func WaitForInterest(t testing.TB, s *server.Server, subject string) {
	t.Helper()
	waitFor(t, 10*time.Second, func() error {
		if !s.GlobalAccount().SubscriptionInterest(subject) {
			return fmt.Errorf("no interest in %q on %s", subject, s.Name())
		}
		return nil
	})
}

func waitFor(t testing.TB, limit time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testnats: gave up after %v: %v", limit, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// StartJetStreamCluster runs n in-process servers (node-0 … node-n-1) with JetStream, in
// one cluster whose routes are configured up front (a JetStream cluster needs them),
// waits until every node has a route to every other and the cluster has elected its
// JetStream meta leader, which knows every peer (so streams can be placed), and shuts them all down when t ends. Route ports lie below the
// ephemeral range, as Restartable's do. Expect a few seconds for the election.
func StartJetStreamCluster(t testing.TB, n int, opts ...func(*server.Options)) []*server.Server {
	t.Helper()
	if n < 3 {
		t.Fatalf("testnats: a JetStream cluster needs at least 3 nodes, got %d", n)
	}
	ports := make([]int, n)
	routes := make([]*url.URL, n)
	for i := range ports {
		ports[i] = stablePort()
		if ports[i] == 0 {
			t.Fatal("testnats: no free route port")
		}
		routes[i] = &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i]))}
	}
	nodes := make([]*server.Server, 0, n)
	for i := range n {
		node := func(o *server.Options) {
			o.ServerName = "node-" + strconv.Itoa(i)
			o.JetStream = true
			o.Cluster = server.ClusterOpts{Name: "gamepersist-js", Host: "127.0.0.1", Port: ports[i], PoolSize: -1}
			o.Routes = routes
		}
		nodes = append(nodes, Start(t, append([]func(*server.Options){node}, opts...)...))
	}
	waitFor(t, 20*time.Second, func() error {
		for _, s := range nodes {
			if got := s.NumRemotes(); got != n-1 {
				return fmt.Errorf("%s has %d routes, want %d", s.Name(), got, n-1)
			}
		}
		for _, s := range nodes {
			// The leader lists the peers it can place assets on (online, with stats).
			if s.JetStreamIsLeader() {
				if got := len(s.JetStreamClusterPeers()); got != n {
					return fmt.Errorf("meta leader %s knows %d JetStream peers, want %d", s.Name(), got, n)
				}
				return nil
			}
		}
		return fmt.Errorf("no JetStream meta leader yet")
	})
	return nodes
}
