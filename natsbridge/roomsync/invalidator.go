package roomsync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/internal/lifecycle"
	"github.com/gamepersist/gamepersist/natsbridge"
	"github.com/gamepersist/gamepersist/roomstore"
)

// RoomInvalidation is the payload of a room-cache invalidation notice: which room was
// written, the version the write stored (0 when unknown) and whether it was a delete.
type RoomInvalidation struct {
	// RoomID is the room written; a notice without a valid room id is malformed.
	RoomID string `json:"room_id"`
	// Version is the version the write stored, 0 when unknown (deletes, stores without
	// roomstore.VersionedPutter, a write that failed but may have been applied).
	Version int64 `json:"version,omitempty"`
	// Deleted is true when the room was deleted.
	Deleted bool `json:"deleted,omitempty"`
}

// InvalidationTarget is what a RoomInvalidator invalidates when a notice from another
// process arrives. *roomstore.Cached implements it (and FullInvalidationTarget).
// Invalidate is called from the subscription's delivery goroutine and must not block.
type InvalidationTarget interface {
	Invalidate(ids ...string)
}

var _ FullInvalidationTarget = (*roomstore.Cached)(nil)

// FullInvalidationTarget is an InvalidationTarget that can also drop everything it
// caches; *roomstore.Cached implements it (Cached.InvalidateAll). When the target
// implements it, the RoomInvalidator calls InvalidateAll each time the connection comes
// back after an outage, and when nats.go dropped notices because the subscription was a
// slow consumer: those notices are lost (NATS core does not redeliver), so every cached
// room may be stale. Without it, those rooms stay cached until their TTL passes. InvalidateAll is called from the
// invalidator's reconnect-watcher goroutine and must not block.
type FullInvalidationTarget interface {
	InvalidationTarget
	InvalidateAll()
}

// RoomInvalidator keeps the room caches of several processes coherent over NATS core:
// Publish (the cache's AfterWrite hook) queues a notice without blocking, and Attach makes
// other processes' notices invalidate the cache; a lost notice is bounded by the cache
// TTL (see "Cross-node room-cache invalidation" in the package doc for wiring and
// guarantees). It owns two goroutines, stopped by Close; nc stays the caller's.
type RoomInvalidator struct {
	nc  *nats.Conn
	cfg InvalidatorConfig
	log zerolog.Logger

	queue chan RoomInvalidation
	stop  chan struct{}

	shut  lifecycle.Shutdown // Close: the first does the work, all return its outcome
	group lifecycle.Group    // the publisher and the reconnect watcher

	// life orders Publish and the delivery callback (read side) against Close (write
	// side): once Close holds it, nothing is enqueued and no callback runs any more.
	life   sync.RWMutex
	closed bool
	sub    *nats.Subscription
	status chan nats.Status // reconnect events while attached, nil before Attach
	// watchDone is closed when the reconnect watcher returns (nil before Attach).
	watchDone chan struct{}

	failing atomic.Bool // the last publish failed (log transitions only)

	count invalidatorCounters
}

// NewRoomInvalidator returns a RoomInvalidator publishing and receiving on nc, which the
// caller owns and keeps open until after Close. It validates cfg (errors wrap
// ErrInvalidConfig), does no I/O and starts one publisher goroutine, stopped by Close.
// Pass its Publish method as roomstore.CacheConfig.AfterWrite, then call Attach.
func NewRoomInvalidator(nc *nats.Conn, cfg InvalidatorConfig) (*RoomInvalidator, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil *nats.Conn", ErrInvalidConfig)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	inv := &RoomInvalidator{
		nc:    nc,
		cfg:   cfg,
		log:   cfg.Logger.With().Str("component", "natsbridge.invalidator").Str("instance", cfg.Instance).Logger(),
		queue: make(chan RoomInvalidation, cfg.QueueLen),
		stop:  make(chan struct{}),
	}
	inv.group.Go(inv.publishLoop)
	return inv, nil
}

// Instance returns the id this invalidator puts in its notices' origin.
func (inv *RoomInvalidator) Instance() string { return inv.cfg.Instance }

// Subject returns the subject notices travel on.
func (inv *RoomInvalidator) Subject() string { return inv.cfg.Subject }

// Publish announces a committed write to the other processes. Its signature fits
// roomstore.CacheConfig.AfterWrite. It never blocks and never fails the write: it costs
// an uncontended read lock and a non-blocking channel send (no allocation); when the queue is
// full, or after Close, the notice is dropped and counted in Stats.Dropped, and the other
// processes rely on their cache TTL for that room.
func (inv *RoomInvalidator) Publish(change roomstore.RoomChange) {
	n := RoomInvalidation{RoomID: change.ID, Version: change.Version, Deleted: change.Deleted}
	inv.life.RLock()
	defer inv.life.RUnlock()
	if inv.closed {
		inv.count.dropped.Add(1)
		return
	}
	select {
	case inv.queue <- n:
	default:
		inv.count.dropped.Add(1)
		inv.log.Debug().Str("room_id", change.ID).Msg("natsbridge: invalidation queue full, notice dropped")
	}
}

// publishLoop hands queued notices to nats.go until Close; then it publishes what is
// still queued (nats.go buffers it or refuses it at once) and returns.
func (inv *RoomInvalidator) publishLoop() {
	for {
		select {
		case n := <-inv.queue:
			inv.send(n)
		case <-inv.stop:
			for {
				select {
				case n := <-inv.queue:
					inv.send(n)
				default:
					return
				}
			}
		}
	}
}

func (inv *RoomInvalidator) send(n RoomInvalidation) {
	env := natsbridge.NewEnvelope(roomInvalidationType, n)
	env.Origin = inv.cfg.Instance
	err := natsbridge.Publish(context.Background(), inv.nc, inv.cfg.Subject, env)
	if err == nil {
		inv.count.published.Add(1)
		if inv.failing.Swap(false) {
			inv.log.Info().Str("subject", inv.cfg.Subject).Msg("natsbridge: invalidation publishing recovered")
		}
		return
	}
	inv.count.publishErrors.Add(1)
	ev := inv.log.Debug()
	if !inv.failing.Swap(true) {
		ev = inv.log.Warn()
	}
	logErr(ev.Str("subject", inv.cfg.Subject).Str("room_id", n.RoomID), err).
		Msg("natsbridge: invalidation publish failed, other caches rely on their TTL")
}

// Attach subscribes so that every valid notice from another instance calls
// target.Invalidate, starts the goroutine that calls InvalidateAll after a reconnect or a
// slow-consumer episode (if target is a FullInvalidationTarget), and waits within ctx
// (at most 10 s) for the server to confirm the subscription — at once if reconnecting.
// Errors wrap ErrInvalidConfig (called twice), ErrClosed or ctx's error.
func (inv *RoomInvalidator) Attach(ctx context.Context, target InvalidationTarget) error {
	if target == nil {
		return fmt.Errorf("%w: nil invalidation target", ErrInvalidConfig)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	inv.life.Lock()
	if inv.closed {
		inv.life.Unlock()
		return ErrClosed
	}
	if inv.sub != nil {
		inv.life.Unlock()
		return fmt.Errorf("%w: RoomInvalidator is already attached", ErrInvalidConfig)
	}
	sub, err := inv.nc.Subscribe(inv.cfg.Subject, func(m *nats.Msg) { inv.onNotice(m, target) })
	if err != nil {
		inv.life.Unlock()
		return fmt.Errorf("natsbridge: subscribe to %q: %w", inv.cfg.Subject, err)
	}
	if err := sub.SetPendingLimits(inv.cfg.SubPendingMsgs, inv.cfg.SubPendingBytes); err != nil {
		_ = sub.Unsubscribe()
		inv.life.Unlock()
		return fmt.Errorf("natsbridge: set pending limits on %q: %w", inv.cfg.Subject, err)
	}
	inv.sub = sub
	inv.status = inv.nc.StatusChanged(nats.CONNECTED)
	inv.watchDone = make(chan struct{})
	// The subscription's status channel is closed by nats.go when sub closes.
	slow := sub.StatusChanged(nats.SubscriptionSlowConsumer, nats.SubscriptionActive)
	status, done := inv.status, inv.watchDone
	inv.group.Go(func() { inv.watchReconnects(status, slow, done, target) })
	inv.life.Unlock()

	if !inv.nc.IsConnected() {
		// Reconnecting: nats.go sends the subscription once connected again.
		inv.log.Warn().Str("subject", inv.cfg.Subject).
			Msg("natsbridge: invalidation subscription not confirmed (not connected), kept for reconnect")
		return nil
	}
	fctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(ctx, defaultAttachConfirmTimeout)
		defer cancel()
	}
	err = inv.nc.FlushWithContext(fctx)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		inv.detach(sub)
		return fmt.Errorf("natsbridge: confirm subscription to %q: %w", inv.cfg.Subject, ctx.Err())
	case inv.nc.IsClosed():
		return fmt.Errorf("natsbridge: confirm subscription to %q: %w", inv.cfg.Subject, err)
	default:
		// Disconnected during the round trip: nats.go re-sends the subscription.
		logErr(inv.log.Warn().Str("subject", inv.cfg.Subject), err).
			Msg("natsbridge: invalidation subscription not confirmed, kept for reconnect")
		return nil
	}
}

// detach undoes an Attach whose confirmation failed.
func (inv *RoomInvalidator) detach(sub *nats.Subscription) {
	inv.life.Lock()
	if inv.sub != sub {
		inv.life.Unlock()
		return
	}
	inv.sub = nil
	status, done := inv.status, inv.watchDone
	inv.status, inv.watchDone = nil, nil
	inv.life.Unlock()
	_ = sub.Unsubscribe()
	inv.nc.RemoveStatusListener(status)
	<-done
}

// watchReconnects runs from Attach until the connection's status channel is removed
// (Close, detach). Every CONNECTED event after Attach is a reconnect: the subscription
// was re-sent, and the notices of the outage are lost. A slow-consumer episode of the
// subscription (nats.go dropped notices past its pending limits) loses notices too: it
// is reported when it starts (SubscriptionSlowConsumer) and when nats.go accepts a
// notice again (SubscriptionActive). Either way the whole target is invalidated if it
// can be — at the start of a slow-consumer episode and again at its end, since notices
// dropped in between are covered by neither.
func (inv *RoomInvalidator) watchReconnects(status <-chan nats.Status, slow <-chan nats.SubStatus, done chan<- struct{}, target InvalidationTarget) {
	defer close(done)
	full, canPurge := target.(FullInvalidationTarget)
	inEpisode := false
	for status != nil {
		var why string
		select {
		case _, ok := <-status:
			if !ok {
				status = nil
				continue
			}
			why = "reconnect"
		case st, ok := <-slow:
			if !ok {
				slow = nil // subscription closed (Close or detach)
				continue
			}
			switch {
			case st == nats.SubscriptionSlowConsumer:
				inEpisode = true
				why = "slow_consumer"
			case st == nats.SubscriptionActive && inEpisode:
				inEpisode = false
				why = "slow_consumer_end"
			default:
				continue // the initial Active status
			}
		}
		inv.life.RLock()
		if inv.closed {
			inv.life.RUnlock()
			continue // drain until RemoveStatusListener closes the channel
		}
		if why == "reconnect" {
			inv.count.reconnects.Add(1)
		} else {
			inv.count.slowEvents.Add(1)
		}
		if canPurge {
			full.InvalidateAll()
			inv.count.fullInvals.Add(1)
		}
		inv.life.RUnlock()
		inv.log.Warn().Str("subject", inv.cfg.Subject).Str("cause", why).Bool("full_invalidation", canPurge).
			Msg("natsbridge: invalidation notices were missed")
	}
}

// onNotice runs in nats.go's delivery goroutine of the subscription. It never blocks:
// a decode of at most MaxNoticeBytes and one Invalidate call.
func (inv *RoomInvalidator) onNotice(m *nats.Msg, target InvalidationTarget) {
	inv.life.RLock()
	defer inv.life.RUnlock()
	if inv.closed {
		return
	}
	inv.count.received.Add(1)
	env, err := natsbridge.Decode[RoomInvalidation](m.Data, natsbridge.DecodeOptions{MaxBytes: inv.cfg.MaxNoticeBytes})
	if err != nil {
		var de *natsbridge.DecodeError
		reason, field := "", ""
		if errors.As(err, &de) {
			reason, field = string(de.Reason), de.Field
		}
		inv.rejectNotice(m, reason, field, err)
		return
	}
	if env.Type != roomInvalidationType {
		inv.rejectNotice(m, "wrong_type", "type", nil)
		return
	}
	if err := roomstore.ValidateID(env.Payload.RoomID); err != nil {
		inv.rejectNotice(m, "invalid_room_id", "payload.room_id", err)
		return
	}
	if env.Origin == inv.cfg.Instance {
		inv.count.ownEchoes.Add(1)
		return
	}
	target.Invalidate(env.Payload.RoomID)
	inv.count.applied.Add(1)
}

func (inv *RoomInvalidator) rejectNotice(m *nats.Msg, reason, field string, err error) {
	inv.count.malformed.Add(1)
	logErr(inv.log.Warn().Str("subject", m.Subject).Str("reason", reason).Str("field", field).
		Int("bytes", len(m.Data)), err).Msg("natsbridge: malformed invalidation notice ignored")
}

// Close unsubscribes, stops the reconnect watcher and the publisher (after it handed the
// queued notices to nats.go) and returns once both goroutines returned. Afterwards
// Publish drops and counts, Attach returns ErrClosed and arriving notices are ignored. It
// returns the unsubscribe's error; later calls wait for the first and return the same.
// The *nats.Conn is left open.
func (inv *RoomInvalidator) Close() error {
	return inv.shut.Do(inv.close)
}

func (inv *RoomInvalidator) close() error {
	inv.life.Lock()
	inv.closed = true
	sub := inv.sub
	inv.sub = nil
	status := inv.status
	inv.life.Unlock()

	var err error
	if sub != nil {
		if n, derr := sub.Dropped(); derr == nil && n > 0 {
			inv.count.slowConsumer.Store(uint64(n))
		}
		if uerr := sub.Unsubscribe(); uerr != nil && !errors.Is(uerr, nats.ErrConnectionClosed) && !errors.Is(uerr, nats.ErrBadSubscription) {
			err = fmt.Errorf("natsbridge: unsubscribe from %q: %w", inv.cfg.Subject, uerr)
		}
	}
	if status != nil {
		inv.nc.RemoveStatusListener(status)
	}
	close(inv.stop)
	inv.group.Wait()
	return err
}
