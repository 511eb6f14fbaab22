package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/metric"

	"github.com/gamepersist/gamepersist/internal/lifecycle"
)

// Bridge runs message handlers for NATS subjects off nats.go's delivery goroutine: per
// key in order, different keys in parallel, with bounded buffers, deadlines, retries and
// acknowledged dead letters (see the package doc for the design and what is durable).
// New starts one goroutine; each registration starts its workers as messages need them.
// Close or Drain stops them all; the *nats.Conn stays the caller's. Safe for concurrent use.
type Bridge struct {
	nc      *nats.Conn
	cfg     Config
	backoff *backoff
	dead    *deadLetterPublisher

	// ctx is the handlers' parent context, cancelled with cause ErrClosed when the
	// shutdown stops the workers (Close, or a Drain that ran out of time).
	ctx    context.Context
	cancel context.CancelCauseFunc
	sem    chan struct{} // Config.MaxInFlight slots

	life    lifecycle.Shutdown // Close and Drain: the first does the work, all return its outcome
	waiters lifecycle.Group    // Drain's bounded waits

	mu       sync.Mutex
	regs     []*registration
	names    map[string]bool
	stopping bool   // Drain or Close began: no new registrations
	slowGone uint64 // SlowConsumer drops of subscriptions already closed

	counters      counters
	lastRetryable atomic.Pointer[lastFailure] // the last Retryable handler error, for Drain's error
	metrics       metric.Registration         // unregistered by finish
}

// New returns a Bridge that will subscribe on nc. It validates cfg (after WithDefaults)
// and returns an error wrapping ErrInvalidConfig if it is wrong. It starts one goroutine
// (the dead-letter publisher); Close or Drain stops it. nc stays the caller's.
func New(nc *nats.Conn, cfg Config) (*Bridge, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil *nats.Conn", ErrInvalidConfig)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	b := &Bridge{
		nc:      nc,
		cfg:     cfg,
		backoff: newBackoff(cfg.BackoffBase, cfg.BackoffMax, cfg.BackoffJitter),
		sem:     make(chan struct{}, cfg.MaxInFlight),
		names:   map[string]bool{},
	}
	reg, err := newBridgeMetrics(cfg.MeterProvider, b)
	if err != nil {
		return nil, err
	}
	b.metrics = reg
	b.ctx, b.cancel = context.WithCancelCause(context.Background())
	dead, err := newDeadLetterPublisher(nc, cfg, &b.counters)
	if err != nil {
		b.cancel(err)
		_ = reg.Unregister()
		return nil, err
	}
	b.dead = dead
	return b, nil
}

// Handle subscribes h to a literal subject (no wildcards; see HandlePattern); its
// workers start as messages need them. It fails with an error wrapping ErrInvalidSubject, ErrInvalidConfig
// (bad option or duplicate Name), ErrClosed (after Drain or Close began) or nats.go's
// subscribe error.
func (b *Bridge) Handle(subject string, h Handler, opts ...HandlerOption) error {
	if err := ValidateSubject(subject); err != nil {
		return err
	}
	return b.handle(subject, h, opts)
}

// HandlePattern is Handle for a subject with wildcards ("chat.say.room.*",
// "events.>"): the explicit way to subscribe to many subjects. The pattern must contain
// at least one wildcard token.
func (b *Bridge) HandlePattern(pattern string, h Handler, opts ...HandlerOption) error {
	if err := ValidatePattern(pattern); err != nil {
		return err
	}
	if !strings.Contains("."+pattern+".", ".*.") && !strings.HasSuffix(pattern, ">") {
		return fmt.Errorf("%w: %q has no wildcard: use Handle", ErrInvalidSubject, pattern)
	}
	return b.handle(pattern, h, opts)
}

func (b *Bridge) handle(subject string, h Handler, opts []HandlerOption) error {
	if h == nil {
		return fmt.Errorf("%w: nil Handler for %q", ErrInvalidConfig, subject)
	}
	var o handlerOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if err := o.fill(subject, b.cfg); err != nil {
		return err
	}
	r := b.newRegistration(subject, h, o)

	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.canRegisterLocked(o.name); err != nil {
		return err
	}
	ci := newCoreIntake(r)
	r.in = ci
	if err := ci.subscribe(); err != nil {
		return err
	}
	b.names[o.name] = true
	b.regs = append(b.regs, r)
	return nil
}

// canRegister reports why a handler named name cannot be registered now (ErrClosed, or a
// duplicate Name), or nil. It takes the Bridge's lock briefly.
func (b *Bridge) canRegister(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.canRegisterLocked(name)
}

// canRegisterLocked is canRegister with b.mu held.
func (b *Bridge) canRegisterLocked(name string) error {
	if b.stopping {
		return ErrClosed
	}
	if b.names[name] {
		return configError("Name", name, "a handler of this name is already registered")
	}
	return nil
}

// newRegistration returns a registration of h (not yet receiving) with filled options.
func (b *Bridge) newRegistration(subject string, h Handler, o handlerOptions) *registration {
	r := &registration{
		b:       b,
		opts:    o,
		subject: subject,
		handler: Chain(Chain(h, o.middleware...), b.cfg.Middleware...),
		log:     b.cfg.Logger.With().Str("handler", o.name).Logger(),
		q:       newKeyedQueue[queued](),
		timeoutCause: fmt.Errorf("%w: %q took longer than %s: %w",
			ErrHandlerTimeout, o.name, o.timeout, context.DeadlineExceeded),
	}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// Run blocks until ctx ends, then drains the Bridge within Config.DrainTimeout and
// returns the drain's outcome. If another goroutine closes or drains the Bridge while Run
// waits, Run returns that shutdown's outcome; called after shutdown began, ErrClosed.
func (b *Bridge) Run(ctx context.Context) error {
	if b.life.Begun() {
		return ErrClosed
	}
	select {
	case <-ctx.Done():
	case <-b.life.Done():
		return b.Close() // the outcome of the shutdown that ran
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.DrainTimeout)
	defer cancel()
	return b.Drain(dctx)
}

// Drain stops intake, lets the buffered and in-flight messages finish and the dead
// letters be acknowledged (or lost), then stops every goroutine. If ctx ends first it
// stops as Close does and returns an error wrapping ctx.Err() that counts the abandoned
// messages. A durable message that fails with a Retryable error once intake has stopped
// is given back to the server at once (with the messages behind it on its key, in order),
// not retried here; when any durable message was left unhandled so, Drain returns an
// error wrapping ErrUnhandled and the last Retryable handler error (a dependency closed
// too early shows as its own error, say flux.ErrClosed). Later Drain and Close calls wait
// for the first and return its error.
func (b *Bridge) Drain(ctx context.Context) error {
	return b.life.Do(func() error { return b.drain(ctx) })
}

func (b *Bridge) drain(ctx context.Context) error {
	abandonedAtStart := b.counters.abandoned.Load()
	regs := b.beginStop()
	var errs []error
	// 1. Stop intake: drain each subscription and wait until nats.go has handed
	//    everything it held to our callback and the last callback returned.
	for _, r := range regs {
		if err := r.in.drain(); err != nil {
			errs = append(errs, err)
		}
	}
	expired := false
	for _, r := range regs {
		select {
		case <-r.in.closed():
		case <-ctx.Done():
			expired = true
		}
		if expired {
			break
		}
	}
	// 2. Let the workers finish the buffer.
	if !expired {
		for _, r := range regs {
			r.setState(stateDraining)
		}
		expired = !b.waitCtx(ctx, func() {
			for _, r := range regs {
				r.workers.Wait()
			}
		})
	}
	// 3. Wait until the remaining dead letters are acknowledged (or lost).
	if !expired {
		expired = !b.waitCtx(ctx, func() { b.dead.finish(false) })
	}
	if !expired {
		fctx := ctx
		if _, ok := ctx.Deadline(); !ok { // nats.go's flush refuses a context without one
			var cancel context.CancelFunc
			fctx, cancel = context.WithTimeout(ctx, b.cfg.DrainTimeout)
			defer cancel()
		}
		if err := b.nc.FlushWithContext(fctx); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			if ctx.Err() != nil {
				expired = true
			} else {
				errs = append(errs, fmt.Errorf("natsbridge: flush dead letters: %w", err))
			}
		}
	}
	if expired {
		errs = append(errs, fmt.Errorf("natsbridge: drain did not finish: %w", ctx.Err()))
		for _, r := range regs {
			_ = r.in.stop() // a drain still pending in nats.go ends now
		}
	}
	// shutdown waits for the last callbacks: after an expired drain, nats.go may still
	// be handing over messages it held.
	b.shutdown(regs)
	if n := b.counters.abandoned.Load(); n > 0 && expired {
		errs = append(errs, fmt.Errorf("natsbridge: %d messages abandoned", n))
	} else if err := b.unhandledError(abandonedAtStart); err != nil {
		errs = append(errs, err)
	}
	return b.finish(errors.Join(errs...))
}

// beginStop marks the Bridge as stopping (no new registrations) and returns a copy of
// its registrations.
func (b *Bridge) beginStop() []*registration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopping = true
	return append([]*registration(nil), b.regs...)
}

// Close stops the Bridge now: it unsubscribes, cancels the handlers' contexts, discards
// the buffer (Stats.Abandoned; durable messages are nak'ed) and the unacknowledged dead
// letters, and returns once every goroutine it started and nats.go's last callback into
// it returned (a handler ignoring its ctx delays it). It returns the unsubscribe errors;
// later Close and Drain calls wait for the first and return its error.
func (b *Bridge) Close() error {
	return b.life.Do(b.close)
}

func (b *Bridge) close() error {
	regs := b.beginStop()
	var errs []error
	for _, r := range regs {
		if err := r.in.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	b.shutdown(regs)
	return b.finish(errors.Join(errs...))
}

// shutdown stops every worker and the dead-letter publisher and waits for them, and
// for the last nats.go callback of every closed subscription, so that no counter moves
// after it returns. Callers have unsubscribed (or drained) the subscriptions first.
func (b *Bridge) shutdown(regs []*registration) {
	// Stop the registrations before cancelling the handlers' contexts: a worker whose
	// call is cancelled (or finds no MaxInFlight slot) must find its registration stopped,
	// or it would go on with the key's next message and a durable key would skip one.
	for _, r := range regs {
		r.setState(stateStopped) // from here on onMsg only counts abandoned messages
	}
	b.cancel(ErrClosed)
	for _, r := range regs {
		// A closed subscription's delivery goroutine ends right after the callback it
		// is running, if any; one still open (the caller is draining the connection)
		// is not waited for.
		if r.in.closesAlone() {
			<-r.in.closed()
		}
	}
	for _, r := range regs {
		r.workers.Wait()
		r.in.wait()
	}
	b.dead.finish(true)
	b.waiters.Wait()
}

func (b *Bridge) finish(err error) error {
	if uerr := b.metrics.Unregister(); uerr != nil {
		err = errors.Join(err, fmt.Errorf("natsbridge: unregister metrics: %w", uerr))
	}
	return err
}

// noteSlowConsumer remembers a subscription's nats.go drop count before it closes.
func (b *Bridge) noteSlowConsumer(sub *nats.Subscription) {
	if sub == nil {
		return
	}
	if n, err := sub.Dropped(); err == nil && n > 0 {
		b.mu.Lock()
		b.slowGone += uint64(n)
		b.mu.Unlock()
	}
}

// waitCtx runs wait in a goroutine of b.waiters and reports whether it returned before
// ctx ended. If ctx ends first, the goroutine finishes once shutdown unblocks the wait,
// and shutdown waits for it.
func (b *Bridge) waitCtx(ctx context.Context, wait func()) bool {
	done := make(chan struct{})
	b.waiters.Go(func() {
		defer close(done)
		wait()
	})
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// Stats returns a snapshot of the Bridge's counters. It takes the Bridge's lock and each
// registration's lock briefly and reads each subscription's nats.go drop count; it
// allocates the PerHandler slice; cost O(handlers + 512).
func (b *Bridge) Stats() Stats {
	c := &b.counters
	b.mu.Lock()
	slow := b.slowGone
	stopping := b.stopping
	per := make([]HandlerStats, 0, len(b.regs))
	for _, r := range b.regs {
		if !stopping {
			slow += r.in.dropped()
		}
		r.mu.Lock()
		queued, keys, started := r.queued, r.q.keyCount(), r.started
		r.mu.Unlock()
		per = append(per, HandlerStats{
			Name: r.opts.name, Subject: r.subject, Queue: r.opts.queue,
			Workers: r.opts.workers, Started: started, Queued: queued, Keys: keys,
		})
	}
	b.mu.Unlock()
	q := c.latency.quantiles(0.50, 0.99)
	return Stats{
		Received:         c.received.Load(),
		Handled:          c.handled.Load(),
		Failed:           c.failed.Load(),
		Retried:          c.retried.Load(),
		Panics:           c.panics.Load(),
		Timeouts:         c.timeouts.Load(),
		DecodeErrors:     c.decodeErrors.Load(),
		DeadLettered:     c.deadLettered.Load(),
		DeadLetterLost:   c.deadLetterLost.Load(),
		DeadLetterErrors: c.deadLetterErrors.Load(),
		DeadLetterQueued: c.deadLetterQueued.Load(),
		Overflowed:       c.overflowed.Load(),
		Dropped:          c.dropped.Load(),
		Abandoned:        c.abandoned.Load(),
		SlowConsumer:     slow,
		InFlight:         c.inFlight.Load(),
		Queued:           c.queued.Load(),
		PerHandler:       per,
		LatencyP50:       q[0],
		LatencyP99:       q[1],
	}
}

// acquire takes a Config.MaxInFlight slot; false if the Bridge closed first.
func (b *Bridge) acquire() bool {
	select {
	case b.sem <- struct{}{}:
		return true
	case <-b.ctx.Done():
		return false
	}
}

func (b *Bridge) release() { <-b.sem }

// sleep waits d; false if the Bridge closed first.
func (b *Bridge) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.ctx.Done():
		return false
	}
}
