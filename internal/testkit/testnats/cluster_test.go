package testnats_test

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
)

func TestClusterRoutesMessages(t *testing.T) {
	t.Parallel()
	nodes := testnats.StartCluster(t, 3)
	a, err := nats.Connect(nodes[0].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c, err := nats.Connect(nodes[2].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub, err := c.SubscribeSync("cluster.probe")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	testnats.WaitForInterest(t, nodes[0], "cluster.probe")
	if err := a.Publish("cluster.probe", []byte("from A")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil || string(m.Data) != "from A" {
		t.Fatalf("got %v, %v", m, err)
	}
}

func TestRestartableKeepsURL(t *testing.T) {
	t.Parallel()
	r := testnats.StartRestartable(t)
	before := r.URL()
	r.Restart()
	if r.URL() != before {
		t.Fatalf("URL changed across restart: %s → %s", before, r.URL())
	}
	nc, err := nats.Connect(before)
	if err != nil {
		t.Fatalf("connect after restart: %v", err)
	}
	nc.Close()
}

func TestTLSServerAcceptsOnlyTrustedClients(t *testing.T) {
	t.Parallel()
	pki := testnats.NewPKI(t)
	s := testnats.Start(t, testnats.WithTLS(t, pki, true))
	cert, err := tls.LoadX509KeyPair(pki.ClientCertFile, pki.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	good := &tls.Config{RootCAs: pki.CAPool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	nc, err := nats.Connect(s.ClientURL(), nats.Secure(good))
	if err != nil {
		t.Fatalf("mutual TLS: %v", err)
	}
	nc.Close()
	noCert := &tls.Config{RootCAs: pki.CAPool, MinVersion: tls.VersionTLS12}
	if nc, err := nats.Connect(s.ClientURL(), nats.Secure(noCert)); err == nil {
		nc.Close()
		t.Fatal("a client without a certificate connected")
	}
}
