package natsbridge_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/gamepersist/gamepersist/internal/testkit/testlog"
	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
	"github.com/gamepersist/gamepersist/natsbridge"
)

func TestConfigDefaultsAndValidation(t *testing.T) {
	t.Parallel()
	d := natsbridge.Config{}.WithDefaults()
	if d.MaxInFlight != 64 || d.QueueLen != 1024 ||
		d.MaxQueuedPerKey != 256 || d.DeadLetterPrefix != "deadletter." ||
		d.OverflowPolicy != natsbridge.OverflowDeadLetter || d.Origin == "" || d.HandlerTimeout != 10*time.Second {
		t.Fatalf("defaults = %+v", d)
	}
	if small := (natsbridge.Config{QueueLen: 10}).WithDefaults(); small.MaxQueuedPerKey != 10 {
		t.Errorf("MaxQueuedPerKey default with QueueLen 10 = %d", small.MaxQueuedPerKey)
	}
	nc := dialTest(t, testnats.Start(t).ClientURL())
	bad := map[string]natsbridge.Config{
		"negative in flight": {MaxInFlight: -1},
		"negative queue":     {QueueLen: -5},
		"per key over queue": {QueueLen: 10, MaxQueuedPerKey: 11},
		"negative timeout":   {HandlerTimeout: -time.Second},
		"max below base":     {BackoffBase: time.Second, BackoffMax: time.Millisecond},
		"jitter above one":   {BackoffJitter: 1.5},
		"unknown policy":     {OverflowPolicy: natsbridge.OverflowPolicy(9)},
		"prefix without dot": {DeadLetterPrefix: "dead"},
		"wildcard prefix":    {DeadLetterPrefix: "dead.>."},
		"nil middleware":     {Middleware: []natsbridge.Middleware{nil}},
	}
	for name, cfg := range bad {
		if _, err := natsbridge.New(nc, cfg); !errors.Is(err, natsbridge.ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := natsbridge.New(nil, natsbridge.Config{}); !errors.Is(err, natsbridge.ErrInvalidConfig) {
		t.Errorf("nil conn: err = %v", err)
	}
}

func TestHandleValidation(t *testing.T) {
	t.Parallel()
	b, _ := startBridge(t, natsbridge.Config{})
	noop := func(context.Context, natsbridge.Msg) error { return nil }
	if err := b.Handle("chat.say.*", noop); !errors.Is(err, natsbridge.ErrInvalidSubject) {
		t.Errorf("wildcard in Handle: %v", err)
	}
	if err := b.HandlePattern("chat.say.room", noop); !errors.Is(err, natsbridge.ErrInvalidSubject) {
		t.Errorf("literal in HandlePattern: %v", err)
	}
	if err := b.Handle("chat..say", noop); !errors.Is(err, natsbridge.ErrInvalidSubject) {
		t.Errorf("empty token: %v", err)
	}
	if err := b.Handle("chat.say", nil); !errors.Is(err, natsbridge.ErrInvalidConfig) {
		t.Errorf("nil handler: %v", err)
	}
	if err := b.Handle("chat.say", noop, natsbridge.Limits(natsbridge.HandlerLimits{QueueLen: 4, MaxQueuedPerKey: 8})); !errors.Is(err, natsbridge.ErrInvalidConfig) {
		t.Errorf("per-key buffer above buffer: %v", err)
	}
	if err := b.Handle("chat.say", noop); err != nil {
		t.Fatal(err)
	}
	if err := b.Handle("chat.say", noop); !errors.Is(err, natsbridge.ErrInvalidConfig) {
		t.Errorf("duplicate name: %v", err)
	}
	if err := b.Handle("chat.say", noop, natsbridge.Name("second")); err != nil {
		t.Errorf("same subject, other name: %v", err)
	}
	if err := b.HandlePattern("chat.>", noop, natsbridge.Queue("workers")); err != nil {
		t.Errorf("queue pattern: %v", err)
	}
	if n := len(b.Stats().PerHandler); n != 3 {
		t.Errorf("len(PerHandler) = %d, want 3", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Handle("chat.late", noop); !errors.Is(err, natsbridge.ErrClosed) {
		t.Errorf("Handle after Close: %v", err)
	}
}

// TestRetryWithBackoff: a Retryable error is retried with growing waits until it
// succeeds; Attempt counts up; nothing is dead-lettered.
func TestRetryWithBackoff(t *testing.T) {
	t.Parallel()
	const base = 20 * time.Millisecond
	b, nc := startBridge(t, natsbridge.Config{MaxAttempts: 4, BackoffBase: base, BackoffMax: time.Second, BackoffJitter: 0.1})
	dls := subscribeDeadLetters(t, nc)
	var (
		mu       sync.Mutex
		attempts []int
		times    []time.Time
	)
	done := make(chan struct{})
	h := func(_ context.Context, m natsbridge.Msg) error {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, m.Attempt)
		times = append(times, time.Now())
		if m.Attempt < 3 {
			return natsbridge.Retryable(errors.New("busy"))
		}
		close(done)
		return nil
	}
	if err := b.Handle("retry.r1", h); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	publishSeq(t, nc, "retry.r1", 1, nil)
	flushConn(t, nc)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("no success after retries")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) != 3 || attempts[0] != 1 || attempts[2] != 3 {
		t.Fatalf("attempts = %v", attempts)
	}
	// Waits are base·2^(n-1) ± 10 %: at least 18 ms, then at least 36 ms.
	if gap := times[1].Sub(times[0]); gap < base*9/10 {
		t.Errorf("first backoff %v shorter than %v", gap, base*9/10)
	}
	if gap := times[2].Sub(times[1]); gap < 2*base*9/10 {
		t.Errorf("second backoff %v shorter than %v", gap, 2*base*9/10)
	}
	eventually(t, "success counted", func() bool { return b.Stats().Handled == 1 })
	st := b.Stats()
	if st.Retried != 2 || st.Handled != 1 || st.Failed != 0 {
		t.Errorf("stats = %+v", st)
	}
	if m, err := dls.NextMsg(50 * time.Millisecond); err == nil {
		t.Errorf("unexpected dead letter %v", m.Header)
	}
	if !natsbridge.IsRetryable(natsbridge.Retryable(context.Canceled)) || natsbridge.IsRetryable(errors.New("x")) ||
		natsbridge.Retryable(nil) != nil || !errors.Is(natsbridge.Retryable(context.Canceled), context.Canceled) {
		t.Error("Retryable/IsRetryable marking is wrong")
	}
}

// TestHandlerDeadline: the handler's ctx carries the per-message deadline; a handler
// that runs into it is dead-lettered with reason timeout.
func TestHandlerDeadline(t *testing.T) {
	t.Parallel()
	b, nc := startBridge(t, natsbridge.Config{})
	dls := subscribeDeadLetters(t, nc)
	const timeout = 80 * time.Millisecond
	// The fast message's deadline must lie between "received + timeout" (the attempt
	// starts after the message was received) and "now + timeout" (it started before the
	// handler looked). Unlike a check of the time left, this holds however long a loaded
	// machine stalls between the attempt's start and the handler.
	type window struct{ earliest, dl, latest time.Time }
	fast := make(chan window, 1)
	h := func(ctx context.Context, m natsbridge.Msg) error {
		dl, ok := ctx.Deadline()
		if m.Key == "fast" {
			if !ok {
				dl = time.Time{}
			}
			fast <- window{m.Received.Add(timeout), dl, time.Now().Add(timeout)}
			return nil
		}
		<-ctx.Done() // a handler that honours its context
		return ctx.Err()
	}
	if err := b.HandlePattern("deadline.*", h, natsbridge.Limits(natsbridge.HandlerLimits{HandlerTimeout: timeout})); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	publishSeq(t, nc, "deadline.fast", 1, nil)
	publishSeq(t, nc, "deadline.stuck", 2, nil)
	flushConn(t, nc)
	if w := <-fast; w.dl.Before(w.earliest) || w.dl.After(w.latest) {
		t.Errorf("handler deadline %v, want within [received+%v, now+%v] = [%v, %v]",
			w.dl, timeout, timeout, w.earliest, w.latest)
	}
	m := nextDeadLetter(t, dls)
	if r := m.Header.Get(natsbridge.HeaderDeadLetterReason); r != string(natsbridge.DeadLetterTimeout) || m.Subject != "deadletter.deadline.stuck" {
		t.Errorf("dead letter %s reason %q", m.Subject, r)
	}
	if st := b.Stats(); st.Timeouts != 1 || st.Failed != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// TestDrainWaitsForInFlight: Drain returns only after every buffered and running
// message was handled.
func TestDrainWaitsForInFlight(t *testing.T) {
	t.Parallel()
	b, nc := startBridge(t, natsbridge.Config{Concurrency: 4})
	var handled atomic.Int32
	h := func(ctx context.Context, _ natsbridge.Msg) error {
		select {
		case <-time.After(30 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		handled.Add(1)
		return nil
	}
	if err := b.HandlePattern("drain.*", h); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	for i := range 24 {
		publishSeq(t, nc, "drain.k"+string(rune('a'+i%6)), i, nil)
	}
	flushConn(t, nc)
	eventually(t, "first handler call started", func() bool { return b.Stats().InFlight > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if n := handled.Load(); n != 24 {
		t.Fatalf("Drain returned with %d of 24 handled", n)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close after Drain: %v", err)
	}
	if err := b.Drain(ctx); err != nil {
		t.Errorf("second Drain: %v, want the first's outcome (nil)", err)
	}
	if !nc.IsConnected() {
		t.Error("Drain closed the caller's connection")
	}
}

// TestDrainDeadline: a Drain whose context ends while a handler is stuck cancels the
// handler's context, abandons the buffer, counts it, and says so.
func TestDrainDeadline(t *testing.T) {
	t.Parallel()
	b, nc := startBridge(t, natsbridge.Config{Concurrency: 1})
	cancelled := make(chan struct{})
	h := func(ctx context.Context, _ natsbridge.Msg) error {
		<-ctx.Done()
		if errors.Is(ctx.Err(), context.Canceled) {
			close(cancelled)
		}
		return ctx.Err()
	}
	if err := b.Handle("stuck.k", h, natsbridge.Limits(natsbridge.HandlerLimits{HandlerTimeout: time.Minute})); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	for i := range 5 {
		publishSeq(t, nc, "stuck.k", i, nil)
	}
	flushConn(t, nc)
	eventually(t, "handler running", func() bool { return b.Stats().InFlight == 1 && b.Stats().Queued == 4 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := b.Drain(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "abandoned") {
		t.Fatalf("Drain = %v, want deadline exceeded and abandoned messages", err)
	}
	select {
	case <-cancelled:
	default:
		t.Error("the stuck handler's context was not cancelled")
	}
	if st := b.Stats(); st.Abandoned < 4 || st.InFlight != 0 || st.Queued != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// TestCloseStopsNowAndKeepsConn: Close cancels running handlers, discards the buffer,
// is idempotent, and leaves the caller's connection open and usable.
func TestCloseStopsNowAndKeepsConn(t *testing.T) {
	t.Parallel()
	b, nc := startBridge(t, natsbridge.Config{Concurrency: 2})
	started := make(chan struct{}, 16)
	h := func(ctx context.Context, _ natsbridge.Msg) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	if err := b.HandlePattern("close.*", h); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	for i := range 10 {
		publishSeq(t, nc, "close.k"+string(rune('a'+i%3)), i, nil)
	}
	flushConn(t, nc)
	<-started
	<-started
	// The flush proves nats.go has read all 10 messages, not that its delivery
	// goroutine has handed them to the Bridge yet: wait for that, so that the buffer
	// Close discards is known (messages nats.go still holds are discarded by the
	// unsubscribe and never counted).
	eventually(t, "all 10 received, 2 running, 8 buffered", func() bool {
		st := b.Stats()
		return st.Received == 10 && st.InFlight == 2 && st.Queued == 8
	})
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	st := b.Stats()
	if st.InFlight != 0 || st.Queued != 0 || st.Received != 10 || st.Abandoned != 10 || st.Handled != 0 ||
		st.Failed != 0 || st.PerHandler[0].Keys != 0 || st.PerHandler[0].Queued != 0 {
		t.Errorf("stats after Close = %+v", st)
	}
	// The connection is the caller's: still open, still usable.
	if nc.IsClosed() || !nc.IsConnected() {
		t.Fatal("Close closed the caller's connection")
	}
	sub, err := nc.SubscribeSync("after.close")
	if err != nil {
		t.Fatal(err)
	}
	publishSeq(t, nc, "after.close", 1, []byte("hi"))
	if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "hi" {
		t.Fatalf("connection unusable after Close: %v", err)
	}
	if err := b.Run(context.Background()); !errors.Is(err, natsbridge.ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
}

// TestCloseWaitsForLastCallback: a message nats.go is handing to the Bridge while Close
// runs (here: held inside a slow KeyFunc, after Received counted it) has its outcome
// counted before Close returns — Close waits for nats.go's last callback, so the
// counters are final when it returns. Before that wait existed, Close returned with
// Received = Abandoned + 1.
func TestCloseWaitsForLastCallback(t *testing.T) {
	t.Parallel()
	b, nc := startBridge(t, natsbridge.Config{})
	inKey := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	key := func(m natsbridge.Msg) string {
		once.Do(func() {
			close(inKey)
			<-release
		})
		return m.Subject
	}
	if err := b.Handle("slowkey.k", func(context.Context, natsbridge.Msg) error { return nil },
		natsbridge.KeyFunc(key)); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	publishSeq(t, nc, "slowkey.k", 1, nil)
	flushConn(t, nc)
	<-inKey // the callback is running: Received is 1, the message has no outcome yet

	type result struct {
		err error
		st  natsbridge.Stats
	}
	closed := make(chan result, 1)
	go func() {
		err := b.Close()
		closed <- result{err, b.Stats()} // read at once, before anything else can move
	}()
	select {
	case r := <-closed:
		t.Fatalf("Close returned while the callback still ran: err %v, stats %+v", r.err, r.st)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	r := <-closed
	if r.err != nil {
		t.Fatalf("Close: %v", r.err)
	}
	if r.st.Received != 1 || r.st.Abandoned != 1 || r.st.Handled != 0 || r.st.Queued != 0 {
		t.Fatalf("stats when Close returned = %+v, want the one message received and abandoned", r.st)
	}
}

// TestLatencyFromPublish: envelopes published with Publish carry HeaderPublishedAt, so
// the Bridge's latency covers publish→handled, including time spent before the Bridge
// received the message. The first message holds nats.go's delivery goroutine (in the
// KeyFunc) for at least hold; the second waits behind it in nats.go, so its latency is at
// least hold when measured from the publish, though it is handled right after the Bridge
// receives it.
func TestLatencyFromPublish(t *testing.T) {
	t.Parallel()
	const hold = 100 * time.Millisecond
	b, nc := startBridge(t, natsbridge.Config{})
	release := make(chan struct{})
	var once sync.Once
	key := func(m natsbridge.Msg) string {
		once.Do(func() { <-release })
		return m.Subject
	}
	type seen struct {
		published, received time.Time
		ok                  bool
	}
	got := make(chan seen, 2)
	h := natsbridge.Typed(func(_ context.Context, _ natsbridge.Envelope[sayPayload], m natsbridge.Msg) error {
		ns, err := strconv.ParseInt(m.Header.Get(natsbridge.HeaderPublishedAt), 10, 64)
		got <- seen{time.Unix(0, ns), m.Received, err == nil}
		return nil
	}, natsbridge.DecodeOptions{})
	if err := b.Handle("latency.k", h, natsbridge.KeyFunc(key)); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	published := time.Now()
	for _, text := range []string{"first", "second"} {
		if err := natsbridge.Publish(t.Context(), nc, "latency.k", natsbridge.NewEnvelope("say", sayPayload{Text: text})); err != nil {
			t.Fatal(err)
		}
	}
	flushConn(t, nc)
	time.Sleep(hold - time.Since(published)) // at least hold after the publishes
	close(release)
	for range 2 {
		s := <-got
		if !s.ok || s.published.Before(published.Truncate(time.Microsecond)) || s.received.Before(s.published) {
			t.Fatalf("handler saw published-at %v (ok %v), received %v; publish began %v", s.published, s.ok, s.received, published)
		}
	}
	eventually(t, "both handled", func() bool { return b.Stats().Handled == 2 })
	// The median of two is the faster one: the second message, whose receive→handled
	// time is short but whose publish→handled time is at least hold.
	if st := b.Stats(); st.LatencyP50 < hold {
		t.Fatalf("LatencyP50 = %v, want ≥ %v (measured from the publish); stats %+v", st.LatencyP50, hold, st)
	}
}

// TestRunDrainsWhenContextEnds: Run blocks in the caller's goroutine and drains when its
// context is cancelled.
func TestRunDrainsWhenContextEnds(t *testing.T) {
	t.Parallel()
	b, nc := startBridge(t, natsbridge.Config{})
	var handled atomic.Int32
	if err := b.Handle("run.k", func(context.Context, natsbridge.Msg) error {
		time.Sleep(5 * time.Millisecond)
		handled.Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(ctx) }()
	flushConn(t, nc)
	for i := range 10 {
		publishSeq(t, nc, "run.k", i, nil)
	}
	flushConn(t, nc)
	eventually(t, "first message handled", func() bool { return handled.Load() > 0 })
	cancel()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if n := handled.Load(); n != 10 {
		t.Errorf("Run's drain left %d of 10 handled", n)
	}
}

// TestServerRestartMidStream: the server goes away and comes back on the same port; the
// caller's connection reconnects and the Bridge's handlers resume.
func TestServerRestartMidStream(t *testing.T) {
	t.Parallel()
	srv := testnats.StartRestartable(t)
	nc := dialTest(t, srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	b, err := natsbridge.New(nc, natsbridge.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	var handled atomic.Int32
	if err := b.HandlePattern("tick.*", func(context.Context, natsbridge.Msg) error {
		handled.Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	for i := range 50 {
		publishSeq(t, nc, "tick.r1", i, nil)
	}
	flushConn(t, nc)
	eventually(t, "messages before the restart", func() bool { return handled.Load() == 50 })

	srv.Restart()
	// A flush in flight while nats.go notices the disconnect fails; wait for the
	// reconnect to the new server first.
	eventually(t, "reconnect", func() bool {
		return nc.Stats().Reconnects > 0 && nc.IsConnected() && nc.ConnectedServerId() == srv.Server().ID()
	})
	flushConn(t, nc) // the resubscription has reached the new server
	for i := range 50 {
		publishSeq(t, nc, "tick.r2", i, nil)
	}
	flushConn(t, nc)
	eventually(t, "messages after the restart", func() bool { return handled.Load() == 100 })
	eventually(t, "handled counted", func() bool { return b.Stats().Handled == 100 })
	if st := b.Stats(); st.Received != 100 || st.Handled != 100 {
		t.Errorf("stats = %+v", st)
	}
}

// TestSlowConsumerCounted: nats.go's own pending limit, set from Config, drops messages
// under a burst; the drops appear in Stats.SlowConsumer rather than vanishing.
func TestSlowConsumerCounted(t *testing.T) {
	t.Parallel()
	url := testnats.Start(t).ClientURL()
	nc := dialTest(t, url, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	pub := dialTest(t, url)
	b, err := natsbridge.New(nc, natsbridge.Config{SubPendingMsgs: 1, QueueLen: 100000, MaxQueuedPerKey: 100000})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	if err := b.Handle("burst.k", func(context.Context, natsbridge.Msg) error { return nil }); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	const n = 20000
	for i := range n {
		publishSeq(t, pub, "burst.k", i, nil)
	}
	flushConn(t, pub)
	eventually(t, "burst accounted for", func() bool {
		st := b.Stats()
		return st.Received+st.SlowConsumer == n
	})
	if st := b.Stats(); st.SlowConsumer == 0 {
		t.Errorf("no slow-consumer drops with a pending limit of 1: %+v", st)
	}
}

func TestChainOrder(t *testing.T) {
	t.Parallel()
	var trace []string
	mw := func(name string) natsbridge.Middleware {
		return func(next natsbridge.Handler) natsbridge.Handler {
			return func(ctx context.Context, m natsbridge.Msg) error {
				trace = append(trace, name)
				return next(ctx, m)
			}
		}
	}
	h := natsbridge.Chain(func(context.Context, natsbridge.Msg) error {
		trace = append(trace, "handler")
		return nil
	}, mw("a"), nil, mw("b"))
	if err := h(context.Background(), natsbridge.Msg{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(trace, ","); got != "a,b,handler" {
		t.Fatalf("order = %s", got)
	}
}

// TestMiddlewareAppliedOnBridge: Config.Middleware wraps Use's middleware, which wraps
// the handler.
func TestMiddlewareAppliedOnBridge(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	tag := func(name string) natsbridge.Middleware {
		return func(next natsbridge.Handler) natsbridge.Handler {
			return func(ctx context.Context, m natsbridge.Msg) error {
				if m.Header == nil {
					m.Header = nats.Header{}
				}
				m.Header.Add("trace", name)
				return next(ctx, m)
			}
		}
	}
	b, nc := startBridge(t, natsbridge.Config{Middleware: []natsbridge.Middleware{tag("global")}})
	if err := b.Handle("mw.k", func(_ context.Context, m natsbridge.Msg) error {
		got <- strings.Join(m.Header.Values("trace"), ",")
		return nil
	}, natsbridge.Use(tag("local"))); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	if err := nc.Publish("mw.k", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "global,local" {
			t.Fatalf("middleware order %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler not called")
	}
}

// TestDrainLosesNothingUnderBurst: Drain right after a burst: every message the server
// had routed to the Bridge is handled before Drain returns, none is abandoned.
func TestDrainLosesNothingUnderBurst(t *testing.T) {
	t.Parallel()
	url := testnats.Start(t).ClientURL()
	nc := dialTest(t, url)
	pub := dialTest(t, url)
	b, err := natsbridge.New(nc, natsbridge.Config{QueueLen: 8192, MaxQueuedPerKey: 1024})
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	if err := b.HandlePattern("burst.*", func(context.Context, natsbridge.Msg) error {
		handled.Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	const n = 5000
	for i := range n {
		publishSeq(t, pub, "burst.k"+strconv.Itoa(i%16), i, nil)
	}
	flushConn(t, pub)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	st := b.Stats()
	if st.Received != n || st.Handled != n || handled.Load() != n || st.Abandoned != 0 || st.Queued != 0 {
		t.Fatalf("after Drain: handled %d, stats %+v", handled.Load(), st)
	}
}

// TestCloseLeavesNoGoroutine (not parallel, so no other test's goroutines come and go):
// with the server and the caller's connection up, everything the Bridge started — its
// workers, its dead-letter publisher, nats.go's per-subscription goroutines — is gone
// once Close returns, even with handlers blocked and messages buffered.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	nc := dialTest(t, testnats.Start(t).ClientURL())
	flushConn(t, nc)
	baseline := goleak.IgnoreCurrent()

	b, err := natsbridge.New(nc, natsbridge.Config{})
	if err != nil {
		t.Fatal(err)
	}
	block := func(ctx context.Context, _ natsbridge.Msg) error { <-ctx.Done(); return ctx.Err() }
	if err := b.HandlePattern("leak.*", block, natsbridge.Limits(natsbridge.HandlerLimits{Concurrency: 3})); err != nil {
		t.Fatal(err)
	}
	if err := b.Handle("leak.retry", func(context.Context, natsbridge.Msg) error {
		return natsbridge.Retryable(errors.New("again"))
	}, natsbridge.Name("retry")); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	for i := range 20 {
		publishSeq(t, nc, "leak.k"+strconv.Itoa(i%5), i, nil)
	}
	publishSeq(t, nc, "leak.retry", 0, nil)
	flushConn(t, nc)
	eventually(t, "handlers running", func() bool { return b.Stats().InFlight >= 3 })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, baseline)
	if !nc.IsConnected() {
		t.Fatal("Close closed the caller's connection")
	}
}

// TestShutdownAfterCallerClosedConn: the caller may close its connection first; Drain
// and Close still return promptly and stop everything.
func TestShutdownAfterCallerClosedConn(t *testing.T) {
	t.Parallel()
	for _, drain := range []bool{true, false} {
		b, nc := startBridge(t, natsbridge.Config{})
		if err := b.HandlePattern("gone.*", func(context.Context, natsbridge.Msg) error { return nil }); err != nil {
			t.Fatal(err)
		}
		flushConn(t, nc)
		publishSeq(t, nc, "gone.k", 1, nil)
		flushConn(t, nc)
		eventually(t, "message handled", func() bool { return b.Stats().Handled == 1 })
		nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var err error
		if drain {
			err = b.Drain(ctx)
		} else {
			err = b.Close()
		}
		cancel()
		// Drain reports that it could not drain the subscription; Close has nothing to say.
		if err != nil && (!drain || !errors.Is(err, nats.ErrConnectionClosed)) {
			t.Fatalf("drain=%v: shutdown on a closed connection: %v", drain, err)
		}
		if again := b.Close(); again != err { //nolint:errorlint // the very same error value
			t.Fatalf("Close after shutdown = %v, want the first shutdown's %v", again, err)
		}
	}
}

// TestConfigLimits: every count, buffer, concurrency limit and duration has a maximum,
// and a value past it (or a NaN/Inf fraction) is a *ConfigError naming the field, which
// also matches ErrInvalidConfig. A huge but valid Concurrency costs nothing
// up front: workers start lazily.
func TestConfigLimits(t *testing.T) {
	t.Parallel()
	nc := dialTest(t, testnats.Start(t).ClientURL())
	over := map[string]natsbridge.Config{
		"Config.MaxInFlight":        {MaxInFlight: 1<<16 + 1},
		"Config.Concurrency":        {Concurrency: 200_000},
		"Config.QueueLen":           {QueueLen: 1<<20 + 1},
		"Config.MaxQueuedPerKey":    {QueueLen: 10, MaxQueuedPerKey: 11},
		"Config.HandlerTimeout":     {HandlerTimeout: 25 * time.Hour},
		"Config.MaxAttempts":        {MaxAttempts: 101},
		"Config.BackoffMax":         {BackoffMax: 2 * time.Hour},
		"Config.BackoffJitter":      {BackoffJitter: math.NaN()},
		"Config.DeadLetterQueueLen": {DeadLetterQueueLen: 1<<20 + 1},
		"Config.DeadLetterTimeout":  {DeadLetterTimeout: 3 * time.Minute},
		"Config.SubPendingMsgs":     {SubPendingMsgs: 1<<24 + 1},
		"Config.DrainTimeout":       {DrainTimeout: -time.Second},
	}
	for field, cfg := range over {
		_, err := natsbridge.New(nc, cfg)
		var le *natsbridge.ConfigError
		if !errors.As(err, &le) || le.Field != field || !errors.Is(err, natsbridge.ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want a *ConfigError for it", field, err)
		}
	}
	for _, j := range []float64{math.Inf(1), math.Inf(-1), 0.0000001 - 1} {
		if _, err := natsbridge.New(nc, natsbridge.Config{BackoffJitter: j}); !errors.Is(err, natsbridge.ErrInvalidConfig) {
			t.Errorf("jitter %v accepted", j)
		}
	}

	b, err := natsbridge.New(nc, natsbridge.Config{Concurrency: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	noop := func(context.Context, natsbridge.Msg) error { return nil }
	var le *natsbridge.ConfigError
	if err := b.Handle("limits.x", noop, natsbridge.Limits(natsbridge.HandlerLimits{Concurrency: 5000})); !errors.As(err, &le) || le.Field != "HandlerLimits.Concurrency" {
		t.Errorf("Concurrency(5000): %v", err)
	}
	if err := b.Handle("limits.x", noop, natsbridge.Limits(natsbridge.HandlerLimits{MaxAttempts: -1})); !errors.As(err, &le) || le.Field != "HandlerLimits.MaxAttempts" {
		t.Errorf("Attempts(-1): %v", err)
	}
	before := runtime.NumGoroutine()
	if err := b.Handle("limits.lazy", noop); err != nil {
		t.Fatal(err)
	}
	// Other tests run in parallel: allow their goroutines, not 4,096 workers.
	if grew := runtime.NumGoroutine() - before; grew > 500 {
		t.Fatalf("Handle with a 4,096-worker bound started %d goroutines", grew)
	}
	if st := b.Stats().PerHandler[0]; st.Workers != 4096 || st.Started != 0 {
		t.Fatalf("handler stats before any message: %+v", st)
	}
	for i := range 20 {
		publishSeq(t, nc, "limits.lazy", i, nil)
	}
	flushConn(t, nc)
	eventually(t, "messages handled", func() bool { return b.Stats().Handled == 20 })
	if st := b.Stats().PerHandler[0]; st.Started < 1 || st.Started > 20 {
		t.Fatalf("workers started for 20 messages of one key: %d", st.Started)
	}
}

// TestFailureLogNamesAnEmptyError: a handler error with an empty message is logged by
// its type, never as "error":"".
func TestFailureLogNamesAnEmptyError(t *testing.T) {
	t.Parallel()
	nc := dialTest(t, testnats.Start(t).ClientURL())
	ensureDeadLetterStream(t, nc)
	logs := &testlog.Buffer{}
	b, err := natsbridge.New(nc, natsbridge.Config{Logger: logs.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Handle("trade.empty", func(context.Context, natsbridge.Msg) error { return errors.New("") }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("trade.empty", []byte("x")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "message failed", func() bool { return b.Stats().Failed == 1 })
	found := false
	for _, m := range logs.Lines(t) {
		if e, ok := m["error"]; ok && e == "" {
			t.Errorf("log line with an empty error: %v", m)
		}
		if m["message"] == "natsbridge: message failed, dead-lettering" {
			found = m["error"] == "*errors.errorString with an empty message"
		}
	}
	if !found {
		t.Errorf("no failure line naming the empty error:\n%s", logs.String())
	}
}
