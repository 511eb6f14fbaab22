package natsbridge

import (
	"strings"
	"time"

	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/metric"

	"github.com/gamepersist/gamepersist/internal/configerr"
)

// Defaults applied by Config.WithDefaults to zero-valued fields (each field's doc states
// its value).
const (
	// defaultMaxInFlight bounds the handler calls running at once across the whole Bridge.
	defaultMaxInFlight = 64
	// defaultConcurrency is the number of worker goroutines (and so the bound on
	// concurrent calls) of each registered handler.
	defaultConcurrency = 8
	// defaultQueueLen bounds the messages buffered (received, not yet started) per handler.
	defaultQueueLen = 1024
	// defaultMaxQueuedPerKey bounds the messages buffered for one key of one handler, so
	// one slow or hot key cannot take the whole QueueLen from the other keys.
	defaultMaxQueuedPerKey = 256
	// defaultHandlerTimeout is the per-attempt deadline put in the handler's context.
	defaultHandlerTimeout = 10 * time.Second
	// defaultMaxAttempts is the number of attempts (first call included) given to a
	// message whose handler keeps returning a Retryable error.
	defaultMaxAttempts = 3
	// defaultBackoffBase is the wait before the second attempt; it doubles per attempt.
	defaultBackoffBase = 50 * time.Millisecond
	// defaultBackoffMax caps the wait between two attempts.
	defaultBackoffMax = 5 * time.Second
	// defaultBackoffJitter is the fraction (±) by which each backoff wait is randomised.
	defaultBackoffJitter = 0.2
	// defaultDeadLetterPrefix is put in front of a message's subject to form its
	// dead-letter subject ("chat.say.room.7" → "deadletter.chat.say.room.7").
	defaultDeadLetterPrefix = "deadletter."
	// defaultDeadLetterQueueLen bounds the dead letters buffered or awaiting their
	// acknowledgement from JetStream: room for every message of a full default handler
	// buffer and then some, so an outage of a few seconds loses none.
	defaultDeadLetterQueueLen = 8192
	// defaultDeadLetterTimeout is how long a dead letter is retried until a stream
	// acknowledges it. It is below the stream's duplicate window (2 minutes, set by
	// EnsureDeadLetterStream), so a retry after a lost acknowledgement is never stored
	// twice.
	defaultDeadLetterTimeout = time.Minute
	// defaultSubPendingMsgs is the nats.go pending-message limit set on each subscription.
	defaultSubPendingMsgs = 65536
	// defaultSubPendingBytes is the nats.go pending-bytes limit set on each subscription.
	defaultSubPendingBytes = 64 << 20
	// defaultDrainTimeout bounds the drain that Run performs after its context ends.
	defaultDrainTimeout = 30 * time.Second
)

// Maxima enforced by validation (a value past one is a *ConfigError): each bounds the
// memory or goroutines one setting can cost, far above what a game server needs.
const (
	maxInFlight        = 1 << 16        // Config.MaxInFlight
	maxWorkers         = 4096           // Config.Concurrency (and HandlerLimits')
	maxQueueLen        = 1 << 20        // Config.QueueLen, MaxQueuedPerKey (and HandlerLimits')
	maxAttempts        = 100            // Config.MaxAttempts (and HandlerLimits')
	maxHandlerTimeout  = 24 * time.Hour // Config.HandlerTimeout (and HandlerLimits')
	maxBackoff         = time.Hour      // Config.BackoffBase, BackoffMax
	maxDeadLetterQueue = 1 << 20        // Config.DeadLetterQueueLen
	maxSubPendingMsgs  = 1 << 24        // Config.SubPendingMsgs
	maxSubPendingBytes = 1 << 34        // Config.SubPendingBytes (16 GiB)
	maxDrainTimeout    = time.Hour      // Config.DrainTimeout
)

// OverflowPolicy says what the Bridge does with a message that arrives when its
// handler's buffer (Config.QueueLen) or its key's buffer (Config.MaxQueuedPerKey) is
// full. Both policies count the message in Stats.Overflowed; neither blocks the NATS
// delivery goroutine and neither grows memory.
type OverflowPolicy int

const (
	// OverflowDeadLetter (the default) publishes the message to its dead-letter subject
	// with reason "overflow", so it is kept (see EnsureDeadLetterStream) and can be
	// replayed. If the dead-letter buffer is full too, the dead letter is counted in
	// Stats.DeadLetterLost and logged.
	OverflowDeadLetter OverflowPolicy = iota
	// OverflowDropNewest discards the arriving message, counts it in Stats.Dropped and
	// logs it at debug level. Use it for data that is superseded anyway (positions,
	// ticks).
	OverflowDropNewest
)

// String returns the policy's name.
func (p OverflowPolicy) String() string {
	switch p {
	case OverflowDeadLetter:
		return "dead_letter"
	case OverflowDropNewest:
		return "drop_newest"
	default:
		return "unknown"
	}
}

// Config configures a Bridge. Zero-valued fields take the default each field states (see
// WithDefaults); New rejects invalid values with an error wrapping ErrInvalidConfig (a
// *ConfigError for a value outside its range).
type Config struct {
	// MeterProvider, when not nil, receives the Bridge's instruments (named in the package
	// doc's Stats section): counters and latency gauges observed from Stats once
	// per collection, nothing recorded per message. nil means no metrics (a no-op
	// provider); no global provider is ever read. Close and Drain unregister them.
	MeterProvider metric.MeterProvider
	// MaxInFlight bounds the handler calls running at once over all handlers
	// (1..65,536; default 64).
	MaxInFlight int
	// Concurrency is the most workers per handler (1..4,096; default 8): the bound on
	// its concurrent calls, and so on the number of keys it serves in parallel. Workers
	// start lazily, one when a message finds every started worker busy, so a handler
	// costs goroutines for the concurrency it used, not for this bound.
	Concurrency int
	// QueueLen bounds the messages buffered per handler (received, not yet started;
	// 1..1,048,576; default 1,024). Memory per handler is at most QueueLen messages plus the ones in
	// flight.
	QueueLen int
	// MaxQueuedPerKey bounds the messages buffered for a single key of a handler
	// (1..QueueLen; default 256, or QueueLen if smaller), so one slow or hot key cannot
	// take the whole buffer.
	MaxQueuedPerKey int
	// HandlerTimeout is the deadline of each attempt (at most 24 h; default 10 s), visible as
	// ctx.Deadline() in the handler. A handler that ignores its context keeps its worker until it returns.
	HandlerTimeout time.Duration
	// MaxAttempts is the number of attempts (first included) for Retryable errors
	// (1..100; default 3).
	MaxAttempts int
	// BackoffBase is the wait before the second attempt; it doubles per further attempt
	// (at most 1 h; default 50 ms).
	BackoffBase time.Duration
	// BackoffMax caps the wait between attempts (BackoffBase..1 h; default 5 s).
	BackoffMax time.Duration
	// BackoffJitter in (0, 1] randomises each wait by ±BackoffJitter of its length;
	// NaN and infinities are refused. Default 0.2.
	BackoffJitter float64
	// OverflowPolicy says what happens to messages beyond QueueLen / MaxQueuedPerKey.
	// The zero value is OverflowDeadLetter.
	OverflowPolicy OverflowPolicy
	// DeadLetterPrefix is prepended to a message's subject to form its dead-letter
	// subject. It must end with "." and contain no wildcard or whitespace. Default
	// "deadletter." ("chat.say.room.7" → "deadletter.chat.say.room.7").
	DeadLetterPrefix string
	// DeadLetterQueueLen bounds the dead letters buffered or awaiting JetStream's
	// acknowledgement (1..1,048,576; default 8,192; about 200 bytes each plus the
	// payload, which the message already holds). While JetStream is unreachable dead
	// letters wait here; one that finds it full is lost (Stats.DeadLetterLost, logged).
	DeadLetterQueueLen int
	// DeadLetterTimeout is how long a dead letter is retried, from the moment it was
	// buffered, until a stream acknowledges it; then it is lost (Stats.DeadLetterLost,
	// logged). Default 1 minute, at most 2: the dead-letter stream's duplicate window,
	// within which a retry after a lost acknowledgement is stored once.
	DeadLetterTimeout time.Duration
	// SubPendingMsgs and SubPendingBytes are the nats.go pending limits set explicitly on
	// every subscription; messages nats.go drops beyond them appear in
	// Stats.SlowConsumer. The Bridge's callback never blocks, so they are rarely reached.
	// Ranges 1..16,777,216 messages and 1 byte..16 GiB; defaults 65,536 and 64 MiB.
	SubPendingMsgs  int
	SubPendingBytes int
	// DrainTimeout bounds the Drain that Run performs once its context is done (at most
	// 1 h; default 30 s).
	DrainTimeout time.Duration
	// Origin identifies this process in dead-letter headers; default a random NUID.
	Origin string
	// Logger receives structured events (dead letters, overflow, publish failures).
	// The zero value logs nothing, as zerolog.Nop() does.
	Logger zerolog.Logger
	// Middleware wraps every handler, the first element outermost, before the
	// per-handler middleware given with Use.
	Middleware []Middleware
}

// WithDefaults returns a copy of c with every zero-valued field set to its default.
// It allocates nothing but the copy (and a NUID for an empty Origin).
func (c Config) WithDefaults() Config {
	if c.MaxInFlight == 0 {
		c.MaxInFlight = defaultMaxInFlight
	}
	if c.Concurrency == 0 {
		c.Concurrency = defaultConcurrency
	}
	if c.QueueLen == 0 {
		c.QueueLen = defaultQueueLen
	}
	if c.MaxQueuedPerKey == 0 {
		c.MaxQueuedPerKey = min(defaultMaxQueuedPerKey, c.QueueLen)
	}
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = defaultHandlerTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = defaultMaxAttempts
	}
	if c.BackoffBase == 0 {
		c.BackoffBase = defaultBackoffBase
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = max(defaultBackoffMax, c.BackoffBase)
	}
	if c.BackoffJitter == 0 {
		c.BackoffJitter = defaultBackoffJitter
	}
	if c.DeadLetterPrefix == "" {
		c.DeadLetterPrefix = defaultDeadLetterPrefix
	}
	if c.DeadLetterQueueLen == 0 {
		c.DeadLetterQueueLen = defaultDeadLetterQueueLen
	}
	if c.DeadLetterTimeout == 0 {
		c.DeadLetterTimeout = defaultDeadLetterTimeout
	}
	if c.SubPendingMsgs == 0 {
		c.SubPendingMsgs = defaultSubPendingMsgs
	}
	if c.SubPendingBytes == 0 {
		c.SubPendingBytes = defaultSubPendingBytes
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = defaultDrainTimeout
	}
	if c.Origin == "" {
		c.Origin = nuid.Next()
	}
	return c
}

// validate reports the first invalid field of a defaulted Config: a *ConfigError for a
// value outside its documented range, an error wrapping ErrInvalidConfig otherwise.
func (c Config) validate() error {
	checks := []error{
		intIn("Config.MaxInFlight", c.MaxInFlight, 1, maxInFlight),
		intIn("Config.Concurrency", c.Concurrency, 1, maxWorkers),
		intIn("Config.QueueLen", c.QueueLen, 1, maxQueueLen),
		intIn("Config.MaxQueuedPerKey", c.MaxQueuedPerKey, 1, max(c.QueueLen, 1)),
		durationIn("Config.HandlerTimeout", c.HandlerTimeout, maxHandlerTimeout),
		intIn("Config.MaxAttempts", c.MaxAttempts, 1, maxAttempts),
		durationIn("Config.BackoffBase", c.BackoffBase, maxBackoff),
		durationIn("Config.BackoffMax", c.BackoffMax, maxBackoff),
		intIn("Config.DeadLetterQueueLen", c.DeadLetterQueueLen, 1, maxDeadLetterQueue),
		durationIn("Config.DeadLetterTimeout", c.DeadLetterTimeout, deadLetterDuplicateWindow),
		intIn("Config.SubPendingMsgs", c.SubPendingMsgs, 1, maxSubPendingMsgs),
		intIn("Config.SubPendingBytes", c.SubPendingBytes, 1, maxSubPendingBytes),
		durationIn("Config.DrainTimeout", c.DrainTimeout, maxDrainTimeout),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	if c.BackoffMax < c.BackoffBase {
		return configErrorf("Config.BackoffMax", c.BackoffMax, "want BackoffBase (%s) .. %s", c.BackoffBase, maxBackoff)
	}
	// Written so that NaN fails: every comparison with NaN is false.
	if !(c.BackoffJitter > 0 && c.BackoffJitter <= 1) {
		return configError("Config.BackoffJitter", c.BackoffJitter, "want (0, 1]")
	}
	switch c.OverflowPolicy {
	case OverflowDeadLetter, OverflowDropNewest:
	default:
		return configError("Config.OverflowPolicy", int(c.OverflowPolicy), "unknown policy: want OverflowDeadLetter or OverflowDropNewest")
	}
	if err := ValidateSubject(c.DeadLetterPrefix + "x"); err != nil || !strings.HasSuffix(c.DeadLetterPrefix, ".") {
		return configError("Config.DeadLetterPrefix", c.DeadLetterPrefix, "must be literal subject tokens ending in '.'")
	}
	for i, mw := range c.Middleware {
		if mw == nil {
			return configErrorf("Config.Middleware", configerr.NoValue{}, "element %d is nil", i)
		}
	}
	return nil
}
