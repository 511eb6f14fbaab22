package natsbridge_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/internal/testkit/testlog"
	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
	"github.com/gamepersist/gamepersist/natsbridge"
)

// TestDrainSaysWhatItGaveBack: a durable key whose first message failed with a Retryable
// error (nak'ed with a backoff, its four later messages waiting behind it) when the Bridge
// drains: Drain returns an error wrapping ErrUnhandled and the handler's error instead of
// nil, a warn line names the failure, and the next Bridge on the consumer handles all
// five, in order.
func TestDrainSaysWhatItGaveBack(t *testing.T) {
	t.Parallel()
	url := testnats.Start(t).ClientURL()
	nc := dialTest(t, url)
	js := durableStream(t, nc)
	publishTrades(t, js, 5, 1)
	busy := errors.New("inventory database closed")
	durable := natsbridge.Durable{Stream: "TRADES", Consumer: "trades"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var logs testlog.Buffer
	b1, err := natsbridge.New(nc, natsbridge.Config{Logger: logs.Logger(), BackoffBase: time.Second, BackoffMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b1.Close() })
	if err := b1.HandleDurable(ctx, durable, func(context.Context, natsbridge.Msg) error {
		return natsbridge.Retryable(busy)
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first message nak'ed and the rest queued behind it", func() bool {
		st := b1.Stats()
		return st.Retried >= 1 && st.Received == 5 && st.Queued == 4
	})
	err = b1.Drain(ctx)
	if !errors.Is(err, natsbridge.ErrUnhandled) || !errors.Is(err, busy) {
		t.Fatalf("Drain = %v; want an error wrapping ErrUnhandled and the handler's error", err)
	}
	if !strings.Contains(logs.String(), `"level":"warn"`) || !strings.Contains(logs.String(), busy.Error()) {
		t.Fatalf("no warn line names the failure: %s", logs.String())
	}

	var (
		mu   sync.Mutex
		seqs []int
	)
	begin := time.Now()
	b2, err := natsbridge.New(nc, natsbridge.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b2.Close() })
	if err := b2.HandleDurable(ctx, durable, func(_ context.Context, m natsbridge.Msg) error {
		seq, err := strconv.Atoi(string(m.Data))
		mu.Lock()
		seqs = append(seqs, seq)
		mu.Unlock()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the next Bridge to handle all five", func() bool { return b2.Stats().Handled == 5 })
	t.Logf("the next Bridge handled all five in %v", time.Since(begin).Round(time.Millisecond))
	if err := b2.Drain(ctx); err != nil {
		t.Fatalf("second Drain: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, s := range seqs {
		if s != i {
			t.Fatalf("handled %v, want 0..4 in order", seqs)
		}
	}
}

// TestCloseGivesBackTheMessageInFlight: Close cancels a durable handler's running attempt;
// the message goes back to the server at once, so the next Bridge on the consumer handles
// it without waiting for AckWait (30 s by default; eventually gives up after 10 s).
func TestCloseGivesBackTheMessageInFlight(t *testing.T) {
	t.Parallel()
	url := testnats.Start(t).ClientURL()
	nc := dialTest(t, url)
	js := durableStream(t, nc)
	publishTrades(t, js, 1, 1)
	// AckWait 3 s, not the default 30 s: a delivery that races Close (a pull answered while
	// b1 stops) is still covered by the server's redelivery within the wait below; seen
	// once in CI under load. The message in flight itself is nak'ed at once.
	durable := natsbridge.Durable{Stream: "TRADES", Consumer: "trades", AckWait: 3 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	b1, err := natsbridge.New(nc, natsbridge.Config{HandlerTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b1.Close() })
	if err := b1.HandleDurable(ctx, durable, func(ctx context.Context, _ natsbridge.Msg) error {
		<-ctx.Done() // a long call, cancelled by Close
		return ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the message in flight", func() bool { return b1.Stats().InFlight == 1 })
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}

	b2, err := natsbridge.New(nc, natsbridge.Config{HandlerTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b2.Close() })
	begin := time.Now()
	if err := b2.HandleDurable(ctx, durable, func(context.Context, natsbridge.Msg) error { return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the next Bridge to handle the message", func() bool { return b2.Stats().Handled == 1 })
	t.Logf("the next Bridge handled it in %v", time.Since(begin).Round(time.Millisecond))
	if err := b2.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}
