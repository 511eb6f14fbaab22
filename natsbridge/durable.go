package natsbridge

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamepersist/gamepersist/internal/configerr"
)

// Defaults and bounds of a Durable registration.
const (
	// defaultMaxDeliver is the number of deliveries a durable message gets (the first
	// included) before it is terminated and dead-lettered.
	defaultMaxDeliver = 5
	// defaultAckWait is how long the server waits for a durable message's
	// acknowledgement before delivering it again.
	defaultAckWait = 30 * time.Second

	maxDeliverLimit = 1000
	maxAckWait      = time.Hour
)

// Durable names the JetStream pull consumer a HandleDurable registration reads, for game
// events that must survive a restart (trades, inventory, achievements).
type Durable struct {
	// Stream is the stream holding the events (required, at most 255 bytes; create it
	// with jetstream).
	Stream string
	// Consumer is the durable consumer's name (required, at most 255 bytes). HandleDurable creates it, or
	// updates it to this configuration; every Bridge using the same name shares its
	// messages (each message goes to one of them).
	Consumer string
	// Subject filters the stream's subjects (may contain wildcards); empty takes all.
	Subject string
	// MaxDeliver is the number of deliveries (1..1,000, the first included) before a
	// message that keeps failing with a Retryable error is terminated and
	// dead-lettered. Default 5.
	MaxDeliver int
	// AckWait is how long the server waits for an acknowledgement before it delivers a
	// message again (a crash, a lost connection); it must exceed the handler's timeout
	// (at most 1 h). Default 30 s.
	AckWait time.Duration
}

// durableOptions is a validated Durable.
type durableOptions struct {
	Durable
}

func (d Durable) withDefaults() Durable {
	if d.MaxDeliver == 0 {
		d.MaxDeliver = defaultMaxDeliver
	}
	if d.AckWait == 0 {
		d.AckWait = defaultAckWait
	}
	return d
}

func (d Durable) validate(handlerTimeout time.Duration) error {
	if err := checkJetStreamName("Durable.Stream", d.Stream); err != nil {
		return err
	}
	if err := checkJetStreamName("Durable.Consumer", d.Consumer); err != nil {
		return err
	}
	if d.Subject != "" {
		if err := ValidatePattern(d.Subject); err != nil {
			return configerr.Wrap[invalidConfig]("Durable.Subject", d.Subject, "", err)
		}
	}
	if err := intIn("Durable.MaxDeliver", d.MaxDeliver, 1, maxDeliverLimit); err != nil {
		return err
	}
	if err := durationIn("Durable.AckWait", d.AckWait, maxAckWait); err != nil {
		return err
	}
	if d.AckWait <= handlerTimeout {
		return configErrorf("Durable.AckWait", d.AckWait, "want above the handler timeout (%s)", handlerTimeout)
	}
	return nil
}

// HandleDurable runs h, with Handle's middleware, per-key order, bounds and Stats, for
// the durable JetStream pull consumer d (created or updated within ctx): at least once,
// each message acknowledged after h returns nil. It starts one goroutine beside the
// workers. Order across restarts, retries, dead letters: see "What is durable" in the
// package doc. The consumer's round trips run before the Bridge's lock is taken, so
// Stats, Handle and Close do not wait for them. Errors wrap ErrInvalidConfig, ErrClosed
// or jetstream's error.
func (b *Bridge) HandleDurable(ctx context.Context, d Durable, h Handler, opts ...HandlerOption) error {
	if h == nil {
		return fmt.Errorf("%w: nil Handler for durable %q", ErrInvalidConfig, d.Consumer)
	}
	var o handlerOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.queue != "" {
		return configError("Queue", o.queue, "does not apply to HandleDurable: Bridges using one consumer share its messages")
	}
	if o.name == "" {
		o.name = "durable:" + d.Stream + "/" + d.Consumer
	}
	if err := o.fill(d.Subject, b.cfg); err != nil {
		return err
	}
	o.perKey = o.queueLen // MaxAckPending bounds the buffer; a per-key bound would reorder
	d = d.withDefaults()
	if err := d.validate(o.timeout); err != nil {
		return err
	}
	r := b.newRegistration(d.Subject, h, o)
	r.durable = &durableOptions{Durable: d}

	// The consumer is created (one or two JetStream round trips) before the Bridge's
	// lock is taken, so Stats, Handle and Close never wait on the network; the checks
	// are made again under the lock.
	if err := b.canRegister(o.name); err != nil {
		return err
	}
	cons, err := b.dead.js.CreateOrUpdateConsumer(ctx, d.Stream, jetstream.ConsumerConfig{
		Durable:       d.Consumer,
		FilterSubject: d.Subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       d.AckWait,
		// The Bridge counts deliveries itself (terminating at MaxDeliver after the dead
		// letter is stored); a server-side limit would silently stop redelivering.
		MaxDeliver:    -1,
		MaxAckPending: o.queueLen,
	})
	if err != nil {
		return fmt.Errorf("natsbridge: durable consumer %s/%s: %w", d.Stream, d.Consumer, err)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.canRegisterLocked(o.name); err != nil {
		return err
	}
	if pending := cons.CachedInfo().NumAckPending; pending > 0 {
		// Deliveries of an earlier instance (a crashed or killed Bridge, or one that
		// gave them back at Close) are still unacknowledged: until they are back, no
		// message of this consumer is handled, so none overtakes an earlier one of its key.
		r.recovering = true
		r.log.Info().Int("ack_pending", pending).Dur("ack_wait", d.AckWait).
			Msg("natsbridge: durable consumer has unacknowledged deliveries, handling them first")
	}
	r.keepStop = make(chan struct{})
	r.keeper.Go(func() { r.keep(cons) })
	cc, err := cons.Consume(r.onDurable,
		jetstream.PullMaxMessages(min(o.queueLen, 500)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			logErr(r.log.Debug(), err).Msg("natsbridge: durable consumer notice")
		}))
	if err != nil {
		r.setState(stateStopped) // ends keep
		r.keeper.Wait()
		return fmt.Errorf("natsbridge: consume %s/%s: %w", d.Stream, d.Consumer, err)
	}
	r.cc = cc
	b.names[o.name] = true
	b.regs = append(b.regs, r)
	return nil
}

// onDurable is jetstream's callback: like onMsg, it only buffers the message.
func (r *registration) onDurable(jm jetstream.Msg) {
	now := time.Now()
	m := &nats.Msg{Subject: jm.Subject(), Data: jm.Data(), Header: jm.Headers()}
	item := queued{m: m, key: r.keyOf(m), received: now, jm: jm, delivery: 1}
	if meta, err := jm.Metadata(); err == nil {
		item.seq, item.delivery = meta.Sequence.Stream, int(meta.NumDelivered)
	}

	r.enqueue(item)
}

// processDurable runs the handler once for a durable delivery and settles it: ack on
// success, nak with backoff (holding the key) for a Retryable error before the last
// delivery, else dead letter and term.
func (r *registration) processDurable(wctx context.Context, kq *keyQueue, item queued) {
	b := r.b
	c := &b.counters
	msg := Msg{
		Subject: item.m.Subject, Data: item.m.Data, Header: item.m.Header,
		Key: item.key, Received: item.received, Handler: r.opts.name, Attempt: item.delivery,
		stream: r.durable.Stream, seq: item.seq,
	}
	if !b.acquire() {
		c.abandoned.Add(1) // Close came first: given back at once
		_ = item.jm.Nak()
		return
	}
	err := r.invoke(wctx, msg)
	b.release()
	if err == nil {
		r.ack(item)
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
	if reason != DeadLetterPanic && IsRetryable(err) && item.delivery < r.durable.MaxDeliver && item.seq != 0 {
		c.retried.Add(1)
		r.mu.Lock()
		draining := r.state == stateDraining
		r.mu.Unlock()
		if draining { // intake is over: the redelivery cannot come back here
			r.noteRetryable(msg, err, "given back for redelivery (draining)", 0)
			r.giveBack(kq, item)
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
		kq.holdTimer = time.AfterFunc(delay+r.durable.AckWait, func() { r.releaseHold(kq, seq) })
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

// ID returns a stable identifier of the message for idempotent handlers: for a
// HandleDurable message "<stream>:<stream sequence>", the same on every redelivery; for
// a core message its Nats-Msg-Id header (set by PublishWithMsgID), else "".
func (m Msg) ID() string {
	if m.stream != "" && m.seq != 0 {
		return m.stream + ":" + strconv.FormatUint(m.seq, 10)
	}
	return m.Header.Get(HeaderMsgID)
}

// Recovery of a durable consumer (see HandleDurable).
const (
	// recoveryPoll is how often a recovering registration asks the server whether the
	// earlier deliveries are all back.
	recoveryPoll = 50 * time.Millisecond
	// ackTimeout bounds one wait for the server's confirmation of an ack.
	ackTimeout = 5 * time.Second
)

// park keeps a delivery that arrived while the registration recovers: one entry per
// stream sequence (a newer delivery replaces an older one), counted in the buffer.
// Called with r.mu held; it unlocks it.
func (r *registration) park(item queued) {
	if r.acked.has(item.seq) {
		r.mu.Unlock()
		return
	}
	for i := range r.parked {
		if r.parked[i].seq == item.seq {
			r.parked[i].jm, r.parked[i].delivery = item.jm, item.delivery
			r.mu.Unlock()
			return
		}
	}
	c := &r.b.counters
	c.received.Add(1)
	if r.queued >= r.opts.queueLen {
		r.mu.Unlock()
		r.overflow(item) // left to the server, delivered again
		return
	}
	r.parked = append(r.parked, item)
	r.queued++
	c.queued.Add(1)
	r.mu.Unlock()
}

// stopRecovering ends the recovery state. Called with r.mu held.
func (r *registration) stopRecovering() {
	r.recovering = false
	r.parked = nil
}

// endRecovery queues the parked messages in stream order (so each key's are in its
// order) and lets the workers take them.
func (r *registration) endRecovery() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.recovering {
		return
	}
	parked := r.parked
	r.stopRecovering()
	slices.SortFunc(parked, func(a, b queued) int { return cmp.Compare(a.seq, b.seq) })
	for _, it := range parked {
		kq := r.keys[it.key]
		if kq == nil {
			kq = r.newKeyQueue(it.key)
		}
		kq.msgs.push(it)
	}
	for _, it := range parked {
		r.makeReady(r.keys[it.key])
	}
}

// keep runs beside a durable registration's workers until it stops. While the
// registration recovers, it ends the recovery once every unacknowledged delivery of the
// consumer is parked here (the server's ack-pending count equals the parked count), or,
// if some never come (another Bridge on the consumer holds them), after twice AckWait
// plus the longest backoff. Every third of AckWait it sends a progress notice for every
// buffered message, so that a message waiting here (parked, or behind its key) is not
// due again and its delivery count only grows with handler attempts.
func (r *registration) keep(cons jetstream.Consumer) {
	limit := time.Now().Add(2*r.durable.AckWait + max(r.b.cfg.BackoffMax, deadLetterRetryMax))
	every := r.durable.AckWait / 3
	t := time.NewTicker(min(recoveryPoll, every))
	defer t.Stop()
	lastProgress := time.Now()
	var progress []jetstream.Msg
	for {
		select {
		case <-r.keepStop:
			return
		case <-t.C:
		}
		touch := time.Since(lastProgress) >= every
		r.mu.Lock()
		recovering, parked := r.recovering, len(r.parked)
		if touch {
			progress = r.buffered(progress[:0])
		}
		r.mu.Unlock()
		if touch {
			for _, jm := range progress {
				_ = jm.InProgress()
			}
			clear(progress)
			lastProgress = time.Now()
		}
		if !recovering {
			continue
		}
		ctx, cancel := context.WithTimeout(r.b.ctx, ackTimeout)
		info, err := cons.Info(ctx)
		cancel()
		switch {
		case err == nil && info.NumAckPending <= parked:
			r.log.Info().Int("parked", parked).Msg("natsbridge: durable consumer recovered, handling in stream order")
		case time.Now().After(limit):
			ev := r.log.Warn().Int("parked", parked)
			if err != nil {
				ev = logErr(ev, err)
			} else {
				ev = ev.Int("ack_pending", info.NumAckPending)
			}
			ev.Msg("natsbridge: durable deliveries still out after the recovery limit, handling without them")
		default:
			continue
		}
		r.endRecovery()
		t.Reset(every)
	}
}

// buffered appends the deliveries of every parked or queued message. Called with r.mu
// held.
func (r *registration) buffered(out []jetstream.Msg) []jetstream.Msg {
	for _, it := range r.parked {
		out = append(out, it.jm)
	}
	for _, kq := range r.keys {
		for i := kq.msgs.head; i < len(kq.msgs.items); i++ {
			out = append(out, kq.msgs.items[i].jm)
		}
	}
	return out
}

// ack acknowledges a handled delivery and waits for the server's confirmation,
// retrying with backoff until it comes or the Bridge closes: the key's next message is
// handled only after this one is settled. One unconfirmed at Close is delivered again.
func (r *registration) ack(item queued) {
	b := r.b
	for attempt := 1; ; attempt++ {
		if b.ctx.Err() != nil {
			// Close began: send the ack without waiting for its confirmation.
			_ = item.jm.Ack()
			return
		}
		ctx, cancel := context.WithTimeout(b.ctx, ackTimeout)
		err := item.jm.DoubleAck(ctx)
		cancel()
		if err == nil {
			r.mu.Lock()
			r.acked.add(item.seq)
			r.mu.Unlock()
			return
		}
		if attempt == 1 {
			logErr(r.log.Warn(), err).Str("subject", item.m.Subject).Uint64("stream_seq", item.seq).
				Msg("natsbridge: durable ack not confirmed, retrying until the Bridge closes")
		}
		if !b.sleep(b.backoff.wait(attempt + 1)) {
			return
		}
	}
}
