package natsbridge

import (
	"context"
	"errors"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/internal/lifecycle"
)

// The dispatch design is described in the package doc; this file holds what core and
// durable registrations share: the buffer (a keyedQueue), the workers and the handler
// call. Where messages come from and how they are settled is the intake's job
// (intake_core.go, intake_durable.go).

// queued is one buffered message.
type queued struct {
	m        *nats.Msg
	key      string
	received time.Time
	jm       jetstream.Msg // durable intake: the delivery to ack, nak or term
	seq      uint64        // durable intake: the stream sequence
	delivery int           // durable intake: the delivery count (1 for the first)
}

// registration state.
const (
	stateRunning  = iota // accepting and handling
	stateDraining        // intake stopped; workers finish the buffer, then exit
	stateStopped         // workers exit as soon as their current call returns
)

// intake is where a registration's messages come from and how each is settled: a core
// subscription (coreIntake) or a durable JetStream consumer (durableIntake). The
// registration owns the buffer, the workers and the counters; an intake calls back into
// it with buffer and reads nothing of the other kind.
type intake interface {
	// drain stops intake but lets nats.go (or jetstream) hand over what it holds.
	drain() error
	// stop stops intake now; what nats.go (or jetstream) holds is discarded.
	stop() error
	// closed is closed once the last delivery callback returned after drain or stop.
	closed() <-chan struct{}
	// closesAlone reports whether closed will close without the caller's help (a core
	// subscription still open because the caller drains the connection does not).
	closesAlone() bool
	// wait returns once the goroutines the intake started (durable: keep) returned;
	// called after the registration stopped.
	wait()
	// dropped is nats.go's slow-consumer drop count of the subscription, if any.
	dropped() uint64
	// process runs the handler for item, a message of kq the calling worker owns, and
	// settles it.
	process(wctx context.Context, kq *keyQueue[queued], item queued)
	// stateChangedLocked is called, with the registration's mutex held, when the state
	// moved from prev to now (or a stop or drain was asked again); the registration
	// discards its buffer after it on a stop. It returns work to do once the mutex is
	// released (naks), or nil.
	stateChangedLocked(prev, now int) (after func())
}

// registration is one Handle, HandlePattern or HandleDurable call: its intake, buffer and
// workers.
type registration struct {
	b       *Bridge
	opts    handlerOptions
	subject string
	handler Handler
	log     zerolog.Logger
	in      intake // set before the first message can arrive
	// timeoutCause is context.Cause of an attempt whose deadline passed; it wraps
	// context.DeadlineExceeded and ErrHandlerTimeout.
	timeoutCause error

	mu      sync.Mutex // guards the fields below, and the intake's own buffered state
	cond    *sync.Cond
	q       keyedQueue[queued]
	queued  int // messages buffered: in q, and parked by a recovering durable intake
	idle    int
	started int // workers started so far (lazily, at most opts.workers)
	state   int

	workers  lifecycle.Group
	failures failureLog // rate-limits the warn lines of Retryable failures
}

// bufferLocked appends item to its key (at the front for a redelivery that keeps its
// place), counts it and makes sure a worker will take the key. Called with r.mu held;
// the caller checked the state and the bounds.
func (r *registration) bufferLocked(item queued, front bool) {
	if front {
		kq := r.q.get(item.key)
		r.q.pushFront(kq, item)
		r.queued++
		r.b.counters.queued.Add(1)
		r.makeReady(kq)
		return
	}
	kq := r.q.push(item.key, item)
	r.queued++
	r.b.counters.queued.Add(1)
	r.makeReady(kq)
}

// full reports whether item cannot be buffered: the registration's or its key's bound
// is reached. Called with r.mu held.
func (r *registration) full(key string) bool {
	if r.queued >= r.opts.queueLen {
		return true
	}
	kq := r.q.get(key)
	return kq != nil && kq.len() >= r.opts.perKey
}

// makeReady queues kq for a worker if it has messages, no owner and no hold, waking an
// idle worker or starting one. Called with r.mu held.
func (r *registration) makeReady(kq *keyQueue[queued]) {
	if !r.q.makeReady(kq) {
		return
	}
	if r.idle > 0 {
		r.cond.Signal()
	}
	// Workers start lazily: one more when the ready keys outnumber the idle workers
	// (each idle one, woken or not, takes one key), up to the registration's bound.
	if r.q.readyLen() > r.idle && r.started < r.opts.workers {
		r.started++
		r.workers.Go(r.work)
	}
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
		for r.q.readyLen() == 0 {
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
		kq, item := r.q.take()
		kq.current = item.seq
		r.queued--
		r.b.counters.queued.Add(-1)
		r.mu.Unlock()

		r.in.process(wctx, kq, item)

		r.mu.Lock()
		if r.state == stateStopped {
			kq.owned = false // the buffer was discarded: kq is no longer in it
		} else {
			r.q.done(kq)
		}
		if r.state == stateDraining && r.queued == 0 {
			r.cond.Broadcast() // let idle workers see the empty buffer and exit
		}
	}
}

// setState moves the registration to state, lets the intake settle what only it can
// (durable give-backs), discards the buffer on a stop (counted as abandoned) and wakes
// every worker.
func (r *registration) setState(state int) {
	r.mu.Lock()
	prev := r.state
	r.state = max(r.state, state)
	after := r.in.stateChangedLocked(prev, r.state)
	if r.state == stateStopped && (r.queued > 0 || r.q.keyCount() > 0) {
		// Keys owned by a running call go too: their workers exit without touching
		// the buffer once stopped, so Stats shows no keys after shutdown.
		r.b.counters.abandoned.Add(uint64(r.queued))
		r.b.counters.queued.Add(-int64(r.queued))
		r.queued = 0
		r.q.reset()
	}
	r.cond.Broadcast()
	r.mu.Unlock()
	if after != nil {
		after()
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
