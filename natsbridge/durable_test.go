package natsbridge_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
	"github.com/gamepersist/gamepersist/natsbridge"
)

// durableRecorder records, per Bridge run and per key, the sequences a durable handler
// handled successfully.
type durableRecorder struct {
	mu      sync.Mutex
	runs    []map[string][]int
	handled map[int]int // seq → successes over all runs
	ids     map[string]bool
	redeliv map[int]bool // seqs handled on a delivery after the first
}

func newDurableRecorder() *durableRecorder {
	return &durableRecorder{handled: map[int]int{}, ids: map[string]bool{}, redeliv: map[int]bool{}}
}

func (d *durableRecorder) newRun() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.runs = append(d.runs, map[string][]int{})
	return len(d.runs) - 1
}

func (d *durableRecorder) record(run int, key string, seq int, id string, attempt int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if attempt > 1 {
		d.redeliv[seq] = true
	}
	d.runs[run][key] = append(d.runs[run][key], seq)
	d.handled[seq]++
	d.ids[id] = true
}

func (d *durableRecorder) distinct() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.handled)
}

// durableStream creates the stream "TRADES" on trade.> (file storage).
func durableStream(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TRADES", Subjects: []string{"trade.>"}}); err != nil {
		t.Fatal(err)
	}
	return js
}

// publishTrades publishes n trades on keys "trade.k0".."trade.k<keys-1>", payload the
// sequence number, each acknowledged by the stream.
func publishTrades(t *testing.T, js jetstream.JetStream, n, keys int) {
	t.Helper()
	for i := range n {
		if _, err := js.PublishAsync("trade.k"+strconv.Itoa(i%keys), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("trades not acknowledged")
	}
}

// TestDurableHandlerSurvivesRestart stops the consuming Bridge mid-stream, then starts
// another Bridge on the same durable consumer: every message is handled, none lost, and
// every key keeps its order within each run and across the restart (0 out of order).
//   - "drain": Drain stops it; nothing is handled twice.
//   - "closed": Close stops it; its buffered messages go back to the server (nak).
//   - "killed": its connection is killed, then it is closed; the messages it had not
//     acknowledged come back after AckWait, and the second Bridge handles them before
//     anything newer. The duplicates are messages whose ack the first Bridge had not had
//     confirmed: handled after the kill, or in flight when it came.
//
// In "closed" and "killed", every 97th message fails once with a Retryable error (nak
// with backoff, its key held until it comes back).
func TestDurableHandlerSurvivesRestart(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"drain", "closed", "killed"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testDurableRestart(t, mode)
		})
	}
}

func testDurableRestart(t *testing.T, mode string) {
	const total, keys = 3000, 20
	url := testnats.Start(t).ClientURL()
	setup := dialTest(t, url)
	ensureDeadLetterStream(t, setup)
	js := durableStream(t, setup)
	publishTrades(t, js, total, keys)

	rec := newDurableRecorder()
	var failedOnce sync.Map
	start := func(run int) (*natsbridge.Bridge, *nats.Conn) {
		nc := faultConn(t, url)
		b, err := natsbridge.New(nc, natsbridge.Config{BackoffBase: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		h := func(_ context.Context, m natsbridge.Msg) error {
			seq, err := strconv.Atoi(string(m.Data))
			if err != nil {
				return err
			}
			if mode != "drain" && seq%97 == 0 {
				if _, loaded := failedOnce.LoadOrStore(seq, true); !loaded {
					return natsbridge.Retryable(errors.New("inventory busy"))
				}
			}
			time.Sleep(50 * time.Microsecond)
			rec.record(run, m.Key, seq, m.ID(), m.Attempt)
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = b.HandleDurable(ctx, natsbridge.Durable{Stream: "TRADES", Consumer: "trades", AckWait: 2 * time.Second},
			h, natsbridge.Limits(natsbridge.HandlerLimits{Concurrency: 8, HandlerTimeout: time.Second, QueueLen: 256, MaxQueuedPerKey: 256}))
		if err != nil {
			t.Fatal(err)
		}
		return b, nc
	}

	b1, nc1 := start(rec.newRun())
	eventually(t, "a third handled", func() bool { return rec.distinct() >= total/3 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var beforeKill int
	switch mode {
	case "drain":
		if err := b1.Drain(ctx); err != nil {
			t.Fatal(err)
		}
	case "closed":
		if err := b1.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		rec.mu.Lock()
		beforeKill = len(flatten(rec.runs[0]))
		rec.mu.Unlock()
		nc1.Close() // killed: nothing more is acknowledged
		if err := b1.Close(); err != nil {
			t.Fatal(err)
		}
	}
	b2, _ := start(rec.newRun())
	deadline := time.Now().Add(60 * time.Second)
	for rec.distinct() < total {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages handled; second Bridge %+v", rec.distinct(), total, b2.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b2.Drain(ctx); err != nil {
		t.Fatal(err)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	dups := 0
	for seq := range total {
		n := rec.handled[seq]
		if n == 0 {
			t.Fatalf("message %d lost", seq)
		}
		dups += n - 1
	}
	outOfOrder := 0
	for k := range keys {
		key := "k" + strconv.Itoa(k)
		for run, byKey := range rec.runs {
			seqs := byKey[key]
			for i := 1; i < len(seqs); i++ {
				if seqs[i] <= seqs[i-1] {
					outOfOrder++
					t.Errorf("run %d key %s out of order at %d: %d after %d", run, key, i, seqs[i], seqs[i-1])
				}
			}
		}
		// Across the restart, a message the second run handles for the first time comes
		// after everything the first run handled of that key.
		first, second := rec.runs[0][key], rec.runs[1][key]
		seen := map[int]bool{}
		for _, s := range first {
			seen[s] = true
		}
		if len(first) > 0 {
			last := first[len(first)-1]
			for _, s := range second {
				if s < last && !seen[s] {
					outOfOrder++
					t.Errorf("key %s: %d first handled after %d, handled before the restart (first run %v, second %v)", key, s, last, first, second)
				}
			}
		}
	}
	handled0 := len(flatten(rec.runs[0]))
	// Duplicates only where the first Bridge had no confirmed ack: handled after the
	// kill, or in flight (at most Concurrency) when it came.
	if maxDups := handled0 - beforeKill + 8; mode != "killed" && dups != 0 || mode == "killed" && dups > maxDups {
		t.Errorf("%s: %d duplicates; first run handled %d, %d of them after the kill", mode, dups, handled0, handled0-beforeKill)
	}
	if len(rec.ids) != total {
		t.Fatalf("Msg.ID gave %d distinct ids for %d messages", len(rec.ids), total)
	}
	s2 := b2.Stats()
	t.Logf("%s: first run handled %d, second run %d; duplicates %d; out of order %d; second Bridge: %d retried, %d failed",
		mode, handled0, len(flatten(rec.runs[1])), dups, outOfOrder, s2.Retried, s2.Failed)
	if s2.Failed != 0 {
		t.Fatalf("second Bridge failed %d messages", s2.Failed)
	}
}

func flatten(m map[string][]int) []int {
	var out []int
	for _, v := range m {
		out = append(out, v...)
	}
	return out
}

// TestDurablePoisonIsTerminatedAndDeadLettered: a message that keeps failing with a
// Retryable error gets MaxDeliver deliveries, is dead-lettered (stored) and terminated;
// its key's later messages are handled after it, in order.
func TestDurablePoisonIsTerminatedAndDeadLettered(t *testing.T) {
	t.Parallel()
	nc := dialTest(t, testnats.Start(t).ClientURL())
	dl := ensureDeadLetterStream(t, nc)
	js := durableStream(t, nc)
	b, err := natsbridge.New(nc, natsbridge.Config{BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	var mu sync.Mutex
	var order []string
	attempts := 0
	h := func(_ context.Context, m natsbridge.Msg) error {
		mu.Lock()
		defer mu.Unlock()
		if string(m.Data) == "poison" {
			attempts++
			return natsbridge.Retryable(errors.New("never works"))
		}
		order = append(order, string(m.Data))
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.HandleDurable(ctx, natsbridge.Durable{Stream: "TRADES", Consumer: "poison", MaxDeliver: 3}, h); err != nil {
		t.Fatal(err)
	}
	for _, data := range []string{"a", "poison", "b", "c"} {
		if _, err := js.Publish(ctx, "trade.k1", []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "later messages handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == 3
	})
	mu.Lock()
	if attempts != 3 || order[0] != "a" || order[1] != "b" || order[2] != "c" {
		t.Fatalf("attempts %d, order %v; want 3 deliveries and a, b, c", attempts, order)
	}
	mu.Unlock()
	// Handled counts once the ack is confirmed, just after the handler returned.
	eventually(t, "dead letter stored", func() bool { st := b.Stats(); return st.DeadLettered == 1 && st.Handled == 3 })
	if st := b.Stats(); st.Received != 4 || st.Handled != 3 || st.Failed != 1 || st.Retried != 2 ||
		st.Received != st.Handled+st.Failed+st.Overflowed+st.Abandoned {
		t.Fatalf("stats %+v: want 4 received = 3 handled + 1 failed, 2 retries", st)
	}
	m, err := dl.GetMsg(ctx, 1)
	if err != nil || string(m.Data) != "poison" || m.Header.Get(natsbridge.HeaderDeadLetterAttempts) != "3" {
		t.Fatalf("dead letter %v, %v", m, err)
	}
	cons, err := js.Consumer(ctx, "TRADES", "poison")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "poison terminated", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumRedelivered == 0 && info.AckFloor.Stream == 4
	})
	if err := b.HandleDurable(ctx, natsbridge.Durable{Stream: "TRADES", Consumer: "x"}, h, natsbridge.Queue("g")); !errors.Is(err, natsbridge.ErrInvalidConfig) {
		t.Errorf("Queue with HandleDurable: %v", err)
	}
	if err := b.HandleDurable(ctx, natsbridge.Durable{Stream: "TRADES", Consumer: "y", AckWait: time.Second}, h); !errors.Is(err, natsbridge.ErrInvalidConfig) {
		t.Errorf("AckWait below the handler timeout: %v", err)
	}
}

// TestDurableSharedConsumerNeverStallsAKey: two Bridges share one durable consumer, so
// a nak'ed message may come back to the other one; the key that waited for it goes on
// (after the nak's delay plus AckWait) and every message is handled.
func TestDurableSharedConsumerNeverStallsAKey(t *testing.T) {
	t.Parallel()
	const total, keys = 400, 5
	url := testnats.Start(t).ClientURL()
	setup := dialTest(t, url)
	ensureDeadLetterStream(t, setup)
	js := durableStream(t, setup)
	publishTrades(t, js, total, keys)
	rec := newDurableRecorder()
	var failedOnce sync.Map
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var bridges []*natsbridge.Bridge
	for run := range 2 {
		rec.newRun()
		b, err := natsbridge.New(dialTest(t, url), natsbridge.Config{BackoffBase: 5 * time.Millisecond, BackoffMax: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		bridges = append(bridges, b)
		h := func(_ context.Context, m natsbridge.Msg) error {
			seq, err := strconv.Atoi(string(m.Data))
			if err != nil {
				return err
			}
			if seq%20 == 0 {
				if _, loaded := failedOnce.LoadOrStore(seq, true); !loaded {
					return natsbridge.Retryable(errors.New("busy"))
				}
			}
			rec.record(run, m.Key, seq, m.ID(), m.Attempt)
			return nil
		}
		err = b.HandleDurable(ctx, natsbridge.Durable{Stream: "TRADES", Consumer: "shared", AckWait: 500 * time.Millisecond},
			h, natsbridge.Limits(natsbridge.HandlerLimits{HandlerTimeout: 100 * time.Millisecond}))
		if err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(25 * time.Second)
	for rec.distinct() < total {
		if time.Now().After(deadline) {
			rec.mu.Lock()
			for i := range total {
				if rec.handled[i] == 0 {
					t.Logf("missing %d", i)
				}
			}
			rec.mu.Unlock()
			for _, b := range bridges {
				t.Logf("%+v", b.Stats())
			}
			t.Fatalf("%d of %d handled: a key stalled", rec.distinct(), total)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A message waiting in a Bridge's buffer gets progress notices: its delivery
	// count grows only with handler attempts, so the one failure each 20th message has
	// never reaches MaxDeliver.
	for i, b := range bridges {
		if st := b.Stats(); st.Failed != 0 {
			t.Errorf("Bridge %d failed %d messages", i, st.Failed)
		}
	}
}
