package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/metric"
)

// Bridge runs handlers for NATS subjects without ever blocking nats.go's delivery
// goroutine, with bounded memory, ordered per key, with deadlines, retries and dead
// letters.
//
// Dispatch. Each registration (Handle, HandlePattern) owns a pool of worker goroutines,
// started lazily up to Concurrency (default Config.MaxInFlightPerHandler), and a set of per-key
// FIFO queues. The nats.go callback only appends the message to its key's queue (key:
// KeyFunc, by default the subject's last token, e.g. the room) and, if no worker owns
// that key, queues the key on a "ready" list and wakes an idle worker; it takes one
// short mutex and never waits. A worker takes the oldest ready key, owns it while it
// handles that key's oldest message, then puts the key back at the end of the ready
// list if it has more (round robin between keys). So messages of one key are handled
// one at a time in arrival order, different keys in parallel, and a key whose handler
// sleeps holds one worker while the others serve the other keys (only when every worker
// of a registration is stuck do its other keys wait, buffered within the bounds below:
// size Concurrency above the number of keys expected to stall at once). Each call also
// takes one of Config.MaxInFlight Bridge-wide slots.
//
// Bounds. A registration buffers at most QueueLen messages, and at most MaxQueuedPerKey
// for one key, so a hot or stuck key cannot take the whole buffer. A message beyond
// either bound overflows: Config.OverflowPolicy dead-letters it (default) or drops it,
// and Stats counts it either way. nats.go's own pending limits are set on every
// subscription (Config.SubPendingMsgs/Bytes) and its drops are counted as SlowConsumer.
//
// Failures. Each attempt runs with a deadline (HandlerTimeout) in its context. A
// Retryable error is retried after an exponential backoff with jitter (from a random
// source private to this Bridge) up to MaxAttempts; the waiting message keeps its key
// (later messages of the key wait behind it, to keep order) and its worker, but gives
// back its MaxInFlight slot. Other errors, the last failed attempt, a deadline overrun, a
// Typed decode error and a panic (recovered, counted, never retried) make the message a
// dead letter on Config.DeadLetterPrefix + subject with the Gp-Dl-* headers (see
// HeaderDeadLetterReason), and the handler goes on with the next message. Dead letters
// are published to JetStream with acknowledgement (a stream must capture them: see
// EnsureDeadLetterStream) and count in Stats.DeadLettered only once the stream
// acknowledged them; while JetStream is unreachable they wait in a bounded buffer
// (Config.DeadLetterQueueLen) and are retried for Config.DeadLetterTimeout; what cannot
// be kept is counted in Stats.DeadLetterLost and logged. Replay sends them back.
//
// Lifecycle. New starts only the dead-letter publisher goroutine. Handle, HandlePattern
// and HandleDurable may be called at any time before Drain or Close; each subscribes at
// once, and its workers start as messages need them. Run is a convenience that blocks until its
// context ends and then drains. Drain stops intake and finishes the buffered messages
// within its context; Close stops at once. Either way every goroutine the Bridge started
// has returned when they return. The *nats.Conn belongs to the caller: the Bridge never
// closes or drains it and never changes its handlers; reconnects are nats.go's, and
// subscriptions resume after them.
//
// A Bridge is safe for concurrent use.
type Bridge struct {
	nc      *nats.Conn
	cfg     Config
	backoff *backoff
	dead    *deadLetterPublisher

	ctx    context.Context // handlers' parent context; cancelled by Close with cause ErrClosed
	cancel context.CancelCauseFunc
	sem    chan struct{} // Config.MaxInFlight slots

	closing   chan struct{} // closed by Close (and by a Drain that ran out of time)
	closeOnce sync.Once

	mu       sync.Mutex
	regs     []*registration
	names    map[string]bool
	stopping bool // Drain or Close began: no new registrations
	done     chan struct{}
	doneErr  error
	slowGone uint64 // SlowConsumer drops of subscriptions already closed

	counters counters
	metrics  metric.Registration // unregistered by finish
}

// New returns a Bridge that will subscribe on nc. It validates cfg (after WithDefaults)
// and returns an error wrapping ErrInvalidOption if it is wrong. It starts one goroutine
// (the dead-letter publisher); Close or Drain stops it. nc stays the caller's.
func New(nc *nats.Conn, cfg Config) (*Bridge, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil *nats.Conn", ErrInvalidOption)
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
		closing: make(chan struct{}),
		names:   map[string]bool{},
		done:    make(chan struct{}),
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
// workers start as messages need them. It fails with an error wrapping ErrInvalidSubject, ErrInvalidOption
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
		return fmt.Errorf("%w: nil Handler for %q", ErrInvalidOption, subject)
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
	if b.stopping {
		return ErrClosed
	}
	if b.names[o.name] {
		return fmt.Errorf("%w: a handler named %q is already registered", ErrInvalidOption, o.name)
	}
	var (
		sub *nats.Subscription
		err error
	)
	if o.queue != "" {
		sub, err = b.nc.QueueSubscribe(subject, o.queue, r.onMsg)
	} else {
		sub, err = b.nc.Subscribe(subject, r.onMsg)
	}
	if err != nil {
		return fmt.Errorf("natsbridge: subscribe %q: %w", subject, err)
	}
	if err := sub.SetPendingLimits(b.cfg.SubPendingMsgs, b.cfg.SubPendingBytes); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("natsbridge: pending limits on %q: %w", subject, err)
	}
	// nats.go calls the closed handler when its delivery goroutine for sub ends, after
	// the last callback returned: Drain's and Close's proof that intake is over.
	sub.SetClosedHandler(func(string) { close(r.subDone) })
	if !sub.IsValid() {
		// The connection closed between Subscribe and SetClosedHandler: nats.go's
		// delivery goroutine may have ended without seeing the handler, so nothing
		// would ever close subDone. Nothing was registered; any message that reached
		// onMsg meanwhile counts as abandoned.
		r.setState(stateStopped)
		return fmt.Errorf("natsbridge: subscribe %q: %w", subject, nats.ErrBadSubscription)
	}
	r.sub = sub
	b.names[o.name] = true
	b.regs = append(b.regs, r)
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
		keys:    map[string]*keyQueue{},
		subDone: make(chan struct{}),
		timeoutCause: fmt.Errorf("%w: %q took longer than %s: %w",
			ErrHandlerTimeout, o.name, o.timeout, context.DeadlineExceeded),
	}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// Run blocks until ctx is done, then drains the Bridge with Config.DrainTimeout and
// returns Drain's error (nil if everything buffered was handled). If the Bridge is
// closed or drained while Run waits, Run returns nil; if it was already, ErrClosed.
func (b *Bridge) Run(ctx context.Context) error {
	b.mu.Lock()
	stopping := b.stopping
	b.mu.Unlock()
	if stopping {
		return ErrClosed
	}
	select {
	case <-ctx.Done():
	case <-b.closing:
		return nil
	case <-b.done:
		return nil
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.DrainTimeout)
	defer cancel()
	err := b.Drain(dctx)
	if errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

// Drain stops intake (drains every subscription, so messages nats.go already holds are
// still buffered), waits until every buffered and in-flight message is handled or
// dead-lettered and every dead letter is acknowledged by its stream (or lost), then stops. If ctx ends
// first, it closes the Bridge (handlers' contexts are cancelled, the rest of the buffer
// is abandoned and counted in Stats.Abandoned) and returns an error wrapping ctx.Err().
// Errors from the steps are joined (errors.Join). A Drain or Close already begun makes
// Drain return ErrClosed after it finished.
func (b *Bridge) Drain(ctx context.Context) error {
	regs, first := b.beginStop()
	if !first {
		return ErrClosed
	}

	var errs []error
	// 1. Stop intake: drain each subscription and wait until nats.go has handed
	//    everything it held to our callback and the last callback returned.
	for _, r := range regs {
		if err := r.drainIntake(); err != nil {
			errs = append(errs, err)
		}
	}
	expired := false
	for _, r := range regs {
		select {
		case <-r.intakeDone():
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
		expired = !waitCtx(ctx, func() {
			for _, r := range regs {
				r.workers.Wait()
			}
		})
	}
	// 3. Wait until the remaining dead letters are acknowledged (or lost).
	if !expired {
		expired = !waitCtx(ctx, func() { b.dead.finish(false) })
	}
	if !expired {
		if err := b.nc.FlushWithContext(ctx); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
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
			_ = r.stopIntake() // a drain still pending in nats.go ends now
		}
	}
	// shutdown waits for the last callbacks: after an expired drain, nats.go may still
	// be handing over messages it held.
	b.shutdown(regs)
	if n := b.counters.abandoned.Load(); n > 0 && expired {
		errs = append(errs, fmt.Errorf("natsbridge: %d messages abandoned", n))
	}
	return b.finish(errors.Join(errs...))
}

// beginStop marks the Bridge as stopping and returns a copy of its registrations, with
// first true. If a Drain or Close already began, it waits until that shutdown finished
// and returns first false.
func (b *Bridge) beginStop() (regs []*registration, first bool) {
	b.mu.Lock()
	if b.stopping {
		b.mu.Unlock()
		<-b.done
		return nil, false
	}
	b.stopping = true
	regs = append([]*registration(nil), b.regs...)
	b.mu.Unlock()
	return regs, true
}

// Close stops the Bridge now: it unsubscribes every handler, cancels the handlers'
// contexts, discards buffered messages (counted in Stats.Abandoned; durable ones are
// nak'ed, so the server delivers them again) and dead letters not yet acknowledged
// (counted in Stats.DeadLetterLost), and waits for running handler calls and for
// nats.go's last callback into the Bridge to return — a handler that ignores its context (or a
// KeyFunc that blocks) delays Close until it returns. When Close returns, every message
// counted in Stats.Received has its outcome counted, and no counter moves any more.
// Messages nats.go had read from the server but not yet handed to the Bridge are
// discarded by nats.go's unsubscribe and never counted (use Drain to finish them).
// If the caller is draining the connection itself (nats.Conn.Drain), its subscriptions
// stay open until that drain ends and messages it still delivers are counted as
// abandoned. It returns unsubscribe errors, if any. Close is idempotent: a second call
// (or one after Drain) waits for the first shutdown to finish and returns nil. The
// *nats.Conn is left open.
func (b *Bridge) Close() error {
	regs, first := b.beginStop()
	if !first {
		return nil
	}

	var errs []error
	for _, r := range regs {
		if err := r.stopIntake(); err != nil {
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
	b.closeOnce.Do(func() { close(b.closing) })
	b.cancel(ErrClosed)
	for _, r := range regs {
		r.setState(stateStopped) // from here on onMsg only counts abandoned messages
	}
	for _, r := range regs {
		// A closed subscription's delivery goroutine ends right after the callback it
		// is running, if any; one still open (the caller is draining the connection)
		// is not waited for.
		if r.intakeStopped() {
			<-r.intakeDone()
		}
	}
	for _, r := range regs {
		r.workers.Wait()
		r.keeper.Wait()
	}
	b.dead.finish(true)
}

func (b *Bridge) finish(err error) error {
	if uerr := b.metrics.Unregister(); uerr != nil {
		err = errors.Join(err, fmt.Errorf("natsbridge: unregister metrics: %w", uerr))
	}
	b.mu.Lock()
	b.doneErr = err
	b.mu.Unlock()
	close(b.done)
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

// waitCtx runs wait in a goroutine and reports whether it returned before ctx ended.
// If ctx ends first, the goroutine is left to finish on its own: callers use it only for
// waits that shutdown unblocks right after.
func waitCtx(ctx context.Context, wait func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait()
	}()
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
	regs := len(b.regs)
	slow := b.slowGone
	stopping := b.stopping
	per := make([]HandlerStats, 0, len(b.regs))
	for _, r := range b.regs {
		if !stopping && r.sub != nil {
			if n, err := r.sub.Dropped(); err == nil && n > 0 {
				slow += uint64(n)
			}
		}
		r.mu.Lock()
		queued, keys, started := r.queued, len(r.keys), r.started
		r.mu.Unlock()
		per = append(per, HandlerStats{
			Name: r.opts.name, Subject: r.subject, Queue: r.opts.queue,
			Workers: r.opts.workers, Started: started, Queued: queued, Keys: keys,
		})
	}
	b.mu.Unlock()
	q := c.latency.quantiles(0.50, 0.99)
	return Stats{
		Handlers:         regs,
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
	case <-b.closing:
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
	case <-b.closing:
		return false
	}
}
