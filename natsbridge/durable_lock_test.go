package natsbridge_test

import (
	"context"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/internal/testkit/faultproxy"
	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
	"github.com/gamepersist/gamepersist/natsbridge"
)

// TestHandleDurableRoundTripHoldsNoLock: while HandleDurable waits for JetStream to
// create its consumer (the replies are dropped, so it waits until its ctx ends), Stats
// and a Handle on the same Bridge return; they used to wait for the round trip, because
// HandleDurable held the Bridge's lock across it.
func TestHandleDurableRoundTripHoldsNoLock(t *testing.T) {
	t.Parallel()
	srv := testnats.Start(t)
	direct := dialTest(t, srv.ClientURL())
	durableStream(t, direct)
	proxy := faultproxy.Start(t, srv.Addr().String())
	b, err := natsbridge.New(dialTest(t, "nats://"+proxy.Addr()), natsbridge.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })

	// The spy sees the consumer-create request on the server: from then on HandleDurable
	// is inside its round trip.
	spy, err := direct.SubscribeSync("$JS.API.CONSUMER.>")
	if err != nil {
		t.Fatal(err)
	}
	flushConn(t, direct)
	if err := proxy.DropReplies(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	handled := make(chan error, 1)
	go func() {
		handled <- b.HandleDurable(ctx, natsbridge.Durable{Stream: "TRADES", Consumer: "held"}, noopHandler)
	}()
	if _, err := spy.NextMsg(30 * time.Second); err != nil {
		t.Fatalf("the consumer-create request never reached the server: %v", err)
	}

	others := make(chan error, 1)
	go func() {
		_ = b.Stats()
		others <- b.Handle("core.during.durable", noopHandler)
	}()
	select {
	case err := <-others:
		if err != nil {
			t.Fatalf("Handle during HandleDurable's round trip: %v", err)
		}
	case err := <-handled:
		t.Fatalf("HandleDurable returned (%v) before Stats and Handle did: they waited for it", err)
	case <-time.After(20 * time.Second): // a failure guard, not a measurement
		t.Fatal("Stats and Handle still wait for HandleDurable's round trip")
	}
	select {
	case err := <-handled:
		t.Fatalf("HandleDurable returned (%v) without its reply", err)
	default:
	}
	cancel()
	if err := <-handled; err == nil {
		t.Fatal("HandleDurable = nil without a reply from JetStream")
	}
	proxy.RemoveToxics()
}
