package natsbridge_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamepersist/gamepersist/natsbridge"
)

// exampleServer runs an in-process nats-server for the examples; a game server
// connects to its NATS deployment instead.
func exampleServer() *server.Server {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		panic(err)
	}
	s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		panic("nats-server not ready")
	}
	return s
}

type chatLine struct {
	Text string `json:"text"`
}

// A typed handler on every room's chat: messages of one room are handled in order,
// rooms in parallel, and the connection stays the caller's.
func ExampleBridge() {
	srv := exampleServer()
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close() // the Bridge never closes it

	b, err := natsbridge.New(nc, natsbridge.Config{})
	if err != nil {
		panic(err)
	}
	got := make(chan string, 1)
	err = b.HandlePattern("chat.say.room.*", natsbridge.Typed(
		func(_ context.Context, env natsbridge.Envelope[chatLine], msg natsbridge.Msg) error {
			got <- msg.Key + ": " + env.Payload.Text
			return nil
		}, natsbridge.DecodeOptions{}))
	if err != nil {
		panic(err)
	}

	subject, _ := natsbridge.ChatSay("r42")
	env := natsbridge.NewEnvelope("chat.say", chatLine{Text: "hello"})
	if err := natsbridge.Publish(context.Background(), nc, subject, env); err != nil {
		panic(err)
	}
	fmt.Println(<-got)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Drain(ctx); err != nil {
		panic(err)
	}
	fmt.Println("handled:", b.Stats().Handled)
	// Output:
	// r42: hello
	// handled: 1
}

// exampleJetStreamServer is exampleServer with JetStream, storing in a temporary
// directory that stop removes.
func exampleJetStreamServer() (srv *server.Server, stop func()) {
	dir, err := os.MkdirTemp("", "natsbridge-example-")
	if err != nil {
		panic(err)
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, JetStream: true, StoreDir: dir})
	if err != nil {
		panic(err)
	}
	s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		panic("nats-server not ready")
	}
	return s, func() {
		s.Shutdown()
		s.WaitForShutdown()
		_ = os.RemoveAll(dir)
	}
}

// A message the handler cannot decode becomes a dead letter with its reason, stored by
// the dead-letter stream (it counts in Stats.DeadLettered only once the stream
// acknowledged it), and the handler keeps serving.
func ExampleBridge_deadLetter() {
	srv, stop := exampleJetStreamServer()
	defer stop()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		panic(err)
	}
	stream, err := natsbridge.EnsureDeadLetterStream(ctx, js, natsbridge.DeadLetterStreamConfig{Name: "DEADLETTERS"})
	if err != nil {
		panic(err)
	}

	b, err := natsbridge.New(nc, natsbridge.Config{})
	if err != nil {
		panic(err)
	}
	err = b.Handle("events.game_tick", natsbridge.Typed(
		func(context.Context, natsbridge.Envelope[struct{}], natsbridge.Msg) error { return nil },
		natsbridge.DecodeOptions{}))
	if err != nil {
		panic(err)
	}
	if err := nc.Publish("events.game_tick", []byte("{not json")); err != nil {
		panic(err)
	}
	for b.Stats().DeadLettered == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := b.Drain(ctx); err != nil {
		panic(err)
	}

	m, err := stream.GetMsg(ctx, 1)
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Subject)
	fmt.Println(m.Header.Get(natsbridge.HeaderDeadLetterReason), m.Header.Get(natsbridge.HeaderDeadLetterDecodeReason))
	fmt.Println(string(m.Data))
	reason := natsbridge.DeadLetterReason(m.Header.Get(natsbridge.HeaderDeadLetterReason))
	decodeReason := natsbridge.DecodeReason(m.Header.Get(natsbridge.HeaderDeadLetterDecodeReason))
	fmt.Println(reason == natsbridge.DeadLetterDecodeError, decodeReason == natsbridge.ReasonMalformed)
	st := b.Stats()
	fmt.Println("dead-lettered:", st.DeadLettered, "lost:", st.DeadLetterLost)

	// Once the cause is fixed, Replay publishes the kept dead letters to their original
	// subjects again (here nobody listens any more, so it is undelivered and kept).
	res, err := natsbridge.Replay(ctx, js, natsbridge.ReplayConfig{Stream: "DEADLETTERS", Filter: "deadletter.events.>", Delete: true})
	if err != nil {
		panic(err)
	}
	fmt.Println("replayed:", res.Replayed, "undelivered:", res.Undelivered, "deleted:", res.Deleted)
	// Output:
	// deadletter.events.game_tick
	// decode_error malformed
	// {not json
	// true true
	// dead-lettered: 1 lost: 0
	// replayed: 0 undelivered: 1 deleted: 0
}

// A durable handler for events that must survive a restart: a trade is acknowledged only
// after the handler succeeded, a Retryable error brings it back later (its room's later
// trades wait), and Msg.ID is the same on every delivery, for idempotency.
func ExampleBridge_HandleDurable() {
	srv, stop := exampleJetStreamServer()
	defer stop()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		panic(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TRADES", Subjects: []string{"trade.>"}}); err != nil {
		panic(err)
	}
	for _, item := range []string{"sword", "shield"} {
		if _, err := js.Publish(ctx, "trade.r1", []byte(item)); err != nil {
			panic(err)
		}
	}

	b, err := natsbridge.New(nc, natsbridge.Config{BackoffBase: 10 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	done := make(chan string, 2)
	busyOnce := true
	err = b.HandleDurable(ctx, natsbridge.Durable{Stream: "TRADES", Consumer: "trades"},
		func(_ context.Context, m natsbridge.Msg) error {
			if busyOnce { // the inventory database is busy the first time
				busyOnce = false
				return natsbridge.Retryable(errors.New("inventory busy"))
			}
			done <- fmt.Sprint(m.ID(), " ", string(m.Data), " delivery ", m.Attempt)
			return nil
		})
	if err != nil {
		panic(err)
	}
	fmt.Println(<-done)
	fmt.Println(<-done)
	if err := b.Drain(ctx); err != nil {
		panic(err)
	}
	// Output:
	// TRADES:1 sword delivery 2
	// TRADES:2 shield delivery 1
}
