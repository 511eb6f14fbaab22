package natsbridge_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/natsbridge"
)

// TestPerKeyOrderUnderParallelLoad publishes 20 keys × 200 sequenced messages and has
// the handler sleep a random 0–300 µs: any reordering or concurrent call within a key
// fails the test, while keys must overlap (more than one call at a time overall).
func TestPerKeyOrderUnderParallelLoad(t *testing.T) {
	t.Parallel()
	const keys, perKey = 20, 200
	b, nc := startBridge(t, natsbridge.Config{Concurrency: 8, QueueLen: keys * perKey, MaxQueuedPerKey: perKey})

	var (
		mu         sync.Mutex
		last       = map[string]int{}
		busy       = map[string]bool{}
		violations []string
		running    atomic.Int32
		maxRunning atomic.Int32
		done       atomic.Int32
	)
	h := func(_ context.Context, m natsbridge.Msg) error {
		seq, err := strconv.Atoi(m.Header.Get("seq"))
		if err != nil {
			return err
		}
		room := natsbridge.LastToken(m.Subject) // the key, computed independently of the Bridge
		mu.Lock()
		if busy[room] {
			violations = append(violations, "concurrent call for key "+room)
		}
		busy[room] = true
		if prev, ok := last[room]; ok && seq != prev+1 {
			violations = append(violations, "key "+room+": "+strconv.Itoa(prev)+" then "+strconv.Itoa(seq))
		}
		last[room] = seq
		mu.Unlock()

		n := running.Add(1)
		for {
			cur := maxRunning.Load()
			if n <= cur || maxRunning.CompareAndSwap(cur, n) {
				break
			}
		}
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		running.Add(-1)

		mu.Lock()
		busy[room] = false
		mu.Unlock()
		done.Add(1)
		return nil
	}
	if err := b.HandlePattern("order.*", h); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	for seq := range perKey {
		for k := range keys {
			publishSeq(t, nc, "order.k"+strconv.Itoa(k), seq, nil)
		}
	}
	flushConn(t, nc)
	eventually(t, "all messages handled", func() bool { return done.Load() == keys*perKey })

	mu.Lock()
	defer mu.Unlock()
	if len(violations) > 0 {
		t.Fatalf("%d order violations, first: %s", len(violations), violations[0])
	}
	for k := range keys {
		if got := last["k"+strconv.Itoa(k)]; got != perKey-1 {
			t.Errorf("key k%d ended at %d, want %d", k, got, perKey-1)
		}
	}
	if maxRunning.Load() < 2 {
		t.Errorf("keys never ran in parallel (max %d concurrent calls)", maxRunning.Load())
	}
	eventually(t, "handled counted", func() bool { return b.Stats().Handled == keys*perKey })
	st := b.Stats()
	if st.Handled != keys*perKey || st.Overflowed != 0 || st.Received != keys*perKey {
		t.Errorf("stats = %+v", st)
	}
}

// TestSlowKeyDoesNotBlockOtherKeys blocks the handler on one key: the other keys keep
// flowing, the buffer never exceeds its bound, and the slow key's excess overflows per
// the policy — dead-lettered with reason overflow, or dropped and counted.
func TestSlowKeyDoesNotBlockOtherKeys(t *testing.T) {
	t.Parallel()
	for _, policy := range []natsbridge.OverflowPolicy{natsbridge.OverflowDeadLetter, natsbridge.OverflowDropNewest} {
		t.Run(policy.String(), func(t *testing.T) {
			t.Parallel()
			const queueLen, perKey, slowMsgs, others = 64, 16, 300, 40
			b, nc := startBridge(t, natsbridge.Config{
				Concurrency: 4, QueueLen: queueLen, MaxQueuedPerKey: perKey, OverflowPolicy: policy,
			})
			dls := subscribeDeadLetters(t, nc)
			release := make(chan struct{})
			var slowSeen, otherSeen atomic.Int32
			var slowOrder []int
			h := func(ctx context.Context, m natsbridge.Msg) error {
				if m.Key != "slow" {
					otherSeen.Add(1)
					return nil
				}
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
				seq, _ := strconv.Atoi(m.Header.Get("seq"))
				slowOrder = append(slowOrder, seq) // one key: never concurrent
				slowSeen.Add(1)
				return nil
			}
			if err := b.HandlePattern("room.*", h, natsbridge.Limits(natsbridge.HandlerLimits{HandlerTimeout: 30 * time.Second})); err != nil {
				t.Fatal(err)
			}
			flushConn(t, nc)
			for i := range slowMsgs {
				publishSeq(t, nc, "room.slow", i, make([]byte, 1024))
			}
			for i := range others {
				publishSeq(t, nc, "room.r"+strconv.Itoa(i%10), i, nil)
			}
			flushConn(t, nc)
			// A key leaves the handler's map once its worker is back from the call.
			eventually(t, "other keys handled while one key sleeps", func() bool {
				return otherSeen.Load() == others && b.Stats().PerHandler[0].Keys == 1
			})

			st := b.Stats()
			if st.Queued > queueLen {
				t.Errorf("Queued = %d, above the bound %d", st.Queued, queueLen)
			}
			// One slow message is in flight, perKey are buffered, the rest overflowed (one
			// more may be buffered if it arrived before the worker took the first).
			if st.Overflowed < slowMsgs-perKey-1 || st.Overflowed > slowMsgs-perKey {
				t.Errorf("Overflowed = %d, want %d or %d", st.Overflowed, slowMsgs-perKey-1, slowMsgs-perKey)
			}
			if st.InFlight != 1 {
				t.Errorf("InFlight = %d, want 1", st.InFlight)
			}
			if ph := st.PerHandler; len(ph) != 1 || ph[0].Name != "room.*" || ph[0].Workers != 4 ||
				ph[0].Queued != int(st.Queued) || ph[0].Keys != 1 {
				t.Errorf("PerHandler = %+v (Queued %d)", ph, st.Queued)
			}
			close(release)
			eventually(t, "slow key finished", func() bool {
				return uint64(slowSeen.Load())+b.Stats().Overflowed == slowMsgs
			})
			for i := 1; i < len(slowOrder); i++ {
				if slowOrder[i] <= slowOrder[i-1] {
					t.Fatalf("slow key out of order: %v", slowOrder)
				}
			}
			st = b.Stats()
			switch policy {
			case natsbridge.OverflowDeadLetter:
				for range st.Overflowed {
					m := nextDeadLetter(t, dls)
					if r := m.Header.Get(natsbridge.HeaderDeadLetterReason); r != string(natsbridge.DeadLetterOverflow) {
						t.Fatalf("reason = %q", r)
					}
					if m.Subject != "deadletter.room.slow" || len(m.Data) != 1024 {
						t.Fatalf("dead letter %q with %d bytes", m.Subject, len(m.Data))
					}
				}
				if st.Dropped != 0 {
					t.Errorf("Dropped = %d with dead-letter policy and room in its buffer", st.Dropped)
				}
				eventually(t, "dead letters counted", func() bool { return b.Stats().DeadLettered == st.Overflowed })
			case natsbridge.OverflowDropNewest:
				if st.Dropped != st.Overflowed {
					t.Errorf("Dropped = %d, Overflowed = %d", st.Dropped, st.Overflowed)
				}
				if m, err := dls.NextMsg(50 * time.Millisecond); err == nil {
					t.Errorf("unexpected dead letter on %s", m.Subject)
				}
			}
		})
	}
}

// TestHandlerContextIsStandard: the handler's context is a standard library one, so
// contexts a handler derives from it (context.WithTimeout, WithCancel) start no
// goroutine; its cause names the timeout, and ErrClosed after Close.
func TestHandlerContextIsStandard(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	b, nc := startBridge(t, natsbridge.Config{})
	const derived = 1000
	holding := make(chan int, 1)
	release := make(chan struct{})
	causes := make(chan error, 2)
	closing := make(chan struct{})
	h := func(ctx context.Context, m natsbridge.Msg) error {
		switch m.Key {
		case "derive":
			before := runtime.NumGoroutine()
			cancels := make([]context.CancelFunc, 0, derived)
			for range derived {
				_, cancel := context.WithTimeout(ctx, time.Hour)
				cancels = append(cancels, cancel)
			}
			holding <- runtime.NumGoroutine() - before
			<-release
			for _, c := range cancels {
				c()
			}
		case "timeout":
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return ctx.Err()
		case "close":
			close(closing)
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return ctx.Err()
		}
		return nil
	}
	if err := b.HandlePattern("ctx.*", h, natsbridge.Limits(natsbridge.HandlerLimits{HandlerTimeout: time.Minute})); err != nil {
		t.Fatal(err)
	}
	if err := b.HandlePattern("ctxshort.*", h, natsbridge.Limits(natsbridge.HandlerLimits{HandlerTimeout: 20 * time.Millisecond})); err != nil {
		t.Fatal(err)
	}
	flushConn(t, nc)
	publishSeq(t, nc, "ctx.derive", 1, nil)
	flushConn(t, nc)
	// Other goroutines (nats.go, the server) come and go: allow a few, not one per context.
	if grew := <-holding; grew >= derived/10 { // one per context would be 1,000
		t.Fatalf("%d derived contexts started %d goroutines", derived, grew)
	}
	close(release)

	publishSeq(t, nc, "ctxshort.timeout", 2, nil)
	flushConn(t, nc)
	if c := <-causes; !errors.Is(c, natsbridge.ErrHandlerTimeout) || !errors.Is(c, context.DeadlineExceeded) {
		t.Fatalf("cause after the deadline = %v, want ErrHandlerTimeout and DeadlineExceeded", c)
	}
	publishSeq(t, nc, "ctx.close", 3, nil)
	flushConn(t, nc)
	// Wait for this handler itself: InFlight == 1 may still be the timed-out call
	// returning, and a message Close finds buffered is abandoned, never handled.
	<-closing
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if c := <-causes; !errors.Is(c, natsbridge.ErrClosed) {
		t.Fatalf("cause after Close = %v, want ErrClosed", c)
	}
}
