package natsbridge_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
	"github.com/gamepersist/gamepersist/natsbridge"
)

// connect opens a connection to url that the test closes at its end.
func dialTest(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// newBridge starts a server, connects to it and returns a Bridge closed at test end.
func startBridge(t *testing.T, cfg natsbridge.Config) (*natsbridge.Bridge, *nats.Conn) {
	t.Helper()
	nc := dialTest(t, testnats.Start(t).ClientURL())
	ensureDeadLetterStream(t, nc)
	b, err := natsbridge.New(nc, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, nc
}

// deadLetters subscribes to every dead-letter subject under the default prefix.
func subscribeDeadLetters(t *testing.T, nc *nats.Conn) *nats.Subscription {
	t.Helper()
	sub, err := nc.SubscribeSync("deadletter." + ">")
	if err != nil {
		t.Fatalf("subscribe dead letters: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return sub
}

// nextDeadLetter waits up to 5 s for the next dead letter.
func nextDeadLetter(t *testing.T, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	return m
}

// waitFor polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// publish sends data to subject with a "seq" header and fails the test on error.
func publishSeq(t *testing.T, nc *nats.Conn, subject string, seq int, data []byte) {
	t.Helper()
	m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	m.Header.Set("seq", strconv.Itoa(seq))
	if err := nc.PublishMsg(m); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func flushConn(t *testing.T, nc *nats.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := nc.FlushWithContext(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// ensureDeadLetterStream creates the memory stream "DEADLETTERS" on the default
// dead-letter prefix: a dead letter counts only once a stream acknowledged it.
func ensureDeadLetterStream(t testing.TB, nc *nats.Conn) jetstream.Stream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := natsbridge.EnsureDeadLetterStream(ctx, js, natsbridge.DeadLetterStreamConfig{Name: "DEADLETTERS", Memory: true})
	if err != nil {
		t.Fatalf("dead-letter stream: %v", err)
	}
	return s
}
