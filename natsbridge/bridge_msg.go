package natsbridge

import (
	"cmp"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gamepersist/gamepersist/internal/configerr"
)

// HeaderPublishedAt is an optional message header holding the publish time as decimal
// Unix nanoseconds. When present, Stats latencies are measured publish→handled;
// otherwise receive→handled. SetPublishedAt writes it.
const HeaderPublishedAt = "Gp-Published-At"

// SetPublishedAt stamps m with HeaderPublishedAt = t, allocating m.Header if needed.
func SetPublishedAt(m *nats.Msg, t time.Time) {
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	m.Header.Set(HeaderPublishedAt, strconv.FormatInt(t.UnixNano(), 10))
}

// publishedAt returns the HeaderPublishedAt time of h, if present and well-formed.
func publishedAt(h nats.Header) (time.Time, bool) {
	if h == nil {
		return time.Time{}, false
	}
	v := h.Get(HeaderPublishedAt)
	if v == "" {
		return time.Time{}, false
	}
	ns, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// Msg is the message a Handler receives: a copy of what the Bridge needs from the
// *nats.Msg (no ack or respond semantics), plus dispatch metadata. Data and Header are
// shared with the Bridge (dead letters reuse them): treat them as read-only.
type Msg struct {
	// Subject is the subject the message was published to.
	Subject string
	// Reply is the publisher's reply subject, empty if none (publish to it to answer).
	Reply string
	// Data is the payload.
	Data []byte
	// Header holds the NATS headers, nil if none.
	Header nats.Header
	// Key is the ordering key computed by the registration's KeyFunc.
	Key string
	// Attempt is 1 for the first call, 2 for the first retry, and so on (for
	// HandleDurable, the delivery count).
	Attempt int
	// Received is when the Bridge's subscription received the message.
	Received time.Time
	// Handler is the registration's name (see Name).
	Handler string

	stream string // HandleDurable: the stream and sequence behind ID
	seq    uint64
}

// lastTokenKey is the default KeyFunc: the subject's last token ("chat.say.room.7" →
// "7"), so messages about one room are handled in order and rooms run in parallel.
func lastTokenKey(m Msg) string {
	return LastToken(m.Subject)
}

// HandlerOption adjusts one registration (Handle or HandlePattern).
type HandlerOption func(*handlerOptions)

type handlerOptions struct {
	name        string
	queue       string
	key         func(Msg) string
	workers     int
	queueLen    int
	perKey      int
	timeout     time.Duration
	maxAttempts int
	middleware  []Middleware
}

// Queue subscribes in the NATS queue group: each message goes to one member of the
// group (one process), and ordering per key holds within that process only.
func Queue(group string) HandlerOption { return func(o *handlerOptions) { o.queue = group } }

// KeyFunc sets the ordering key: messages with equal keys are handled one at a time in
// arrival order; different keys run in parallel. It runs on the NATS delivery goroutine,
// so it must be fast and must not block; it sees the message with Key and Attempt unset,
// and a panic in it is logged and yields the key "". Default: the subject's last token (LastToken), e.g. the room.
func KeyFunc(f func(Msg) string) HandlerOption { return func(o *handlerOptions) { o.key = f } }

// Name names the registration in Stats, logs and dead-letter headers. Names are unique
// per Bridge; the default is the subject, plus "@group" with Queue.
func Name(name string) HandlerOption { return func(o *handlerOptions) { o.name = name } }

// HandlerLimits overrides, for one registration, the Config fields of the same names
// (see each there for its meaning and range); a zero field keeps the Config's value.
type HandlerLimits struct {
	// Concurrency is the most workers (so concurrent calls and keys served in parallel).
	Concurrency int
	// QueueLen bounds the messages buffered for the registration.
	QueueLen int
	// MaxQueuedPerKey bounds the messages buffered for one key (at most QueueLen).
	MaxQueuedPerKey int
	// HandlerTimeout is the deadline of each attempt.
	HandlerTimeout time.Duration
	// MaxAttempts is the number of attempts for Retryable errors.
	MaxAttempts int
}

// Limits overrides the Bridge's Config for this registration with l's non-zero fields,
// e.g. Limits(HandlerLimits{Concurrency: 1}) for one call at a time.
func Limits(l HandlerLimits) HandlerOption {
	return func(o *handlerOptions) {
		o.workers = cmp.Or(l.Concurrency, o.workers)
		o.queueLen = cmp.Or(l.QueueLen, o.queueLen)
		o.perKey = cmp.Or(l.MaxQueuedPerKey, o.perKey)
		o.timeout = cmp.Or(l.HandlerTimeout, o.timeout)
		o.maxAttempts = cmp.Or(l.MaxAttempts, o.maxAttempts)
	}
}

// Use adds middleware to this registration, inside Config.Middleware.
func Use(mws ...Middleware) HandlerOption {
	return func(o *handlerOptions) { o.middleware = append(o.middleware, mws...) }
}

func (o *handlerOptions) fill(subject string, cfg Config) error {
	if o.name == "" {
		o.name = subject
		if o.queue != "" {
			o.name += "@" + o.queue
		}
	}
	if o.key == nil {
		o.key = lastTokenKey
	}
	if o.workers == 0 {
		o.workers = cfg.Concurrency
	}
	if o.queueLen == 0 {
		o.queueLen = cfg.QueueLen
	}
	if o.perKey == 0 {
		o.perKey = min(cfg.MaxQueuedPerKey, o.queueLen)
	}
	if o.timeout == 0 {
		o.timeout = cfg.HandlerTimeout
	}
	if o.maxAttempts == 0 {
		o.maxAttempts = cfg.MaxAttempts
	}
	for _, err := range []error{
		intIn("HandlerLimits.Concurrency", o.workers, 1, maxWorkers),
		intIn("HandlerLimits.QueueLen", o.queueLen, 1, maxQueueLen),
		intIn("HandlerLimits.MaxQueuedPerKey", o.perKey, 1, max(o.queueLen, 1)),
		durationIn("HandlerLimits.HandlerTimeout", o.timeout, maxHandlerTimeout),
		intIn("HandlerLimits.MaxAttempts", o.maxAttempts, 1, maxAttempts),
	} {
		if err != nil {
			return fmt.Errorf("handler %q: %w", o.name, err)
		}
	}
	if err := checkQueueName("Queue", o.queue); err != nil {
		return fmt.Errorf("handler %q: %w", o.name, err)
	}
	for i, mw := range o.middleware {
		if mw == nil {
			return fmt.Errorf("handler %q: %w", o.name, configErrorf("Middleware", configerr.NoValue{}, "element %d is nil", i))
		}
	}
	return nil
}
