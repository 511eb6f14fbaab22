package testnats_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/gamepersist/gamepersist/internal/testnats"
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
