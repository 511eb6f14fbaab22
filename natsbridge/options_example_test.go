package natsbridge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gamepersist/gamepersist/natsbridge"
)

// One registration with its own limits, ordering key, queue group and middleware: the
// HandlerLimits fields have the names of the Config fields they override.
func ExampleLimits() {
	srv := exampleServer()
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	b, err := natsbridge.New(nc, natsbridge.Config{Concurrency: 8, MaxAttempts: 3, BackoffBase: time.Millisecond})
	if err != nil {
		panic(err)
	}

	var retries natsbridge.Middleware = func(next natsbridge.Handler) natsbridge.Handler {
		return func(ctx context.Context, msg natsbridge.Msg) error {
			err := next(ctx, msg)
			if natsbridge.IsRetryable(err) {
				fmt.Println("retrying", msg.Key, "after attempt", msg.Attempt)
			}
			return err
		}
	}
	done := make(chan struct{})
	var trade natsbridge.Handler = func(_ context.Context, msg natsbridge.Msg) error {
		if msg.Attempt == 1 {
			return natsbridge.Retryable(errors.New("inventory busy"))
		}
		fmt.Println("traded", msg.Key, "on attempt", msg.Attempt)
		close(done)
		return nil
	}
	opts := []natsbridge.HandlerOption{
		natsbridge.Name("trades"),
		natsbridge.Queue("traders"), // one process of the group gets each trade
		natsbridge.KeyFunc(func(m natsbridge.Msg) string { return natsbridge.LastToken(m.Subject) }),
		natsbridge.Limits(natsbridge.HandlerLimits{Concurrency: 1, MaxAttempts: 5, HandlerTimeout: time.Second}),
		natsbridge.Use(retries),
	}
	// Chain composes middleware the same way outside a Bridge (a test of the handler).
	if err := b.Handle("trade.player.p7", natsbridge.Chain(trade), opts...); err != nil {
		panic(err)
	}
	if err := nc.Publish("trade.player.p7", []byte(`{}`)); err != nil {
		panic(err)
	}
	<-done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Drain(ctx); err != nil {
		panic(err)
	}
	h := b.Stats().PerHandler[0] // a natsbridge.HandlerStats
	fmt.Println(h.Name, h.Queue, "workers started:", h.Started)
	// Output:
	// retrying p7 after attempt 1
	// traded p7 on attempt 2
	// trades traders workers started: 1
}

// Subjects built from user input are checked token by token; a wildcard must be asked
// for with Pattern.
func ExampleValidateSubject() {
	fmt.Println(natsbridge.ValidateSubject("chat.say.room.7") == nil)
	fmt.Println(errors.Is(natsbridge.ValidateSubject("chat.say.room.*"), natsbridge.ErrInvalidSubject))
	fmt.Println(natsbridge.ValidatePattern("chat.say.room.*") == nil)
	fmt.Println(errors.Is(natsbridge.ValidateToken("room.7"), natsbridge.ErrInvalidSubject))
	data, err := natsbridge.Encode(natsbridge.NewEnvelope("chat.line", chatLine{Text: "hi"}))
	fmt.Println(err == nil && len(data) > 0)
	// Output:
	// true
	// true
	// true
	// true
	// true
}

// A ConnectConfig is checked without dialling, and printing it (String, GoString) never
// shows a secret.
func ExampleConnectConfig_Validate() {
	cfg := natsbridge.ConnectConfig{URLs: []string{"nats://game:s3cr3t-pw@127.0.0.1:4222"}, Password: "s3cr3t-pw"}
	fmt.Println(cfg.Validate() != nil) // a password in the URL and in Password conflict
	cfg.Password = ""
	fmt.Println(cfg.Validate() == nil)
	fmt.Println(strings.Contains(fmt.Sprintf("%v %#v", cfg, cfg), "s3cr3t"))
	// Output:
	// true
	// true
	// false
}
