package natsbridge

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Stats is a point-in-time snapshot of a Bridge's counters, returned by Bridge.Stats.
// Counters are cumulative since New; InFlight and Queued are gauges.
type Stats struct {
	// Received counts messages nats.go handed to the Bridge's subscriptions. Each ends
	// in exactly one of Handled, Failed, Overflowed or Abandoned. Each Failed message and
	// each Overflowed one not Dropped becomes a dead letter that ends in exactly one of
	// DeadLettered or DeadLetterLost. Once Close or Drain returned, the counters no
	// longer move. For HandleDurable each delivery counts, except the return of a
	// message nak'ed for a retry (the same message, still counted once); a durable
	// delivery left to the server (Close, a full buffer) counts as Abandoned.
	Received uint64
	// Handled counts messages whose handler returned nil.
	Handled uint64
	// Failed counts messages that ended in failure (error, panic, timeout or decode
	// error after the last attempt); each is dead-lettered.
	Failed uint64
	// Retried counts extra attempts made for Retryable errors.
	Retried uint64
	// Panics counts recovered handler panics.
	Panics uint64
	// Timeouts counts failed attempts whose context deadline (HandlerTimeout) expired.
	Timeouts uint64
	// DecodeErrors counts messages a Typed handler could not decode.
	DecodeErrors uint64
	// DeadLettered counts dead letters a JetStream stream acknowledged (stored; a
	// retry the stream recognised as a duplicate of a stored one counts once).
	DeadLettered uint64
	// DeadLetterLost counts dead letters that were not stored: the dead-letter buffer
	// was full, the stream did not acknowledge within Config.DeadLetterTimeout (no
	// stream captures the subject, JetStream unreachable), or Close came first (a few
	// of those may still have been stored). Each batch of losses is logged as one
	// error line.
	DeadLetterLost uint64
	// DeadLetterErrors counts dead-letter publish attempts that JetStream did not
	// acknowledge; each was retried or, past its deadline, counted in DeadLetterLost.
	DeadLetterErrors uint64
	// DeadLetterQueued is the number of dead letters buffered or awaiting their
	// acknowledgement now.
	DeadLetterQueued int64
	// Overflowed counts messages that arrived while their handler's or key's buffer was
	// full; they were dead-lettered or dropped according to Config.OverflowPolicy.
	Overflowed uint64
	// Dropped counts messages OverflowDropNewest discarded without a handler call or a
	// dead letter.
	Dropped uint64
	// Abandoned counts messages given up by Close or by a Drain whose context ended
	// first: buffered ones, ones waiting to retry, and ones whose running attempt was
	// cancelled by the shutdown; and durable messages a Drain gave back to the server
	// unhandled (see ErrUnhandled).
	Abandoned uint64
	// SlowConsumer counts messages nats.go itself dropped because a subscription's
	// pending limits (Config.SubPendingMsgs/Bytes) were exceeded.
	SlowConsumer uint64
	// InFlight is the number of handler calls running now.
	InFlight int64
	// Queued is the number of messages buffered now, over all handlers.
	Queued int64
	// PerHandler describes each registration, in registration order.
	PerHandler []HandlerStats
	// LatencyP50 and LatencyP99 are percentiles of publish→handled time for messages
	// carrying a HeaderPublishedAt header, receive→handled otherwise, over all handled
	// messages since New. Values are bucket upper bounds, at most 12.5 % above the true percentile.
	LatencyP50 time.Duration
	LatencyP99 time.Duration
}

// HandlerStats is the state of one registration in a Stats snapshot.
type HandlerStats struct {
	// Name is the registration's name (see Name); Subject its subject or pattern;
	// Queue its queue group, if any.
	Name, Subject, Queue string
	// Workers is the registration's bound on workers (and so on concurrent calls);
	// Started the workers started so far (lazily, never more than Workers).
	Workers, Started int
	// Queued is the number of messages it buffers now; Keys the number of keys that
	// have buffered messages or a call running.
	Queued, Keys int
}

// counters are the Bridge's cumulative counters; every field is updated atomically.
type counters struct {
	received, handled, failed, retried, panics, timeouts, decodeErrors atomic.Uint64
	deadLettered, deadLetterErrors, overflowed, dropped, abandoned     atomic.Uint64
	deadLetterLost                                                     atomic.Uint64
	inFlight, queued, deadLetterQueued                                 atomic.Int64
	latency                                                            histogram
}

// histogramSubBuckets is the number of buckets per power of two (8 → buckets at most 12.5 % wide).
const (
	histogramSubBits    = 3
	histogramSubBuckets = 1 << histogramSubBits
	histogramBuckets    = 64 * histogramSubBuckets
)

// histogram is a fixed-size, lock-free log-linear histogram of durations in
// nanoseconds: 512 atomic counters (4 KiB), whatever the number of observations.
type histogram struct {
	buckets [histogramBuckets]atomic.Uint64
}

func bucketOf(ns uint64) int {
	if ns < histogramSubBuckets {
		return int(ns)
	}
	exp := bits.Len64(ns) - 1 // ≥ histogramSubBits
	sub := (ns >> (exp - histogramSubBits)) & (histogramSubBuckets - 1)
	return (exp-histogramSubBits+1)*histogramSubBuckets + int(sub)
}

// bucketUpper returns the largest value that falls in bucket i.
func bucketUpper(i int) uint64 {
	if i < histogramSubBuckets {
		return uint64(i)
	}
	exp := i/histogramSubBuckets - 1 + histogramSubBits
	sub := uint64(i % histogramSubBuckets)
	if exp >= 63 {
		return math.MaxUint64
	}
	lo := (uint64(1) << exp) | sub<<(exp-histogramSubBits)
	return lo + (uint64(1) << (exp - histogramSubBits)) - 1
}

func (h *histogram) observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.buckets[bucketOf(uint64(d))].Add(1)
}

// quantiles returns the upper bounds of the buckets holding each quantile q in qs.
func (h *histogram) quantiles(qs ...float64) []time.Duration {
	var counts [histogramBuckets]uint64
	var total uint64
	for i := range h.buckets {
		counts[i] = h.buckets[i].Load()
		total += counts[i]
	}
	out := make([]time.Duration, len(qs))
	if total == 0 {
		return out
	}
	for j, q := range qs {
		rank := uint64(math.Ceil(q * float64(total)))
		rank = max(rank, 1)
		var seen uint64
		for i, c := range counts {
			seen += c
			if seen >= rank {
				out[j] = time.Duration(min(bucketUpper(i), math.MaxInt64))
				break
			}
		}
	}
	return out
}
