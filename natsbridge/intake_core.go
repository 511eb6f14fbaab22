package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// coreIntake is the intake of Handle and HandlePattern: a core NATS subscription
// (at most once; a message that fails is retried here, then dead-lettered).
type coreIntake struct {
	r       *registration
	sub     *nats.Subscription // set before the registration is published
	subDone chan struct{}      // closed by nats.go after the subscription's last callback returned
}

func newCoreIntake(r *registration) *coreIntake {
	return &coreIntake{r: r, subDone: make(chan struct{})}
}

// subscribe subscribes the registration's subject (in its queue group, if any) with
// the Bridge's pending limits. Called with the Bridge's lock held; no network round trip.
func (ci *coreIntake) subscribe() error {
	r, b := ci.r, ci.r.b
	var (
		sub *nats.Subscription
		err error
	)
	if r.opts.queue != "" {
		sub, err = b.nc.QueueSubscribe(r.subject, r.opts.queue, ci.onMsg)
	} else {
		sub, err = b.nc.Subscribe(r.subject, ci.onMsg)
	}
	if err != nil {
		return fmt.Errorf("natsbridge: subscribe %q: %w", r.subject, err)
	}
	if err := sub.SetPendingLimits(b.cfg.SubPendingMsgs, b.cfg.SubPendingBytes); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("natsbridge: pending limits on %q: %w", r.subject, err)
	}
	// nats.go calls the closed handler when its delivery goroutine for sub ends, after
	// the last callback returned: Drain's and Close's proof that intake is over.
	sub.SetClosedHandler(func(string) { close(ci.subDone) })
	if !sub.IsValid() {
		// The connection closed between Subscribe and SetClosedHandler: nats.go's
		// delivery goroutine may have ended without seeing the handler, so nothing
		// would ever close subDone. Nothing was registered; any message that reached
		// onMsg meanwhile counts as abandoned.
		r.setState(stateStopped)
		return fmt.Errorf("natsbridge: subscribe %q: %w", r.subject, nats.ErrBadSubscription)
	}
	ci.sub = sub
	return nil
}

func (ci *coreIntake) drain() error {
	ci.r.b.noteSlowConsumer(ci.sub)
	if err := ci.sub.Drain(); err != nil {
		_ = ci.sub.Unsubscribe()
		return fmt.Errorf("natsbridge: drain subscription %q: %w", ci.r.subject, err)
	}
	return nil
}

func (ci *coreIntake) stop() error {
	ci.r.b.noteSlowConsumer(ci.sub)
	if err := ci.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("natsbridge: unsubscribe %q: %w", ci.r.subject, err)
	}
	return nil
}

func (ci *coreIntake) closed() <-chan struct{} { return ci.subDone }

func (ci *coreIntake) closesAlone() bool { return !ci.sub.IsValid() }

func (ci *coreIntake) dropped() uint64 {
	if n, err := ci.sub.Dropped(); err == nil && n > 0 {
		return uint64(n)
	}
	return 0
}

func (ci *coreIntake) wait() {}

func (ci *coreIntake) stateChangedLocked(int, int) func() { return nil }

// onMsg is the nats.go callback: it only buffers the message (or overflows it), taking
// the registration's mutex once and never waiting.
func (ci *coreIntake) onMsg(m *nats.Msg) {
	r := ci.r
	item := queued{m: m, key: r.keyOf(m), received: time.Now()}
	r.b.counters.received.Add(1)
	r.mu.Lock()
	if r.state == stateStopped {
		r.mu.Unlock()
		r.b.counters.abandoned.Add(1)
		return
	}
	if r.full(item.key) {
		r.mu.Unlock()
		ci.overflow(item)
		return
	}
	r.bufferLocked(item, false)
	r.mu.Unlock()
}

// overflow applies the overflow policy to a message that found the buffer full.
func (ci *coreIntake) overflow(item queued) {
	r := ci.r
	c := &r.b.counters
	m := item.m
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

// process runs the handler for one message with retries (Config.MaxAttempts, with
// backoff, holding the worker and so the key), then records the outcome.
func (ci *coreIntake) process(wctx context.Context, _ *keyQueue[queued], item queued) {
	r := ci.r
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
