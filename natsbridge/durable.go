package natsbridge

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	// Stream is the stream holding the events (required; create it with jetstream).
	Stream string
	// Consumer is the durable consumer's name (required). HandleDurable creates it, or
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
	for _, n := range []string{d.Stream, d.Consumer} {
		if n == "" || strings.ContainsAny(n, " \t\r\n.*>/\\") {
			return fmt.Errorf("%w: Durable.Stream and Durable.Consumer must be names without '.', '*', '>', '/' or whitespace, got %q and %q",
				ErrInvalidOption, d.Stream, d.Consumer)
		}
	}
	if d.Subject != "" {
		if err := ValidatePattern(d.Subject); err != nil {
			return fmt.Errorf("%w: Durable.Subject: %w", ErrInvalidOption, err)
		}
	}
	if err := intIn("Durable.MaxDeliver", d.MaxDeliver, 1, maxDeliverLimit); err != nil {
		return err
	}
	if err := durationIn("Durable.AckWait", d.AckWait, maxAckWait); err != nil {
		return err
	}
	if d.AckWait <= handlerTimeout {
		return &LimitError{Field: "Durable.AckWait", Value: d.AckWait.String(), Range: "above the handler timeout (" + handlerTimeout.String() + ")"}
	}
	return nil
}

// HandleDurable runs h for the messages of a durable JetStream pull consumer, with the
// same handler, middleware, per-key ordering, bounds and Stats as Handle:
//
//   - A message is acknowledged after h returns nil. Until then it is the server's: a
//     Bridge that stops or crashes, or a connection that is lost, leaves it unacknowledged
//     and the server delivers it again (to this consumer, on any Bridge using it), so a
//     message may be handled twice but is never lost. Msg.ID gives handlers a stable id
//     to make them idempotent.
//   - A Retryable error naks the message with the Bridge's backoff; the key's later
//     messages wait until it comes back, so the key keeps its order. Msg.Attempt is the
//     delivery count.
//   - Any other error, a panic, a timeout, and a Retryable error on the last of
//     Durable.MaxDeliver deliveries dead-letter the message (see Config); it is
//     terminated once the dead-letter stream acknowledged its dead letter, and nak'ed
//     for a later delivery if the dead letter was lost.
//   - In flight: the consumer's MaxAckPending is the registration's buffer (Buffer or
//     Config.QueueLen), so the server never hands over more than the Bridge buffers;
//     there is no per-key bound (it would reorder a key), and OverflowPolicy does not
//     apply. Pulling, flow control and heartbeats are nats.go's jetstream package's.
//
// HandleDurable creates or updates the consumer (one JetStream round trip within ctx,
// holding the Bridge's registration lock) and starts consuming. The Queue option is
// refused (Bridges on one consumer already share its messages). Drain lets the buffered
// messages finish and acknowledges them; Close naks them, each key's in order, so they
// are delivered again at once. Errors wrap ErrInvalidOption, ErrClosed or jetstream's
// error.
func (b *Bridge) HandleDurable(ctx context.Context, d Durable, h Handler, opts ...HandlerOption) error {
	if h == nil {
		return fmt.Errorf("%w: nil Handler for durable %q", ErrInvalidOption, d.Consumer)
	}
	var o handlerOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.queue != "" {
		return fmt.Errorf("%w: Queue does not apply to HandleDurable: Bridges using one consumer share its messages", ErrInvalidOption)
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

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopping {
		return ErrClosed
	}
	if b.names[o.name] {
		return fmt.Errorf("%w: a handler named %q is already registered", ErrInvalidOption, o.name)
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
	cc, err := cons.Consume(r.onDurable,
		jetstream.PullMaxMessages(min(o.queueLen, 500)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			r.log.Debug().Err(err).Msg("natsbridge: durable consumer notice")
		}))
	if err != nil {
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
		c.abandoned.Add(1) // unacknowledged: delivered again later
		return
	}
	err := r.invoke(wctx, msg)
	b.release()
	if err == nil {
		if aerr := item.jm.Ack(); aerr != nil {
			r.log.Warn().Err(aerr).Str("subject", msg.Subject).Uint64("stream_seq", item.seq).
				Msg("natsbridge: durable ack not sent, the message will be delivered again")
		}
		c.handled.Add(1)
		start := item.received
		if t, ok := publishedAt(msg.Header); ok && item.delivery == 1 {
			start = t
		}
		c.latency.observe(time.Since(start))
		return
	}
	if b.ctx.Err() != nil {
		c.abandoned.Add(1) // Close cancelled the attempt: delivered again later
		return
	}
	reason, decodeReason, pe := r.classify(err)
	if reason != DeadLetterPanic && IsRetryable(err) && item.delivery < r.durable.MaxDeliver && item.seq != 0 {
		c.retried.Add(1)
		delay := b.backoff.wait(item.delivery + 1)
		seq := item.seq
		r.mu.Lock()
		kq.held = seq // before the nak: the redelivery must find the key held
		// The redelivery may go to another Bridge on the consumer: the key waits for it
		// at most the nak's delay plus AckWait, then goes on.
		kq.holdTimer = time.AfterFunc(delay+r.durable.AckWait, func() { r.releaseHold(kq, seq) })
		r.mu.Unlock()
		if nerr := item.jm.NakWithDelay(delay); nerr != nil {
			r.log.Warn().Err(nerr).Str("subject", msg.Subject).Uint64("stream_seq", item.seq).
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
				log.Warn().Err(serr).Str("action", what).Msg("natsbridge: durable message not settled, the server delivers it again")
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
