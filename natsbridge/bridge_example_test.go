package natsbridge_test

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

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

// A message the handler cannot decode goes to the dead-letter subject with its reason,
// and the handler keeps serving.
func ExampleBridge_deadLetter() {
	srv := exampleServer()
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	dead, err := nc.SubscribeSync("deadletter." + ">")
	if err != nil {
		panic(err)
	}

	b, err := natsbridge.New(nc, natsbridge.Config{})
	if err != nil {
		panic(err)
	}
	defer func() { _ = b.Close() }()
	err = b.Handle("events.game_tick", natsbridge.Typed(
		func(context.Context, natsbridge.Envelope[struct{}], natsbridge.Msg) error { return nil },
		natsbridge.DecodeOptions{}))
	if err != nil {
		panic(err)
	}
	if err := nc.Publish("events.game_tick", []byte("{not json")); err != nil {
		panic(err)
	}

	m, err := dead.NextMsg(5 * time.Second)
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Subject)
	fmt.Println(m.Header.Get(natsbridge.HeaderDeadLetterReason), m.Header.Get(natsbridge.HeaderDeadLetterDecodeReason))
	fmt.Println(string(m.Data))
	// Output:
	// deadletter.events.game_tick
	// decode_error malformed
	// {not json
}
