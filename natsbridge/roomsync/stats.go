package roomsync

import "sync/atomic"

// InvalidatorStats is a snapshot of a RoomInvalidator's counters since it was created.
type InvalidatorStats struct {
	// Published counts notices handed to nats.go without error (nats.go then buffers and
	// sends them; while reconnecting it keeps them in its reconnect buffer).
	Published uint64
	// PublishErrors counts notices nats.go refused: the connection is closed, or it is
	// reconnecting and its reconnect buffer is full or disabled. Those changes reach the
	// other processes only through their cache TTL.
	PublishErrors uint64
	// Dropped counts notices never handed to nats.go: the queue was full, or Publish was
	// called after Close. The other processes rely on their cache TTL for them.
	Dropped uint64
	// Queued is the number of notices waiting for the publisher goroutine right now.
	Queued int
	// Received counts notices delivered to the subscription (valid or not).
	Received uint64
	// OwnEchoes counts notices ignored because this instance published them.
	OwnEchoes uint64
	// Applied counts notices from other instances that invalidated a room.
	Applied uint64
	// Malformed counts notices ignored because they could not be decoded or named no
	// valid room (each is logged at warn level with the reason).
	Malformed uint64
	// SlowConsumer counts notices nats.go dropped because the subscription's pending
	// limits were reached (see InvalidatorConfig.SubPendingMsgs).
	SlowConsumer uint64
	// Reconnects counts the times the connection came back after an outage while
	// attached; notices published by others during each outage were missed.
	Reconnects uint64
	// SlowConsumerEvents counts the starts and ends of slow-consumer episodes of the
	// subscription (nats.go dropped notices); each is followed by an InvalidateAll.
	SlowConsumerEvents uint64
	// FullInvalidations counts the InvalidateAll calls made after reconnects and
	// slow-consumer events (0 when the target is not a FullInvalidationTarget).
	FullInvalidations uint64
}

// invalidatorCounters are the counters behind InvalidatorStats.
type invalidatorCounters struct {
	published     atomic.Uint64
	publishErrors atomic.Uint64
	dropped       atomic.Uint64
	received      atomic.Uint64
	ownEchoes     atomic.Uint64
	applied       atomic.Uint64
	malformed     atomic.Uint64
	slowConsumer  atomic.Uint64 // recorded at Close, when the subscription goes away
	reconnects    atomic.Uint64
	slowEvents    atomic.Uint64
	fullInvals    atomic.Uint64
}

// Stats returns a snapshot of the counters. It costs a dozen atomic loads and, while
// attached, one lock of the subscription.
func (inv *RoomInvalidator) Stats() InvalidatorStats {
	s := InvalidatorStats{
		Published:          inv.count.published.Load(),
		PublishErrors:      inv.count.publishErrors.Load(),
		Dropped:            inv.count.dropped.Load(),
		Queued:             len(inv.queue),
		Received:           inv.count.received.Load(),
		OwnEchoes:          inv.count.ownEchoes.Load(),
		Applied:            inv.count.applied.Load(),
		Malformed:          inv.count.malformed.Load(),
		SlowConsumer:       inv.count.slowConsumer.Load(),
		Reconnects:         inv.count.reconnects.Load(),
		SlowConsumerEvents: inv.count.slowEvents.Load(),
		FullInvalidations:  inv.count.fullInvals.Load(),
	}
	inv.life.RLock()
	sub := inv.sub
	inv.life.RUnlock()
	if sub != nil {
		if n, err := sub.Dropped(); err == nil && n > 0 {
			s.SlowConsumer = uint64(n)
		}
	}
	return s
}
