package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsCluster is the embedded NATS cluster: n in-process nats-servers with JetStream,
// joined by routes on loopback, each on a fixed client and route port so a killed node
// comes back at the same address with the same JetStream store.
type natsCluster struct {
	dir    string
	opts   []*server.Options
	nodes  []*server.Server
	killed []bool
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("soak: free port: %w", err)
	}
	addr, ok := ln.Addr().(*net.TCPAddr)
	_ = ln.Close()
	if !ok {
		return 0, errors.New("soak: free port: not TCP")
	}
	return addr.Port, nil
}

// startNATSCluster starts n JetStream nodes and waits until every node routes to every
// other and the cluster has a JetStream meta leader that knows every peer.
func startNATSCluster(n int) (*natsCluster, error) {
	dir, err := os.MkdirTemp("", "soak-nats-")
	if err != nil {
		return nil, fmt.Errorf("soak: nats store: %w", err)
	}
	c := &natsCluster{dir: dir, killed: make([]bool, n)}
	routes := make([]*url.URL, n)
	clientPorts := make([]int, n)
	for i := range n {
		rp, err := freePort()
		if err != nil {
			return nil, errors.Join(err, c.stop())
		}
		cp, err := freePort()
		if err != nil {
			return nil, errors.Join(err, c.stop())
		}
		clientPorts[i] = cp
		routes[i] = &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(rp))}
	}
	for i := range n {
		rp, _ := strconv.Atoi(routes[i].Port())
		o := &server.Options{
			ServerName: "node-" + strconv.Itoa(i),
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			NoLog:      true,
			NoSigs:     true,
			JetStream:  true,
			StoreDir:   filepath.Join(dir, "node-"+strconv.Itoa(i)),
			Cluster:    server.ClusterOpts{Name: "soak", Host: "127.0.0.1", Port: rp, PoolSize: -1},
			Routes:     routes,
		}
		c.opts = append(c.opts, o)
		s, err := startNode(o)
		if err != nil {
			return nil, errors.Join(err, c.stop())
		}
		c.nodes = append(c.nodes, s)
	}
	if err := c.waitReady(30 * time.Second); err != nil {
		return nil, errors.Join(err, c.stop())
	}
	return c, nil
}

// startNode starts one node with a copy of o and waits until it accepts clients.
func startNode(o *server.Options) (*server.Server, error) {
	oc := o.Clone()
	s, err := server.NewServer(oc)
	if err != nil {
		return nil, fmt.Errorf("soak: nats node %s: %w", o.ServerName, err)
	}
	s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("soak: nats node %s not ready within 15s", o.ServerName)
	}
	return s, nil
}

// waitReady waits until every running node has a route to every other running node and
// a meta leader knows all of them as JetStream peers.
func (c *natsCluster) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := c.ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("soak: nats cluster not ready after %v: %w", limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ready reports why the cluster is not ready yet, or nil.
func (c *natsCluster) ready() error {
	n := len(c.nodes)
	leader := false
	for i, s := range c.nodes {
		if c.killed[i] {
			continue
		}
		if got := s.NumRemotes(); got != n-1 {
			return fmt.Errorf("%s has %d routes, want %d", s.Name(), got, n-1)
		}
		if s.JetStreamIsLeader() {
			if got := len(s.JetStreamClusterPeers()); got != n {
				return fmt.Errorf("meta leader %s knows %d peers, want %d", s.Name(), got, n)
			}
			leader = true
		}
	}
	if !leader {
		return errors.New("no JetStream meta leader yet")
	}
	return nil
}

// clientAddr is node i's client address (host:port), the same across restarts.
func (c *natsCluster) clientAddr(i int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.opts[i].Port))
}

// kill shuts node i down (its clients see a disconnect).
func (c *natsCluster) kill(i int) {
	if c.killed[i] {
		return
	}
	c.nodes[i].Shutdown()
	c.nodes[i].WaitForShutdown()
	c.killed[i] = true
}

// restart brings node i back on its ports with its store, retrying while the ports are
// still held, and waits until the cluster is whole again.
func (c *natsCluster) restart(i int) error {
	if !c.killed[i] {
		return nil
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := startNode(c.opts[i])
		if err == nil {
			c.nodes[i] = s
			c.killed[i] = false
			break
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c.waitReady(30 * time.Second)
}

// stop shuts every node down and removes the stores.
func (c *natsCluster) stop() error {
	for i, s := range c.nodes {
		if !c.killed[i] {
			s.Shutdown()
			s.WaitForShutdown()
			c.killed[i] = true
		}
	}
	if c.dir == "" {
		return nil
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("soak: remove nats store: %w", err)
	}
	return nil
}
