package natsbridge

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Recovery of a durable consumer (see HandleDurable).
const (
	// recoveryPoll is how often a recovering registration asks the server whether the
	// earlier deliveries are all back.
	recoveryPoll = 50 * time.Millisecond
	// ackTimeout bounds one wait for the server's confirmation of an ack.
	ackTimeout = 5 * time.Second
)

// parkLocked keeps a delivery that arrived while the registration recovers: one entry per
// stream sequence (a newer delivery replaces an older one), counted in the buffer.
// Called with r.mu held; it unlocks it.
func (di *durableIntake) parkLocked(item queued) {
	r := di.r
	if di.acked.has(item.seq) {
		r.mu.Unlock()
		return
	}
	for i := range di.parked {
		if di.parked[i].seq == item.seq {
			di.parked[i].jm, di.parked[i].delivery = item.jm, item.delivery
			r.mu.Unlock()
			return
		}
	}
	c := &r.b.counters
	c.received.Add(1)
	if r.queued >= r.opts.queueLen {
		r.mu.Unlock()
		di.overflow(item) // left to the server, delivered again
		return
	}
	di.parked = append(di.parked, item)
	r.queued++
	c.queued.Add(1)
	r.mu.Unlock()
}

// stopRecovering ends the recovery state. Called with r.mu held.
func (di *durableIntake) stopRecovering() {
	di.recovering = false
	di.parked = nil
}

// endRecovery queues the parked messages in stream order (so each key's are in its
// order) and lets the workers take them.
func (di *durableIntake) endRecovery() {
	r := di.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if !di.recovering {
		return
	}
	parked := di.parked
	di.stopRecovering()
	slices.SortFunc(parked, func(a, b queued) int { return cmp.Compare(a.seq, b.seq) })
	for _, it := range parked {
		r.q.push(it.key, it) // r.queued counted them when parked
	}
	for _, it := range parked {
		r.makeReady(r.q.get(it.key))
	}
}

// keep runs beside a durable registration's workers until it stops. While the
// registration recovers, it ends the recovery once every unacknowledged delivery of the
// consumer is parked here (the server's ack-pending count equals the parked count), or,
// if some never come (another Bridge on the consumer holds them), after twice AckWait
// plus the longest backoff. Every third of AckWait it sends a progress notice for every
// buffered message, so that a message waiting here (parked, or behind its key) is not
// due again and its delivery count only grows with handler attempts.
func (di *durableIntake) keep(cons jetstream.Consumer) {
	r := di.r
	limit := time.Now().Add(2*di.d.AckWait + max(r.b.cfg.BackoffMax, deadLetterRetryMax))
	every := di.d.AckWait / 3
	t := time.NewTicker(min(recoveryPoll, every))
	defer t.Stop()
	lastProgress := time.Now()
	var progress []jetstream.Msg
	for {
		select {
		case <-di.keepStop:
			return
		case <-t.C:
		}
		touch := time.Since(lastProgress) >= every
		r.mu.Lock()
		recovering, parked := di.recovering, len(di.parked)
		if touch {
			progress = di.bufferedLocked(progress[:0])
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
		di.endRecovery()
		t.Reset(every)
	}
}

// bufferedLocked appends the deliveries of every parked or queued message. Called with r.mu
// held.
func (di *durableIntake) bufferedLocked(out []jetstream.Msg) []jetstream.Msg {
	for _, it := range di.parked {
		out = append(out, it.jm)
	}
	di.r.q.each(func(kq *keyQueue[queued]) {
		for it := range kq.msgs.all {
			out = append(out, it.jm)
		}
	})
	return out
}

// ack acknowledges a handled delivery and waits for the server's confirmation,
// retrying with backoff until it comes or the Bridge closes: the key's next message is
// handled only after this one is settled. One unconfirmed at Close is delivered again.
func (di *durableIntake) ack(item queued) {
	r := di.r
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
			di.acked.add(item.seq)
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
