package testnats_test

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestServerRoundTrip(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(testnats.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("probe.x")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("probe.x", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil || string(m.Data) != "hi" {
		t.Fatalf("got %v, %v", m, err)
	}
}

// TestRestartableKeepsPort: Restart brings the server back on the same port (below the
// ephemeral range, so nothing else can take it meanwhile) and a client reconnects.
func TestRestartableKeepsPort(t *testing.T) {
	t.Parallel()
	srv := testnats.StartRestartable(t)
	url := srv.URL()
	port := srv.Server().Addr().(*net.TCPAddr).Port
	if port >= 32768 {
		t.Logf("port %d is in the default ephemeral range (range unknown or no free stable port)", port)
	}
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	first := srv.Server().ID()
	srv.Restart()
	if srv.URL() != url || srv.Server().ID() == first {
		t.Fatalf("after Restart: url %s (was %s), same server %v", srv.URL(), url, srv.Server().ID() == first)
	}
	deadline := time.Now().Add(10 * time.Second)
	for nc.ConnectedServerId() != srv.Server().ID() {
		if time.Now().After(deadline) {
			t.Fatal("client did not reconnect to the restarted server")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush after reconnect: %v", err)
	}
}
