package natsbridge

import (
	"context"
	"fmt"
	"time"

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
	di := &durableIntake{r: r, d: d, keepStop: make(chan struct{})}
	r.in = di

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
		di.recovering = true
		r.log.Info().Int("ack_pending", pending).Dur("ack_wait", d.AckWait).
			Msg("natsbridge: durable consumer has unacknowledged deliveries, handling them first")
	}
	di.keeper.Go(func() { di.keep(cons) })
	cc, err := cons.Consume(di.onDurable,
		jetstream.PullMaxMessages(min(o.queueLen, 500)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			logErr(r.log.Debug(), err).Msg("natsbridge: durable consumer notice")
		}))
	if err != nil {
		r.setState(stateStopped) // ends keep
		di.keeper.Wait()
		return fmt.Errorf("natsbridge: consume %s/%s: %w", d.Stream, d.Consumer, err)
	}
	di.cc = cc
	b.names[o.name] = true
	b.regs = append(b.regs, r)
	return nil
}
