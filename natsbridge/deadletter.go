package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// DeadLetterReason says why a message was dead-lettered (HeaderDeadLetterReason).
type DeadLetterReason string

// The reasons the Bridge writes in HeaderDeadLetterReason.
const (
	// DeadLetterHandlerError: the handler returned an error that was not Retryable, or
	// was Retryable and the last attempt failed too.
	DeadLetterHandlerError DeadLetterReason = "handler_error"
	// DeadLetterPanic: the handler panicked (not retried).
	DeadLetterPanic DeadLetterReason = "panic"
	// DeadLetterDecodeError: a Typed handler could not decode the envelope; the
	// DecodeReason is in HeaderDeadLetterDecodeReason.
	DeadLetterDecodeError DeadLetterReason = "decode_error"
	// DeadLetterOverflow: the message arrived while the buffer was full (see
	// OverflowDeadLetter); the handler never saw it.
	DeadLetterOverflow DeadLetterReason = "overflow"
	// DeadLetterTimeout: the last attempt's context deadline (HandlerTimeout) expired.
	DeadLetterTimeout DeadLetterReason = "timeout"
)

// Headers the Bridge adds to a dead letter, next to the original message's headers
// (its Nats-* headers renamed with HeaderDeadLetterNATSPrefix). The dead letter's data
// is the original payload, unchanged.
const (
	// HeaderDeadLetterSubject is the subject the message was originally published to.
	HeaderDeadLetterSubject = "Gp-Dl-Subject"
	// HeaderDeadLetterReason is a DeadLetterReason.
	HeaderDeadLetterReason = "Gp-Dl-Reason"
	// HeaderDeadLetterDecodeReason is the DecodeReason, for DeadLetterDecodeError.
	HeaderDeadLetterDecodeReason = "Gp-Dl-Decode-Reason"
	// HeaderDeadLetterError is the last error's text (one line, at most 512 bytes).
	HeaderDeadLetterError = "Gp-Dl-Error"
	// HeaderDeadLetterAttempts is the number of handler calls made (0 for overflow).
	HeaderDeadLetterAttempts = "Gp-Dl-Attempts"
	// HeaderDeadLetterHandler is the registration's name (see Name).
	HeaderDeadLetterHandler = "Gp-Dl-Handler"
	// HeaderDeadLetterFirstSeen is when the Bridge received the message (RFC 3339, ns).
	HeaderDeadLetterFirstSeen = "Gp-Dl-First-Seen"
	// HeaderDeadLetterOrigin is the Config.Origin of the Bridge that dead-lettered it.
	HeaderDeadLetterOrigin = "Gp-Dl-Origin"
	// HeaderReplayOf is set by Replay on a re-published message: "<stream>:<sequence>"
	// of the dead letter it came from.
	HeaderReplayOf = "Gp-Replay-Of"
	// HeaderDeadLetterNATSPrefix prefixes the original message's "Nats-*" headers on
	// its dead letter ("Nats-Msg-Id" → "Gp-Dl-Nats-Msg-Id"). The server acts on those
	// headers when a stream stores the message (duplicate detection, expected
	// stream/sequence, rollup, TTL), so kept as they were they would make the
	// dead-letter stream drop or reject the dead letter, or purge others. Replay puts
	// them back under their own names.
	HeaderDeadLetterNATSPrefix = "Gp-Dl-"
)

// natsHeaderPrefix starts the header names nats-server interprets on publish.
const natsHeaderPrefix = "nats-"

// isNATSHeader reports whether k is a header the server may act on ("Nats-*", any case).
func isNATSHeader(k string) bool {
	return len(k) >= len(natsHeaderPrefix) && strings.EqualFold(k[:len(natsHeaderPrefix)], natsHeaderPrefix)
}

// maxErrorHeader bounds HeaderDeadLetterError.
const maxErrorHeader = 512

// deadLetter is one dead letter waiting to be published.
type deadLetter struct {
	subject      string
	data         []byte
	header       nats.Header
	handler      string
	reason       DeadLetterReason
	decodeReason DecodeReason
	errText      string
	attempts     int
	firstSeen    time.Time
}

// deadLetterPublisher publishes dead letters from a bounded buffer on one goroutine
// owned by the Bridge, so the NATS callback can hand over an overflow without blocking.
type deadLetterPublisher struct {
	nc       *nats.Conn
	prefix   string
	origin   string
	log      zerolog.Logger
	counters *counters

	ch       chan deadLetter
	stop     chan struct{} // closed: exit after publishing what is buffered (drain) …
	quit     chan struct{} // … or closed: exit now, abandoning what is buffered
	done     sync.WaitGroup
	stopOnce sync.Once
	quitOnce sync.Once
}

func newDeadLetterPublisher(nc *nats.Conn, cfg Config, c *counters) *deadLetterPublisher {
	p := &deadLetterPublisher{
		nc: nc, prefix: cfg.DeadLetterPrefix, origin: cfg.Origin, log: cfg.Logger, counters: c,
		ch: make(chan deadLetter, cfg.DeadLetterQueueLen), stop: make(chan struct{}), quit: make(chan struct{}),
	}
	p.done.Add(1)
	go p.run()
	return p
}

// tryPut buffers dl without blocking; false if the buffer is full.
func (p *deadLetterPublisher) tryPut(dl deadLetter) bool {
	select {
	case p.ch <- dl:
		return true
	default:
		return false
	}
}

// put buffers dl, waiting for room unless abort is closed first.
func (p *deadLetterPublisher) put(dl deadLetter, abort <-chan struct{}) bool {
	select {
	case p.ch <- dl:
		return true
	case <-abort:
		return false
	}
}

func (p *deadLetterPublisher) run() {
	defer p.done.Done()
	for {
		select {
		case <-p.quit:
			p.abandonBuffered()
			return
		case dl := <-p.ch:
			p.publish(dl)
		case <-p.stop:
			for {
				select {
				case <-p.quit:
					p.abandonBuffered()
					return
				case dl := <-p.ch:
					p.publish(dl)
				default:
					return
				}
			}
		}
	}
}

func (p *deadLetterPublisher) abandonBuffered() {
	for {
		select {
		case <-p.ch:
			p.counters.abandoned.Add(1)
		default:
			return
		}
	}
}

// finish stops the goroutine once the buffer is empty (or at once if abandon) and
// waits for it.
func (p *deadLetterPublisher) finish(abandon bool) {
	p.stopOnce.Do(func() { close(p.stop) })
	if abandon {
		p.quitOnce.Do(func() { close(p.quit) })
	}
	p.done.Wait()
}

func (p *deadLetterPublisher) publish(dl deadLetter) {
	h := make(nats.Header, len(dl.header)+8)
	for k, v := range dl.header {
		if isNATSHeader(k) {
			k = HeaderDeadLetterNATSPrefix + k
		}
		h[k] = v
	}
	h.Set(HeaderDeadLetterSubject, dl.subject)
	h.Set(HeaderDeadLetterReason, string(dl.reason))
	if dl.decodeReason != "" {
		h.Set(HeaderDeadLetterDecodeReason, string(dl.decodeReason))
	}
	h.Set(HeaderDeadLetterError, headerText(dl.errText))
	h.Set(HeaderDeadLetterAttempts, strconv.Itoa(dl.attempts))
	h.Set(HeaderDeadLetterHandler, dl.handler)
	h.Set(HeaderDeadLetterFirstSeen, dl.firstSeen.UTC().Format(time.RFC3339Nano))
	h.Set(HeaderDeadLetterOrigin, p.origin)
	err := p.nc.PublishMsg(&nats.Msg{Subject: p.prefix + dl.subject, Data: dl.data, Header: h})
	if err != nil {
		p.counters.deadLetterErrors.Add(1)
		p.log.Error().Err(err).Str("subject", dl.subject).Str("reason", string(dl.reason)).
			Msg("natsbridge: dead letter not published")
		return
	}
	p.counters.deadLettered.Add(1)
}

// headerText makes s a single-line header value of at most maxErrorHeader bytes.
func headerText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxErrorHeader {
		s = strings.ToValidUTF8(s[:maxErrorHeader], "")
	}
	return s
}

// DeadLetterStreamConfig configures EnsureDeadLetterStream.
type DeadLetterStreamConfig struct {
	// Name is the stream's name (required), e.g. "DEADLETTERS".
	Name string
	// Prefix is the Bridge's Config.DeadLetterPrefix; default DefaultDeadLetterPrefix.
	// The stream captures "<Prefix>>".
	Prefix string
	// MaxAge, MaxMsgs and MaxBytes bound what the stream keeps (zero: unlimited).
	MaxAge   time.Duration
	MaxMsgs  int64
	MaxBytes int64
	// Replicas is the stream's replica count (default 1).
	Replicas int
	// Memory selects memory storage instead of file storage.
	Memory bool
}

// EnsureDeadLetterStream creates, or updates to cfg, a JetStream stream capturing every
// dead-letter subject ("<Prefix>>"), so dead letters are kept and can be given to Replay.
// It costs one or two JetStream API round trips and returns the stream.
func EnsureDeadLetterStream(ctx context.Context, js jetstream.JetStream, cfg DeadLetterStreamConfig) (jetstream.Stream, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: nil jetstream.JetStream", ErrInvalidOption)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultDeadLetterPrefix
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Name == "" || strings.ContainsAny(cfg.Name, " \t\r\n.*>/\\") {
		return nil, fmt.Errorf("%w: invalid dead-letter stream name %q", ErrInvalidOption, cfg.Name)
	}
	if err := ValidateSubject(cfg.Prefix + "x"); err != nil || !strings.HasSuffix(cfg.Prefix, ".") {
		return nil, fmt.Errorf("%w: dead-letter prefix %q must be literal tokens ending in '.'", ErrInvalidOption, cfg.Prefix)
	}
	if cfg.MaxAge < 0 || cfg.MaxMsgs < 0 || cfg.MaxBytes < 0 || cfg.Replicas < 0 {
		return nil, fmt.Errorf("%w: negative dead-letter stream limit", ErrInvalidOption)
	}
	sc := jetstream.StreamConfig{
		Name:        cfg.Name,
		Description: "natsbridge dead letters",
		Subjects:    []string{cfg.Prefix + ">"},
		MaxAge:      cfg.MaxAge,
		MaxMsgs:     orUnlimited(cfg.MaxMsgs),
		MaxBytes:    orUnlimited(cfg.MaxBytes),
		Replicas:    cfg.Replicas,
		Storage:     jetstream.FileStorage,
	}
	if cfg.Memory {
		sc.Storage = jetstream.MemoryStorage
	}
	s, err := js.CreateOrUpdateStream(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("natsbridge: ensure dead-letter stream %q: %w", cfg.Name, err)
	}
	return s, nil
}

func orUnlimited(v int64) int64 {
	if v == 0 {
		return -1
	}
	return v
}

// ReplayConfig configures Replay.
type ReplayConfig struct {
	// Stream is the dead-letter stream's name (required).
	Stream string
	// Filter restricts the replay to dead letters whose dead-letter subject matches it,
	// e.g. "deadletter.chat.>"; empty replays every kept dead letter.
	Filter string
	// Delete removes each replayed dead letter from the stream once the re-published
	// messages are flushed to the server.
	Delete bool
}

// ReplayResult reports what Replay did.
type ReplayResult struct {
	// Replayed counts dead letters re-published to their original subject.
	Replayed int
	// Skipped counts stream messages without HeaderDeadLetterSubject (not dead letters).
	Skipped int
}

// Replay re-publishes the dead letters kept in a stream (see EnsureDeadLetterStream)
// to their original subjects, with their original payload and headers (the Gp-Dl-*
// headers removed, the original Nats-* headers restored, HeaderReplayOf added and
// HeaderPublishedAt, if present, set to the replay time), in stream order, on js's connection. It
// replays the messages present when it starts and stops; it costs one JetStream
// round trip per dead letter (plus one per deletion with Delete). It returns what it
// did so far together with the first error.
func Replay(ctx context.Context, js jetstream.JetStream, cfg ReplayConfig) (ReplayResult, error) {
	var res ReplayResult
	if js == nil {
		return res, fmt.Errorf("%w: nil jetstream.JetStream", ErrInvalidOption)
	}
	if cfg.Stream == "" {
		return res, fmt.Errorf("%w: ReplayConfig.Stream is required", ErrInvalidOption)
	}
	if cfg.Filter != "" {
		if err := ValidatePattern(cfg.Filter); err != nil {
			return res, fmt.Errorf("%w: ReplayConfig.Filter: %w", ErrInvalidOption, err)
		}
	}
	stream, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return res, fmt.Errorf("natsbridge: replay: stream %q: %w", cfg.Stream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return res, fmt.Errorf("natsbridge: replay: stream %q info: %w", cfg.Stream, err)
	}
	last := info.State.LastSeq
	nc := js.Conn()
	var replayed []uint64
	for seq := info.State.FirstSeq; seq != 0 && seq <= last; {
		var opts []jetstream.GetMsgOpt
		if cfg.Filter != "" {
			opts = append(opts, jetstream.WithGetMsgSubject(cfg.Filter))
		}
		raw, err := stream.GetMsg(ctx, seq, opts...)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			if cfg.Filter != "" {
				break // nothing matches at or after seq
			}
			seq++ // deleted message
			continue
		}
		if err != nil {
			return res, fmt.Errorf("natsbridge: replay: get %s:%d: %w", cfg.Stream, seq, err)
		}
		if raw.Sequence > last {
			break
		}
		seq = raw.Sequence + 1
		original := raw.Header.Get(HeaderDeadLetterSubject)
		if original == "" || ValidateSubject(original) != nil {
			res.Skipped++
			continue
		}
		h := make(nats.Header, len(raw.Header))
		for k, v := range raw.Header {
			if orig, ok := strings.CutPrefix(k, HeaderDeadLetterNATSPrefix); ok && isNATSHeader(orig) {
				h[orig] = v // a header the dead letter had to move aside
			} else if !strings.HasPrefix(k, "Gp-Dl-") {
				h[k] = v
			}
		}
		h.Set(HeaderReplayOf, cfg.Stream+":"+strconv.FormatUint(raw.Sequence, 10))
		msg := &nats.Msg{Subject: original, Data: raw.Data, Header: h}
		if _, ok := h[HeaderPublishedAt]; ok {
			// A replay is a new delivery: the time spent as a dead letter is not the
			// handler's latency.
			SetPublishedAt(msg, time.Now())
		}
		if err := nc.PublishMsg(msg); err != nil {
			return res, fmt.Errorf("natsbridge: replay: publish to %q: %w", original, err)
		}
		res.Replayed++
		if cfg.Delete {
			replayed = append(replayed, raw.Sequence)
		}
	}
	if err := nc.FlushWithContext(ctx); err != nil {
		return res, fmt.Errorf("natsbridge: replay: flush: %w", err)
	}
	for _, seq := range replayed {
		if err := stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return res, fmt.Errorf("natsbridge: replay: delete %s:%d: %w", cfg.Stream, seq, err)
		}
	}
	return res, nil
}
