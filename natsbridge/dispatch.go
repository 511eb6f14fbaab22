package natsbridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/internal/lifecycle"
)

// The dispatch design is described in the Bridge doc comment; this file holds the
// per-registration structure (registration, keyQueue) and the worker loop.

// queued is one buffered message.
type queued struct {
	m        *nats.Msg
	key      string
	received time.Time
	jm       jetstream.Msg // durable registrations: the delivery to ack, nak or term
	seq      uint64        // durable: the stream sequence
	delivery int           // durable: the delivery count (1 for the first)
}

// keyQueue is the FIFO of one key; it exists while the key has buffered messages or
// is owned by a worker.
type keyQueue struct {
	key     string
	msgs    fifo[queued]
	owned   bool // a worker is handling one of this key's messages
	inReady bool // the key is in registration.ready
	// held (durable) is the stream sequence of a message of this key that was
	// nak'ed for a retry: the key's later messages wait until its redelivery arrives,
	// which goes to the front, so the key keeps its order.
	held      uint64
	heldUntil time.Time   // when the server delivers the held message again (its nak's delay)
	holdTimer *time.Timer // releases the hold if the message went elsewhere
	current   uint64      // durable: the stream sequence a worker is handling
}

func (q *keyQueue) len() int { return q.msgs.len() }

// fifo is a slice-backed queue that reuses its consumed front instead of reallocating:
// its capacity stays within twice its largest length.
type fifo[T any] struct {
	items []T // items[head:] are queued
	head  int
}

func (f *fifo[T]) len() int { return len(f.items) - f.head }

func (f *fifo[T]) push(it T) {
	if f.head > 0 && len(f.items) == cap(f.items) {
		n := copy(f.items, f.items[f.head:])
		clear(f.items[n:])
		f.items, f.head = f.items[:n], 0
	}
	f.items = append(f.items, it)
}

// pushFront puts it before every queued item.
func (f *fifo[T]) pushFront(it T) {
	if f.head > 0 {
		f.head--
		f.items[f.head] = it
		return
	}
	var zero T
	f.items = append(f.items, zero)
	copy(f.items[1:], f.items)
	f.items[0] = it
}

func (f *fifo[T]) pop() T {
	var zero T
	it := f.items[f.head]
	f.items[f.head] = zero
	f.head++
	if f.head == len(f.items) {
		f.items, f.head = f.items[:0], 0
	}
	return it
}

// Reuse of emptied key queues (they come and go with every burst on a key): at most
// keyQueueFreeMax of them, each with at most keyQueueReuseCap slots, are kept.
const (
	keyQueueFreeMax  = 64
	keyQueueReuseCap = 16
)

// registration state.
const (
	stateRunning  = iota // accepting and handling
	stateDraining        // intake stopped; workers finish the buffer, then exit
	stateStopped         // workers exit as soon as their current call returns
)

// registration is one Handle/HandlePattern call: its subscription, buffer and workers.
type registration struct {
	b       *Bridge
	opts    handlerOptions
	subject string
	handler Handler
	log     zerolog.Logger
	sub     *nats.Subscription       // core registrations
	cc      jetstream.ConsumeContext // durable registrations (HandleDurable)
	durable *durableOptions
	subDone chan struct{} // closed by nats.go after the subscription's last callback returned
	// timeoutCause is context.Cause of an attempt whose deadline passed; it wraps
	// context.DeadlineExceeded and ErrHandlerTimeout.
	timeoutCause error

	mu      sync.Mutex
	cond    *sync.Cond
	keys    map[string]*keyQueue
	ready   fifo[*keyQueue] // keys with buffered messages and no owner, oldest first
	free    []*keyQueue
	queued  int
	idle    int
	started int // workers started so far (lazily, at most opts.workers)
	state   int

	// Durable registrations that found deliveries of an earlier consumer instance still
	// unacknowledged (a crash, a killed connection) start recovering: every delivery is
	// parked, one per stream sequence, until those deliveries have come back, then the
	// parked messages are queued in stream order (see durable.go).
	recovering bool
	parked     []queued
	acked      seqRing         // durable: the last stream sequences whose ack was confirmed
	keepStop   chan struct{}   // durable: closed when the registration stops; ends keep
	keeper     lifecycle.Group // durable: keep

	workers  lifecycle.Group
	failures failureLog // rate-limits the warn lines of Retryable failures
}

// drainIntake stops intake but lets nats.go (or jetstream) hand over what it holds.
func (r *registration) drainIntake() error {
	if r.cc != nil {
		r.cc.Drain()
		return nil
	}
	r.b.noteSlowConsumer(r.sub)
	if err := r.sub.Drain(); err != nil {
		_ = r.sub.Unsubscribe()
		return fmt.Errorf("natsbridge: drain subscription %q: %w", r.subject, err)
	}
	return nil
}

// stopIntake stops intake now; what nats.go (or jetstream) holds is discarded.
func (r *registration) stopIntake() error {
	if r.cc != nil {
		r.cc.Stop()
		return nil
	}
	r.b.noteSlowConsumer(r.sub)
	if err := r.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("natsbridge: unsubscribe %q: %w", r.subject, err)
	}
	return nil
}

// intakeDone is closed once the last delivery callback returned after a stop or drain.
func (r *registration) intakeDone() <-chan struct{} {
	if r.cc != nil {
		return r.cc.Closed()
	}
	return r.subDone
}

// intakeStopped reports whether intakeDone will close without the caller's help (a
// subscription still open because the caller drains the connection is not waited for).
func (r *registration) intakeStopped() bool {
	if r.cc != nil {
		return true
	}
	return !r.sub.IsValid()
}

// onMsg is the nats.go callback: it only buffers the message (or overflows it).
func (r *registration) onMsg(m *nats.Msg) {
	now := time.Now()
	r.b.counters.received.Add(1)
	r.enqueue(queued{m: m, key: r.keyOf(m), received: now})
}

// enqueue buffers item on its key (or overflows it) and makes sure a worker will take
// the key. It takes the registration's mutex once and never waits.
func (r *registration) enqueue(item queued) {
	c := &r.b.counters
	r.mu.Lock()
	if r.recovering {
		r.park(item) // unlocks
		return
	}
	if item.jm != nil && item.delivery > 1 && r.acked.has(item.seq) {
		r.mu.Unlock() // the server delivered it again as our confirmed ack arrived
		return
	}
	kq := r.keys[item.key]
	if item.jm != nil && item.delivery > 1 && r.stale(kq, item) {
		r.mu.Unlock()
		return
	}
	redelivery := kq != nil && kq.held != 0 && item.seq == kq.held
	if item.jm != nil && !redelivery {
		// A durable delivery counts as received unless it is the return of a message
		// nak'ed for a retry: that one is still the same message, already counted.
		c.received.Add(1)
	}
	if r.state == stateStopped {
		r.mu.Unlock()
		c.abandoned.Add(1)
		if item.jm != nil {
			// A delivery that raced the stop (a message Close gave back can come
			// straight back here) goes back at once, not after AckWait.
			_ = item.jm.Nak()
		}
		return
	}
	if !redelivery && (r.queued >= r.opts.queueLen || (kq != nil && kq.len() >= r.opts.perKey)) {
		r.mu.Unlock()
		r.overflow(item)
		return
	}
	if kq == nil {
		kq = r.newKeyQueue(item.key)
	}
	if redelivery {
		kq.msgs.pushFront(item)
		kq.held = 0
		if kq.holdTimer != nil {
			kq.holdTimer.Stop()
			kq.holdTimer = nil
		}
	} else {
		kq.msgs.push(item)
	}
	r.queued++
	c.queued.Add(1)
	r.makeReady(kq)
	r.mu.Unlock()
}

// newKeyQueue returns an empty queue for key, registered in r.keys. Called with r.mu
// held.
func (r *registration) newKeyQueue(key string) *keyQueue {
	var kq *keyQueue
	if n := len(r.free); n > 0 {
		kq, r.free = r.free[n-1], r.free[:n-1]
		kq.key = key
	} else {
		kq = &keyQueue{key: key}
	}
	r.keys[key] = kq
	return kq
}

// stale reports whether item, a redelivery (AckWait passed), is of a message this
// registration holds: being handled (its ack settles it) or still queued (the queued
// copy now settles through the newer delivery). Nothing is queued twice. Called with
// r.mu held.
func (r *registration) stale(kq *keyQueue, item queued) bool {
	if kq == nil {
		return false
	}
	if kq.owned && kq.current == item.seq {
		return true
	}
	for i := kq.msgs.head; i < len(kq.msgs.items); i++ {
		if it := &kq.msgs.items[i]; it.seq == item.seq {
			it.jm, it.delivery = item.jm, item.delivery
			return true
		}
	}
	return false
}

// seqRing remembers the last len(seqs) stream sequences added.
type seqRing struct {
	seqs []uint64
	set  map[uint64]struct{}
	next int
}

const ackedRemembered = 1024

func (s *seqRing) add(seq uint64) {
	if s.seqs == nil {
		s.seqs, s.set = make([]uint64, ackedRemembered), make(map[uint64]struct{}, ackedRemembered)
	}
	delete(s.set, s.seqs[s.next])
	s.seqs[s.next] = seq
	s.set[seq] = struct{}{}
	s.next = (s.next + 1) % len(s.seqs)
}

func (s *seqRing) has(seq uint64) bool {
	_, ok := s.set[seq]
	return ok
}

// makeReady queues kq for a worker if it has messages, no owner and no hold, waking an
// idle worker or starting one. Called with r.mu held.
func (r *registration) makeReady(kq *keyQueue) {
	if kq.owned || kq.inReady || kq.held != 0 || kq.len() == 0 {
		return
	}
	kq.inReady = true
	r.ready.push(kq)
	if r.idle > 0 {
		r.cond.Signal()
	}
	// Workers start lazily: one more when the ready keys outnumber the idle workers
	// (each idle one, woken or not, takes one key), up to the registration's bound.
	if r.ready.len() > r.idle && r.started < r.opts.workers {
		r.started++
		r.workers.Go(r.work)
	}
}

// releaseHold lets key kq go on without its nak'ed message seq, if it is still
// waiting for it: the redelivery went to another Bridge on the consumer, or is late.
func (r *registration) releaseHold(kq *keyQueue, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == stateStopped || r.keys[kq.key] != kq || kq.held != seq {
		return
	}
	kq.held, kq.holdTimer = 0, nil
	if kq.len() == 0 && !kq.owned {
		delete(r.keys, kq.key)
		return
	}
	r.makeReady(kq)
}

// keyOf runs the KeyFunc, treating a panic as the empty key (and logging it) so a bad
// KeyFunc can never kill the NATS delivery goroutine.
func (r *registration) keyOf(m *nats.Msg) (key string) {
	defer func() {
		if v := recover(); v != nil {
			r.log.Error().Str("subject", m.Subject).Interface("panic", v).Msg("natsbridge: key func panicked")
			key = ""
		}
	}()
	return r.opts.key(Msg{Subject: m.Subject, Reply: m.Reply, Data: m.Data, Header: m.Header, Handler: r.opts.name})
}

// overflow applies the overflow policy to a message that found the buffer full.
func (r *registration) overflow(item queued) {
	c := &r.b.counters
	m := item.m
	if item.jm != nil {
		// Durable: the consumer's MaxAckPending keeps deliveries within the buffer, so
		// only a redelivery of a message still buffered gets here. Left unacknowledged,
		// the server delivers it again after AckWait: counted as abandoned, as a
		// delivery given back at Close is.
		c.abandoned.Add(1)
		r.log.Debug().Str("subject", m.Subject).Str("key", item.key).Uint64("stream_seq", item.seq).
			Msg("natsbridge: buffer full, durable message left for redelivery")
		return
	}
	c.overflowed.Add(1)
	if r.b.cfg.OverflowPolicy == OverflowDropNewest {
		c.dropped.Add(1)
		r.log.Debug().Str("subject", m.Subject).Str("key", item.key).Msg("natsbridge: buffer full, message dropped")
		return
	}
	r.b.dead.put(deadLetter{
		subject: m.Subject, data: m.Data, header: m.Header, handler: r.opts.name,
		reason: DeadLetterOverflow, errText: "handler buffer full", attempts: 0, firstSeen: item.received,
	})
}

// work is one worker's loop; it exits when the registration stops, or drains and its
// buffer is empty.
func (r *registration) work() {
	// Each worker derives its attempts' contexts from a context of its own, so the
	// per-message WithTimeoutCause registers with an uncontended parent instead of the
	// Bridge's context shared by every worker.
	wctx, cancel := context.WithCancel(r.b.ctx)
	defer cancel()
	r.mu.Lock()
	for {
		for r.ready.len() == 0 {
			if r.state == stateStopped || (r.state == stateDraining && r.queued == 0) {
				r.mu.Unlock()
				return
			}
			r.idle++
			r.cond.Wait()
			r.idle--
		}
		if r.state == stateStopped {
			r.mu.Unlock()
			return
		}
		kq := r.ready.pop()
		kq.inReady = false
		kq.owned = true
		item := kq.msgs.pop()
		kq.current = item.seq
		r.queued--
		r.b.counters.queued.Add(-1)
		r.mu.Unlock()

		r.process(wctx, kq, item)

		r.mu.Lock()
		kq.owned = false
		switch {
		case r.state == stateStopped:
		case kq.held != 0: // waits for its nak'ed message to come back
		case kq.len() > 0:
			kq.inReady = true
			r.ready.push(kq)
		default:
			delete(r.keys, kq.key)
			if len(r.free) < keyQueueFreeMax && cap(kq.msgs.items) <= keyQueueReuseCap {
				kq.key = ""
				r.free = append(r.free, kq)
			}
		}
		if r.state == stateDraining && r.queued == 0 {
			r.cond.Broadcast() // let idle workers see the empty buffer and exit
		}
	}
}

// setState moves the registration to state and wakes every worker. Stopping discards
// (and counts as abandoned) what is still buffered.
func (r *registration) setState(state int) {
	r.mu.Lock()
	if state > r.state {
		if state == stateStopped && r.keepStop != nil {
			close(r.keepStop)
		}
		r.state = state
	}
	var giveBack []jetstream.Msg
	if r.recovering {
		// Intake is over before the earlier deliveries came back: nothing parked is
		// handled here. The parked messages go back to the server in stream order, to
		// be delivered again with the ones still out (to the next Bridge's recovery).
		slices.SortFunc(r.parked, func(a, b queued) int { return cmp.Compare(a.seq, b.seq) })
		for _, it := range r.parked {
			giveBack = append(giveBack, it.jm)
		}
		n := len(r.parked)
		r.queued -= n
		r.b.counters.queued.Add(-int64(n))
		r.b.counters.abandoned.Add(uint64(n))
		r.stopRecovering()
	}
	var behindHeld []jetstream.Msg
	var behindDelay []time.Duration
	if r.state == stateDraining && r.cc != nil {
		// Intake is over: a key waiting for its nak'ed message never gets it here; the
		// message and those behind it are left to the server (counted as abandoned, so
		// Drain says so). The later ones are nak'ed to come back just after the nak'ed
		// one (the server redelivers what is due in stream order), so the drain can
		// finish and the next consumer gets them without waiting for AckWait.
		for _, kq := range r.keys {
			if kq.held == 0 {
				continue
			}
			r.b.counters.abandoned.Add(1) // the held message: it cannot come back here
			n := kq.len()
			if n == 0 {
				continue
			}
			delay := max(time.Until(kq.heldUntil), 0) + time.Millisecond
			for kq.len() > 0 {
				behindHeld = append(behindHeld, kq.msgs.pop().jm)
				behindDelay = append(behindDelay, delay)
			}
			r.queued -= n
			r.b.counters.queued.Add(-int64(n))
			r.b.counters.abandoned.Add(uint64(n))
		}
	}
	if r.state == stateStopped && (r.queued > 0 || len(r.keys) > 0) {
		// Keys owned by a running call go too: their workers exit without touching
		// the map once stopped, so Stats shows no keys after shutdown.
		r.b.counters.abandoned.Add(uint64(r.queued))
		r.b.counters.queued.Add(-int64(r.queued))
		if r.cc != nil {
			giveBack = append(giveBack, r.unackedInKeyOrder()...)
			for _, kq := range r.keys {
				if kq.holdTimer != nil {
					kq.holdTimer.Stop()
				}
			}
		}
		r.queued = 0
		r.keys = map[string]*keyQueue{}
		r.ready, r.free = fifo[*keyQueue]{}, nil
	}
	r.cond.Broadcast()
	r.mu.Unlock()
	// Durable messages buffered but not handled go back to the server now, each key's
	// in its order, so they are delivered again (here or to another Bridge on the
	// consumer) ahead of newer ones instead of after AckWait.
	for _, jm := range giveBack {
		_ = jm.Nak()
	}
	for i, jm := range behindHeld {
		_ = jm.NakWithDelay(behindDelay[i])
	}
}

// unackedInKeyOrder returns the buffered durable messages of the keys not waiting for a
// nak'ed message, each key's in order. Called with r.mu held.
func (r *registration) unackedInKeyOrder() []jetstream.Msg {
	var out []jetstream.Msg
	for _, kq := range r.keys {
		if kq.held != 0 {
			continue // its nak'ed message comes back first; the rest after AckWait
		}
		for i := kq.msgs.head; i < len(kq.msgs.items); i++ {
			out = append(out, kq.msgs.items[i].jm)
		}
	}
	return out
}

// process runs the handler for one message with retries, then records the outcome.
func (r *registration) process(wctx context.Context, kq *keyQueue, item queued) {
	if item.jm != nil {
		r.processDurable(wctx, kq, item)
		return
	}
	b := r.b
	c := &b.counters
	msg := Msg{
		Subject: item.m.Subject, Reply: item.m.Reply, Data: item.m.Data, Header: item.m.Header,
		Key: item.key, Received: item.received, Handler: r.opts.name,
	}
	for attempt := 1; ; attempt++ {
		msg.Attempt = attempt
		if !b.acquire() {
			c.abandoned.Add(1)
			return
		}
		err := r.invoke(wctx, msg)
		b.release()
		if err == nil {
			c.handled.Add(1)
			start := item.received
			if t, ok := publishedAt(msg.Header); ok {
				start = t
			}
			c.latency.observe(time.Since(start))
			return
		}

		if b.ctx.Err() != nil { // Close cancelled the attempt: not the message's fault
			c.abandoned.Add(1)
			return
		}
		reason, decodeReason, pe := r.classify(err)
		if reason != DeadLetterPanic && IsRetryable(err) && attempt < r.opts.maxAttempts {
			c.retried.Add(1)
			delay := b.backoff.wait(attempt + 1)
			r.noteRetryable(msg, err, "retried", delay)
			if !b.sleep(delay) {
				c.abandoned.Add(1)
				return
			}
			continue
		}
		r.fail(msg, item, err, reason, decodeReason, pe, attempt, nil)
		return
	}
}

// classify names the dead-letter reason of a failed attempt and counts it.
func (r *registration) classify(err error) (DeadLetterReason, DecodeReason, *PanicError) {
	c := &r.b.counters
	var pe *PanicError
	var de *DecodeError
	switch {
	case errors.As(err, &pe):
		c.panics.Add(1)
		return DeadLetterPanic, "", pe
	case errors.As(err, &de):
		c.decodeErrors.Add(1)
		return DeadLetterDecodeError, de.Reason, nil
	case errors.Is(err, context.DeadlineExceeded):
		c.timeouts.Add(1)
		return DeadLetterTimeout, "", nil
	}
	return DeadLetterHandlerError, "", nil
}

// fail counts and logs a failed message and hands its dead letter over; done, if not
// nil, learns whether the stream stored the dead letter.
func (r *registration) fail(msg Msg, item queued, err error, reason DeadLetterReason, decodeReason DecodeReason, pe *PanicError, attempts int, done func(stored bool)) {
	r.b.counters.failed.Add(1)
	ev := r.log.Warn()
	if pe != nil {
		ev = r.log.Error().Bytes("stack", pe.Stack)
	}
	logErr(ev, err).Str("subject", msg.Subject).Str("key", msg.Key).Str("reason", string(reason)).
		Int("attempts", attempts).Msg("natsbridge: message failed, dead-lettering")
	r.b.dead.put(deadLetter{
		subject: msg.Subject, data: msg.Data, header: msg.Header, handler: r.opts.name,
		reason: reason, decodeReason: decodeReason, errText: err.Error(),
		attempts: attempts, firstSeen: item.received, done: done,
	})
}

// invoke calls the handler once with the per-attempt deadline (a standard library
// context derived from the Bridge's: contexts the handler derives from it start no
// goroutine, and context.Cause names the timeout or ErrClosed), turning a panic into a
// *PanicError and an ignored deadline into an error wrapping context.DeadlineExceeded.
func (r *registration) invoke(wctx context.Context, msg Msg) (err error) {
	ctx, cancel := context.WithTimeoutCause(wctx, r.opts.timeout, r.timeoutCause)
	defer cancel()
	r.b.counters.inFlight.Add(1)
	defer r.b.counters.inFlight.Add(-1)
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	err = r.handler(ctx, msg)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = errors.Join(err, context.DeadlineExceeded)
	}
	return err
}
