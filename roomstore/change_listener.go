package roomstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/metric"

	"github.com/gamepersist/gamepersist/internal/lifecycle"
	"github.com/gamepersist/gamepersist/internal/redact"
)

// ErrListenerRunning is returned by ChangeListener.Run while another Run of the same
// listener is running.
var ErrListenerRunning = errors.New("roomstore: change listener already running")

// ChangeTarget is what a ChangeListener invalidates; *Cached implements it. Its methods
// are called one at a time, from the goroutine that runs ChangeListener.Run or from the
// one Run starts to empty the target while not listening, and must not block.
type ChangeTarget interface {
	// Invalidate drops the rooms with these ids.
	Invalidate(ids ...string)
	// InvalidateAll drops every room: notices may have been missed.
	InvalidateAll()
}

var _ ChangeTarget = (*Cached)(nil)

// ListenerStats is a snapshot of a ChangeListener's counters since NewChangeListener.
type ListenerStats struct {
	// Notices counts the notices received and applied (malformed ones included).
	Notices uint64
	// IDsInvalidated counts the room ids handed to the target's Invalidate.
	IDsInvalidated uint64
	// FullInvalidations counts the target's InvalidateAll calls: each time the listener
	// starts listening (the first time and after each reconnect), each Gap, each NotifyAll
	// notice, each malformed notice and each NotListeningInvalidations.
	FullInvalidations uint64
	// NotListeningInvalidations counts the InvalidateAll calls made once per HealthCheck
	// while the listener was not listening (connecting, backing off, or reconnecting
	// after a gap), so that the target never serves for longer than that a room filled
	// before an edit the listener could not hear of.
	NotListeningInvalidations uint64
	// Gaps counts the losses of the listening connection (an error, a failed health
	// check, the backend terminated): notices of that time may be lost, so each empties
	// the target at once and again when listening resumes.
	Gaps uint64
	// Reconnects counts the times listening resumed after a gap.
	Reconnects uint64
	// ConnectFailures counts the attempts to connect and LISTEN that failed (each followed
	// by a backoff).
	ConnectFailures uint64
	// Malformed counts notices whose payload was neither NotifyAll nor a JSON array of
	// strings (each empties the target, since it may have named any room).
	Malformed uint64
	// HealthChecks counts the round trips made to check a quiet connection (one per
	// ChangeListenerConfig.HealthCheck without a notice).
	HealthChecks uint64
	// Listening is true while the connection is up and LISTEN is in effect.
	Listening bool
}

// ChangeListener turns the change trigger's notices (see ChangeTriggerSQL and
// PostgresConfig.NotifyChannel) into invalidations of a ChangeTarget, usually a *Cached:
// a room written in plain SQL is dropped from the cache as soon as the notice of its
// commit arrives (one network hop after the commit; measured p50/p99 in the README).
//
// It holds one connection of its own, opened from a copy of the given *pgx.ConnConfig
// (usually pool.Config().ConnConfig): one connection beyond the pool's MaxConns, never
// taken from the pool's budget, so a busy pool cannot delay it, and the pool's
// BeforeConnect/AfterConnect hooks do not run on it. It is never silently stale: when the
// connection is lost or a health check fails (notices may be lost), it empties the target
// at once, reconnects with backoff, and empties it again once listening resumes; while it
// is not listening it empties the target once per HealthCheck, however long a connect
// attempt or a backoff lasts. It runs in the caller's goroutine (Run), with one goroutine
// of its own for that periodic emptying, and stops in Close.
//
// The bound: a read that starts after the listener applied the notice of a commit returns
// that commit's room or a later one. In time, a read that starts HealthCheck after a
// commit made while the listener was not listening, or 2×HealthCheck after a commit made
// while its connection was silently dead, returns that commit's room or a later one;
// with the connection up, the notice arrives one network hop after the commit.
type ChangeListener struct {
	connConfig *pgx.ConnConfig
	target     ChangeTarget
	cfg        ChangeListenerConfig
	log        zerolog.Logger
	password   string // of connConfig, redacted from every error

	shut lifecycle.Shutdown
	// targetMu makes the calls to target one at a time: Run's goroutine applies notices
	// and gaps, the goroutine of emptyWhileNotListening empties it while not listening.
	targetMu sync.Mutex

	// mu guards running, cancelRun and runDone, written by Run and read by Close.
	mu        sync.Mutex
	running   bool
	cancelRun context.CancelFunc
	runDone   chan struct{}

	notices         atomic.Uint64
	idsInvalidated  atomic.Uint64
	fullInvalidates atomic.Uint64
	gaps            atomic.Uint64
	reconnects      atomic.Uint64
	connectFailures atomic.Uint64
	malformed       atomic.Uint64
	healthChecks    atomic.Uint64
	notListening    atomic.Uint64 // InvalidateAll calls of emptyWhileNotListening
	// listening is written by Run's goroutine, read by emptyWhileNotListening and Stats.
	listening atomic.Bool

	metrics metric.Registration // unregistered by Close
}

// NewChangeListener returns a listener that will invalidate target on the notices of
// cfg.Channel, connecting with a copy of connConfig (which stays the caller's). It does no
// I/O and starts nothing: call Run. A nil argument or an invalid cfg returns an error
// wrapping ErrInvalidConfig.
func NewChangeListener(connConfig *pgx.ConnConfig, target ChangeTarget, cfg ChangeListenerConfig) (*ChangeListener, error) {
	if connConfig == nil {
		return nil, fmt.Errorf("%w: nil *pgx.ConnConfig", ErrInvalidConfig)
	}
	if target == nil {
		return nil, fmt.Errorf("%w: nil ChangeTarget", ErrInvalidConfig)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	l := &ChangeListener{
		connConfig: connConfig.Copy(),
		target:     target,
		cfg:        cfg,
		log:        cfg.Logger.With().Str("component", "roomstore.listener").Str("channel", cfg.Channel).Logger(),
		password:   connConfig.Password,
	}
	var err error
	if l.metrics, err = newListenerMetrics(cfg.MeterProvider, l); err != nil {
		return nil, err
	}
	return l, nil
}

// Run connects, LISTENs and applies notices until ctx ends or Close is called, in the
// caller's goroutine; then it closes the listener and returns Close's outcome (nil when
// the shutdown went well). Connection failures are not returned: they are retried with
// backoff, counted and logged. Each time listening starts (the first time included) the
// target is emptied, since whatever was cached before may have been edited unseen. It
// returns ErrClosed after Close and ErrListenerRunning while another Run runs.
//
// Each notice costs a JSON decode of at most MaxNotifyPayload bytes and one Invalidate
// call; the idle connection costs one empty statement per HealthCheck. While it is not
// listening, Run's second goroutine empties the target once per HealthCheck: the cache's
// reads then go to the database at least once per HealthCheck each, which is the price of
// the bound.
func (l *ChangeListener) Run(ctx context.Context) error {
	l.mu.Lock()
	switch {
	case l.shut.Begun():
		l.mu.Unlock()
		return ErrClosed
	case l.running:
		l.mu.Unlock()
		return ErrListenerRunning
	}
	ctx, cancel := context.WithCancel(ctx)
	l.running, l.cancelRun, l.runDone = true, cancel, make(chan struct{})
	done := l.runDone
	l.mu.Unlock()

	var emptier sync.WaitGroup
	emptier.Go(func() { l.emptyWhileNotListening(ctx) })
	l.loop(ctx)
	cancel()
	emptier.Wait()
	close(done)
	return l.Close()
}

// emptyWhileNotListening empties the target once per HealthCheck while the listener is
// not listening, until ctx ends. The loop alone empties it at a gap and on listening
// again, but in between (a backoff of up to MaxBackoff, a connect attempt of up to
// ConnectTimeout, a database down for minutes) the target may fill again from a database
// it can still reach, and an edit committed then would be served until listening resumes.
// A ticker of its own keeps that bound whatever the loop is blocked in: simpler than
// making every connect attempt and backoff wake up, and a pass-through mode would need
// the target's cooperation.
func (l *ChangeListener) emptyWhileNotListening(ctx context.Context) {
	tick := time.NewTicker(l.cfg.HealthCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if !l.listening.Load() {
				// Count after the call: whoever sees the count sees the target emptied.
				l.invalidateAll()
				l.notListening.Add(1)
			}
		}
	}
}

// loop is Run's body: connect, listen until the connection fails, empty the target,
// back off, again; it returns when ctx ends. The wait before each attempt after the
// first doubles from MinBackoff to MaxBackoff while attempts fail or connections are lost
// soon after they listened.
func (l *ChangeListener) loop(ctx context.Context) {
	backoff := l.cfg.MinBackoff
	resumed := false
	for ctx.Err() == nil {
		conn, err := l.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.connectFailures.Add(1)
			wait := jitter(backoff)
			l.log.Warn().Err(redact.Error(err, l.password)).Dur("retry_in", wait).
				Msg("roomstore: change listener cannot listen")
			if !sleep(ctx, wait) {
				return
			}
			backoff = min(2*backoff, l.cfg.MaxBackoff)
			continue
		}
		if resumed {
			l.reconnects.Add(1)
		}
		resumed = true
		// Notices committed before LISTEN took effect were never sent to us.
		l.invalidateAll()
		l.listening.Store(true)
		l.log.Debug().Msg("roomstore: change listener listening")
		listenedAt := time.Now()
		err = l.receive(ctx, conn)
		l.listening.Store(false)
		lost := ctx.Err() == nil
		if lost {
			// Empty first, count second: whoever sees the gap counted sees the cache empty.
			l.invalidateAll()
			l.gaps.Add(1)
			l.log.Warn().Err(redact.Error(err, l.password)).Bool("full_invalidation", true).
				Msg("roomstore: change listener lost its connection; notices may have been missed")
		}
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = conn.Close(closeCtx)
		cancel()
		if !lost {
			return
		}
		// A connection that kept listening for MaxBackoff was healthy: start over from
		// MinBackoff. One that keeps being lost at once backs off like a failed connect.
		if time.Since(listenedAt) >= l.cfg.MaxBackoff {
			backoff = l.cfg.MinBackoff
		}
		if !sleep(ctx, jitter(backoff)) {
			return
		}
		backoff = min(2*backoff, l.cfg.MaxBackoff)
	}
}

// connect opens the listener's connection and LISTENs on the channel, within
// ConnectTimeout.
func (l *ChangeListener) connect(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.ConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, l.connConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("roomstore: change listener: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.cfg.Channel}.Sanitize()); err != nil {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
		return nil, fmt.Errorf("roomstore: change listener: listen: %w", err)
	}
	return conn, nil
}

// receive applies notices until ctx ends (it returns ctx's error) or the connection
// fails (it returns why).
func (l *ChangeListener) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		waitCtx, cancel := context.WithTimeout(ctx, l.cfg.HealthCheck)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case err == nil:
			l.apply(n.Payload)
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Quiet for HealthCheck: check the connection still answers.
			l.healthChecks.Add(1)
			pingCtx, cancel := context.WithTimeout(ctx, l.cfg.HealthCheck)
			err = conn.Ping(pingCtx)
			cancel()
			if err == nil {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("roomstore: change listener: health check: %w", err)
		default:
			return fmt.Errorf("roomstore: change listener: wait for notice: %w", err)
		}
	}
}

// apply turns one notice's payload into invalidations.
func (l *ChangeListener) apply(payload string) {
	defer l.notices.Add(1) // after the invalidation: a reader that sees the count sees it done
	if payload == NotifyAll {
		l.invalidateAll()
		return
	}
	var ids []string
	if err := json.Unmarshal([]byte(payload), &ids); err != nil {
		l.malformed.Add(1)
		l.invalidateAll()
		l.log.Warn().Err(err).Int("bytes", len(payload)).Bool("full_invalidation", true).
			Msg("roomstore: malformed change notice")
		return
	}
	l.targetMu.Lock()
	l.target.Invalidate(ids...)
	l.targetMu.Unlock()
	l.idsInvalidated.Add(uint64(len(ids)))
}

// invalidateAll empties the target and counts it.
func (l *ChangeListener) invalidateAll() {
	l.targetMu.Lock()
	l.target.InvalidateAll()
	l.targetMu.Unlock()
	l.fullInvalidates.Add(1)
}

// Stats returns a snapshot of the counters. It costs ten atomic loads.
func (l *ChangeListener) Stats() ListenerStats {
	return ListenerStats{
		Notices:           l.notices.Load(),
		IDsInvalidated:    l.idsInvalidated.Load(),
		FullInvalidations: l.fullInvalidates.Load(),
		Gaps:              l.gaps.Load(),
		Reconnects:        l.reconnects.Load(),
		ConnectFailures:   l.connectFailures.Load(),
		Malformed:         l.malformed.Load(),
		HealthChecks:      l.healthChecks.Load(),
		Listening:         l.listening.Load(),

		NotListeningInvalidations: l.notListening.Load(),
	}
}

// Close stops Run, waits until it returned (its connection closed) and unregisters the
// metrics; the target is left as it is. It returns the metrics' unregistration error;
// later calls wait for the first and return the same. Run after Close returns ErrClosed.
func (l *ChangeListener) Close() error {
	return l.shut.Do(func() error {
		l.mu.Lock()
		cancel, done := l.cancelRun, l.runDone
		l.mu.Unlock()
		if cancel != nil {
			cancel()
			<-done
		}
		if err := l.metrics.Unregister(); err != nil {
			return fmt.Errorf("roomstore: unregister listener metrics: %w", err)
		}
		return nil
	})
}

// jitter returns d ± 25 %.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d - d/4 + time.Duration(rand.Int64N(int64(d/2)+1)) //nolint:gosec // backoff jitter, not a secret
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
