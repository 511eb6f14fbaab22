package natsbridge

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamepersist/gamepersist/internal/lifecycle"
)

// durableIntake is the intake of HandleDurable: a JetStream pull consumer, at least
// once. A message is acknowledged after its handler returned nil; a Retryable failure
// is nak'ed with backoff while its key waits for the redelivery; one that keeps failing
// is dead-lettered and terminated. Its fields below r are guarded by r.mu, except cc
// (set before the registration is published) and keeper.
type durableIntake struct {
	r  *registration
	d  Durable
	cc jetstream.ConsumeContext

	// A consumer that had deliveries of an earlier instance still unacknowledged (a
	// crash, a killed connection) starts recovering: every delivery is parked, one per
	// stream sequence, until those deliveries have come back, then the parked messages
	// are queued in stream order (see keep).
	recovering bool
	parked     []queued
	acked      seqRing         // the last stream sequences whose ack was confirmed
	keepStop   chan struct{}   // closed when the registration stops; ends keep
	keeper     lifecycle.Group // keep
}

func (di *durableIntake) drain() error {
	di.cc.Drain()
	return nil
}

func (di *durableIntake) stop() error {
	di.cc.Stop()
	return nil
}

func (di *durableIntake) closed() <-chan struct{} { return di.cc.Closed() }

func (di *durableIntake) closesAlone() bool { return true }

func (di *durableIntake) dropped() uint64 { return 0 }

func (di *durableIntake) wait() { di.keeper.Wait() }

// onDurable is jetstream's callback: it only buffers the message (or leaves it to the
// server), taking the registration's mutex once and never waiting.
func (di *durableIntake) onDurable(jm jetstream.Msg) {
	r := di.r
	c := &r.b.counters
	m := &nats.Msg{Subject: jm.Subject(), Data: jm.Data(), Header: jm.Headers()}
	item := queued{m: m, key: r.keyOf(m), received: time.Now(), jm: jm, delivery: 1}
	if meta, err := jm.Metadata(); err == nil {
		item.seq, item.delivery = meta.Sequence.Stream, int(meta.NumDelivered)
	}
	r.mu.Lock()
	if di.recovering {
		di.parkLocked(item) // unlocks
		return
	}
	if item.delivery > 1 && (di.acked.has(item.seq) || di.staleLocked(item)) {
		r.mu.Unlock() // a delivery of a message settled or held here
		return
	}
	kq := r.q.get(item.key)
	redelivery := kq != nil && kq.held != 0 && item.seq == kq.held
	if !redelivery {
		// A delivery counts as received unless it is the return of a message nak'ed
		// for a retry: that one is still the same message, already counted.
		c.received.Add(1)
	}
	if r.state == stateStopped {
		r.mu.Unlock()
		c.abandoned.Add(1)
		// A delivery that raced the stop (a message Close gave back can come straight
		// back here) goes back at once, not after AckWait.
		_ = jm.Nak()
		return
	}
	if !redelivery && r.queued >= r.opts.queueLen {
		r.mu.Unlock()
		di.overflow(item)
		return
	}
	if redelivery {
		kq.held = 0
		if kq.holdTimer != nil {
			kq.holdTimer.Stop()
			kq.holdTimer = nil
		}
	}
	r.bufferLocked(item, redelivery)
	r.mu.Unlock()
}

// overflow leaves a delivery that found the buffer full to the server. The consumer's
// MaxAckPending keeps deliveries within the buffer, so only a redelivery of a message
// still buffered gets here; the server delivers it again after AckWait. It counts as
// abandoned, as a delivery given back at Close does.
func (di *durableIntake) overflow(item queued) {
	di.r.b.counters.abandoned.Add(1)
	di.r.log.Debug().Str("subject", item.m.Subject).Str("key", item.key).Uint64("stream_seq", item.seq).
		Msg("natsbridge: buffer full, durable message left for redelivery")
}

// staleLocked reports whether item, a redelivery (AckWait passed), is of a message
// buffered here: being handled (its ack settles it) or still queued (the queued copy now
// settles through the newer delivery). Nothing is queued twice. Called with r.mu held.
func (di *durableIntake) staleLocked(item queued) bool {
	kq := di.r.q.get(item.key)
	if kq == nil {
		return false
	}
	if kq.owned && kq.current == item.seq {
		return true
	}
	for it := range kq.msgs.all {
		if it.seq == item.seq {
			it.jm, it.delivery = item.jm, item.delivery
			return true
		}
	}
	return false
}

// releaseHold lets key kq go on without its nak'ed message seq, if it is still
// waiting for it: the redelivery went to another Bridge on the consumer, or is late.
func (di *durableIntake) releaseHold(kq *keyQueue[queued], seq uint64) {
	r := di.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == stateStopped || r.q.get(kq.key) != kq || kq.held != seq {
		return
	}
	kq.held, kq.holdTimer = 0, nil
	if kq.len() == 0 && !kq.owned {
		r.q.forget(kq)
		return
	}
	r.makeReady(kq)
}

// stateChangedLocked gives back to the server, in order, what this intake can no longer
// handle: on a drain or stop during recovery the parked messages; on a drain the keys
// waiting for a nak'ed message (the messages behind it, nak'ed to come back just after
// it); on a stop every buffered message. Each is counted as abandoned.
func (di *durableIntake) stateChangedLocked(prev, now int) func() {
	r := di.r
	c := &r.b.counters
	if now == stateStopped && prev != stateStopped && di.keepStop != nil {
		close(di.keepStop)
	}
	var giveBack []jetstream.Msg
	if di.recovering {
		// Intake is over before the earlier deliveries came back: nothing parked is
		// handled here. The parked messages go back to the server in stream order, to
		// be delivered again with the ones still out (to the next Bridge's recovery).
		slices.SortFunc(di.parked, func(a, b queued) int { return cmp.Compare(a.seq, b.seq) })
		for _, it := range di.parked {
			giveBack = append(giveBack, it.jm)
		}
		n := len(di.parked)
		r.queued -= n
		c.queued.Add(-int64(n))
		c.abandoned.Add(uint64(n))
		di.stopRecovering()
	}
	var behindHeld []jetstream.Msg
	var behindDelay []time.Duration
	if now == stateDraining {
		// Intake is over: a key waiting for its nak'ed message never gets it here; the
		// message and those behind it are left to the server (counted as abandoned, so
		// Drain says so). The later ones are nak'ed to come back just after the nak'ed
		// one (the server redelivers what is due in stream order), so the drain can
		// finish and the next consumer gets them without waiting for AckWait.
		r.q.each(func(kq *keyQueue[queued]) {
			if kq.held == 0 {
				return
			}
			c.abandoned.Add(1) // the held message: it cannot come back here
			if kq.len() == 0 {
				return
			}
			delay := max(time.Until(kq.heldUntil), 0) + time.Millisecond
			behind := r.q.drain(kq)
			for _, it := range behind {
				behindHeld = append(behindHeld, it.jm)
				behindDelay = append(behindDelay, delay)
			}
			r.queued -= len(behind)
			c.queued.Add(-int64(len(behind)))
			c.abandoned.Add(uint64(len(behind)))
		})
	}
	if now == stateStopped {
		// Messages buffered but not handled go back to the server now, each key's in
		// its order, so they are delivered again (here or to another Bridge on the
		// consumer) ahead of newer ones instead of after AckWait. A key waiting for its
		// nak'ed message is left: that one comes back first, the rest after AckWait.
		r.q.each(func(kq *keyQueue[queued]) {
			if kq.holdTimer != nil {
				kq.holdTimer.Stop()
			}
			if kq.held != 0 {
				return
			}
			for it := range kq.msgs.all {
				giveBack = append(giveBack, it.jm)
			}
		})
	}
	if len(giveBack) == 0 && len(behindHeld) == 0 {
		return nil
	}
	return func() {
		for _, jm := range giveBack {
			_ = jm.Nak()
		}
		for i, jm := range behindHeld {
			_ = jm.NakWithDelay(behindDelay[i])
		}
	}
}

// processDurable runs the handler once for a durable delivery and settles it: ack on
// success, nak with backoff (holding the key) for a Retryable error before the last
// delivery, else dead letter and term.
func (di *durableIntake) process(wctx context.Context, kq *keyQueue[queued], item queued) {
	r := di.r
	b := r.b
	c := &b.counters
	msg := Msg{
		Subject: item.m.Subject, Data: item.m.Data, Header: item.m.Header,
		Key: item.key, Received: item.received, Handler: r.opts.name, Attempt: item.delivery,
		stream: di.d.Stream, seq: item.seq,
	}
	if !b.acquire() {
		c.abandoned.Add(1) // Close came first: given back at once
		_ = item.jm.Nak()
		return
	}
	err := r.invoke(wctx, msg)
	b.release()
	if err == nil {
		di.ack(item)
		c.handled.Add(1)
		start := item.received
		if t, ok := publishedAt(msg.Header); ok && item.delivery == 1 {
			start = t
		}
		c.latency.observe(time.Since(start))
		return
	}
	if b.ctx.Err() != nil {
		// Close cancelled the attempt: given back at once, so the next consumer gets it
		// without waiting for AckWait.
		c.abandoned.Add(1)
		_ = item.jm.Nak()
		return
	}
	reason, decodeReason, pe := r.classify(err)
	if reason != DeadLetterPanic && IsRetryable(err) && item.delivery < di.d.MaxDeliver && item.seq != 0 {
		c.retried.Add(1)
		r.mu.Lock()
		draining := r.state == stateDraining
		r.mu.Unlock()
		if draining { // intake is over: the redelivery cannot come back here
			r.noteRetryable(msg, err, "given back for redelivery (draining)", 0)
			di.giveBack(kq, item)
			return
		}
		delay := b.backoff.wait(item.delivery + 1)
		r.noteRetryable(msg, err, "nak'ed for redelivery", delay)
		seq := item.seq
		r.mu.Lock()
		kq.held = seq // before the nak: the redelivery must find the key held
		kq.heldUntil = time.Now().Add(delay)
		kq.current = 0
		// The redelivery may go to another Bridge on the consumer: the key waits for it
		// at most the nak's delay plus AckWait, then goes on.
		kq.holdTimer = time.AfterFunc(delay+di.d.AckWait, func() { di.releaseHold(kq, seq) })
		r.mu.Unlock()
		if nerr := item.jm.NakWithDelay(delay); nerr != nil {
			logErr(r.log.Warn(), nerr).Str("subject", msg.Subject).Uint64("stream_seq", item.seq).
				Msg("natsbridge: durable nak not sent, the message comes back after AckWait")
		}
		return
	}
	jm, log := item.jm, r.log
	var once sync.Once
	r.fail(msg, item, err, reason, decodeReason, pe, item.delivery, func(stored bool) {
		once.Do(func() {
			settle, what := jm.Term, "term"
			if !stored {
				settle = func() error { return jm.NakWithDelay(deadLetterRetryMax) }
				what = "nak"
			}
			if serr := settle(); serr != nil {
				logErr(log.Warn(), serr).Str("action", what).Msg("natsbridge: durable message not settled, the server delivers it again")
			}
		})
	})
}

// giveBack settles a durable delivery that failed with a Retryable error after intake
// stopped (the Bridge drains, so the redelivery cannot come back here): it and the
// messages buffered behind it on its key are nak'ed now, in key order and without delay,
// so that the next consumer gets them at once, and counted as abandoned.
func (di *durableIntake) giveBack(kq *keyQueue[queued], item queued) {
	r := di.r
	r.mu.Lock()
	var later []jetstream.Msg
	for _, it := range r.q.drain(kq) {
		later = append(later, it.jm)
	}
	r.queued -= len(later)
	r.b.counters.queued.Add(-int64(len(later)))
	r.mu.Unlock()
	r.b.counters.abandoned.Add(uint64(1 + len(later)))
	if err := item.jm.Nak(); err != nil {
		logErr(r.log.Warn(), err).Uint64("stream_seq", item.seq).
			Msg("natsbridge: durable nak not sent, the message comes back after AckWait")
	}
	for _, jm := range later {
		_ = jm.Nak()
	}
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

// ID returns a stable identifier of the message for idempotent handlers: for a
// HandleDurable message "<stream>:<stream sequence>", the same on every redelivery; for
// a core message its Nats-Msg-Id header (set by PublishWithMsgID), else "".
func (m Msg) ID() string {
	if m.stream != "" && m.seq != 0 {
		return m.stream + ":" + strconv.FormatUint(m.seq, 10)
	}
	return m.Header.Get(HeaderMsgID)
}
