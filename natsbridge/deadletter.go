package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/internal/lifecycle"

	"github.com/gamepersist/gamepersist/internal/configerr"
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
// (its Nats-* headers renamed with headerDeadLetterNATSPrefix). The dead letter's data
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
	// headerDeadLetterNATSPrefix prefixes the original message's "Nats-*" headers on
	// its dead letter ("Nats-Msg-Id" → "Gp-Dl-Nats-Msg-Id"). The server acts on those
	// headers when a stream stores the message (duplicate detection, expected
	// stream/sequence, rollup, TTL), so kept as they were they would make the
	// dead-letter stream drop or reject the dead letter, or purge others. Replay puts
	// them back under their own names.
	headerDeadLetterNATSPrefix = "Gp-Dl-"
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
	// done, if not nil, is told once whether the stream stored the dead letter (a
	// durable message is terminated only then, else nak'ed for redelivery). It is
	// called from the publisher goroutine, or from put's caller when the buffer is full.
	done func(stored bool)
}

// Tuning of the dead-letter publisher. They are fixed, not configurable: the bounds a
// caller chooses are Config.DeadLetterQueueLen and Config.DeadLetterTimeout.
const (
	// deadLetterBatch is the largest number of dead letters awaiting their
	// acknowledgement at once (jetstream's async publish window).
	deadLetterBatch = 256
	// deadLetterAckWait is how long one publish waits for the stream's acknowledgement
	// before it is retried (with the same Nats-Msg-Id, so a late ack cannot store it
	// twice).
	deadLetterAckWait = 2 * time.Second
	// deadLetterRetryBase and deadLetterRetryMax bound the pause between two rounds of
	// retries while JetStream does not acknowledge.
	deadLetterRetryBase = 50 * time.Millisecond
	deadLetterRetryMax  = time.Second
	// deadLetterDuplicateWindow is the dead-letter stream's duplicate window set by
	// EnsureDeadLetterStream (nats-server's default, made explicit).
	deadLetterDuplicateWindow = 2 * time.Minute
)

// pendingDL is a dead letter between the buffer and the stream's acknowledgement.
type pendingDL struct {
	msg      *nats.Msg
	subject  string // original subject, for logs
	deadline time.Time
	lastErr  error
	done     func(stored bool)
}

// deadLetterPublisher publishes dead letters to JetStream and counts one as
// dead-lettered only when the stream acknowledged it. Producers (the NATS callback for
// overflows, workers for failures) hand dead letters over without blocking to a
// bounded buffer; one goroutine owned by the Bridge publishes them in windows of up to
// deadLetterBatch asynchronous publishes, each with a unique Nats-Msg-Id, and retries
// the ones not acknowledged (JetStream unreachable, connection lost, ack lost) until
// Config.DeadLetterTimeout after they were buffered. A dead letter that finds the buffer
// full, runs out of time, or is still unacknowledged at Close is lost: counted in
// Stats.DeadLetterLost and logged, one line per batch, never silently.
type deadLetterPublisher struct {
	js       jetstream.JetStream // the Bridge's own: its async publisher state is the Bridge's
	prefix   string
	origin   string
	timeout  time.Duration
	log      zerolog.Logger
	counters *counters

	ch       chan deadLetter
	idPrefix string        // Nats-Msg-Id prefix, random per Bridge
	seq      atomic.Uint64 // Nats-Msg-Id sequence
	full     atomic.Uint64 // lost to a full buffer, not logged yet

	mu       sync.RWMutex // finished vs. put
	finished bool

	stop     chan struct{}   // closed: exit after publishing what is buffered (drain) …
	quit     chan struct{}   // … or closed: exit now, counting what is left as lost
	done     lifecycle.Group // run
	stopOnce sync.Once
	quitOnce sync.Once

	firstAsync time.Time // when run made its first async publish (zero: none yet); run's own
}

// asyncSettle is how long after its first async publish the publisher waits before
// CleanupPublisher. nats.go v1.55.0 starts a goroutine (resetPendingAcksOnReconnect) at the
// first async publish that reads the publisher's status channel only once it runs; a
// CleanupPublisher before that nils the channel and the goroutine blocks forever. Giving it
// this long to start costs Close nothing unless the first dead letter went out just before.
const asyncSettle = 100 * time.Millisecond

func newDeadLetterPublisher(nc *nats.Conn, cfg Config, c *counters) (*deadLetterPublisher, error) {
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(deadLetterBatch),
		jetstream.WithPublishAsyncTimeout(deadLetterAckWait))
	if err != nil {
		return nil, fmt.Errorf("natsbridge: jetstream context for dead letters: %w", err)
	}
	p := &deadLetterPublisher{
		js: js, prefix: cfg.DeadLetterPrefix, origin: cfg.Origin, timeout: cfg.DeadLetterTimeout,
		idPrefix: nuid.Next() + "-dl-",
		log:      cfg.Logger, counters: c,
		ch: make(chan deadLetter, cfg.DeadLetterQueueLen), stop: make(chan struct{}), quit: make(chan struct{}),
	}
	p.done.Go(p.run)
	return p, nil
}

// put buffers dl without blocking. If the buffer is full (JetStream has been slow or
// unreachable for a while) or the publisher has finished, dl is lost: counted at once
// and logged by the publisher goroutine with the next batch.
func (p *deadLetterPublisher) put(dl deadLetter) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !p.finished {
		select {
		case p.ch <- dl:
			p.counters.deadLetterQueued.Add(1)
			return
		default:
		}
	}
	p.counters.deadLetterLost.Add(1)
	p.full.Add(1)
	if dl.done != nil {
		dl.done(false)
	}
}

func (p *deadLetterPublisher) run() {
	// Unsubscribes jetstream's reply subscription and stops its status watcher: nothing
	// of the Bridge outlives Close on the caller's connection.
	defer func() {
		if !p.firstAsync.IsZero() {
			time.Sleep(asyncSettle - time.Since(p.firstAsync)) // ≤ 0: no wait
		}
		p.js.CleanupPublisher()
	}()
	var retry []*pendingDL
	wait := deadLetterRetryBase
	for {
		p.logFull()
		batch := retry
		if len(batch) == 0 {
			select {
			case <-p.quit:
				return
			case dl := <-p.ch:
				batch = append(batch, p.prepare(dl))
			case <-p.stop:
				select {
				case dl := <-p.ch:
					batch = append(batch, p.prepare(dl))
				default:
					return // drained: buffer empty, nothing awaiting an ack
				}
			}
		}
	fill:
		for len(batch) < deadLetterBatch {
			select {
			case dl := <-p.ch:
				batch = append(batch, p.prepare(dl))
			default:
				break fill
			}
		}
		failed, quit := p.publishBatch(batch)
		if quit {
			return
		}
		retry = p.expire(failed)
		if len(retry) == 0 {
			wait = deadLetterRetryBase
			continue
		}
		// JetStream did not acknowledge: pause before the next round so an outage is
		// not a busy loop, longer while it lasts.
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-p.quit:
			t.Stop()
			p.lose(retry, "closed before the stream acknowledged")
			return
		}
		wait = min(2*wait, deadLetterRetryMax)
	}
}

// prepare turns a buffered dead letter into the message published to the stream.
func (p *deadLetterPublisher) prepare(dl deadLetter) *pendingDL {
	h := make(nats.Header, len(dl.header)+10)
	for k, v := range dl.header {
		if isNATSHeader(k) {
			k = headerDeadLetterNATSPrefix + k
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
	// Unique per dead letter (a prefix drawn per Bridge, not Config.Origin, which a
	// restarted process may reuse): a retry after a lost acknowledgement is recognised
	// by the stream's duplicate window instead of being stored twice, and nothing else
	// can be taken for a duplicate.
	h.Set(jetstream.MsgIDHeader, p.idPrefix+strconv.FormatUint(p.seq.Add(1), 10))
	return &pendingDL{
		msg:      &nats.Msg{Subject: p.prefix + dl.subject, Data: dl.data, Header: h},
		subject:  dl.subject,
		deadline: time.Now().Add(p.timeout),
		done:     dl.done,
	}
}

// publishBatch publishes batch asynchronously and waits for every acknowledgement (each
// wait is bounded by deadLetterAckWait). It returns the dead letters not acknowledged,
// or quit true if Close came first (then everything unacknowledged was counted lost).
func (p *deadLetterPublisher) publishBatch(batch []*pendingDL) (failed []*pendingDL, quit bool) {
	futures := make([]jetstream.PubAckFuture, len(batch))
	for i, d := range batch {
		if p.firstAsync.IsZero() {
			p.firstAsync = time.Now()
		}
		f, err := p.js.PublishMsgAsync(d.msg)
		if err != nil {
			d.lastErr = err
			continue
		}
		futures[i] = f
	}
	for i, d := range batch {
		f := futures[i]
		if f == nil {
			failed = append(failed, d)
			continue
		}
		select {
		case <-f.Ok():
			p.counters.deadLettered.Add(1)
			p.counters.deadLetterQueued.Add(-1)
			if d.done != nil {
				d.done(true)
			}
		case err := <-f.Err():
			d.lastErr = err
			failed = append(failed, d)
		case <-p.quit:
			// Some of these may still be stored: the stream acknowledged after Close.
			p.lose(append(failed, batch[i:]...), "closed before the stream acknowledged")
			return nil, true
		}
	}
	if len(failed) > 0 {
		p.counters.deadLetterErrors.Add(uint64(len(failed)))
	}
	return failed, false
}

// expire counts the dead letters whose time ran out as lost and returns the others.
func (p *deadLetterPublisher) expire(failed []*pendingDL) []*pendingDL {
	now := time.Now()
	keep := failed[:0]
	var gone []*pendingDL
	for _, d := range failed {
		if now.Before(d.deadline) {
			keep = append(keep, d)
		} else {
			gone = append(gone, d)
		}
	}
	if len(gone) > 0 {
		p.lose(gone, "not acknowledged within DeadLetterTimeout")
	}
	return keep
}

// lose counts dead letters that will not be stored and logs them as one line.
func (p *deadLetterPublisher) lose(ds []*pendingDL, why string) {
	if len(ds) == 0 {
		return
	}
	p.counters.deadLetterLost.Add(uint64(len(ds)))
	p.counters.deadLetterQueued.Add(-int64(len(ds)))
	for _, d := range ds {
		if d.done != nil {
			d.done(false)
		}
	}
	ev := p.log.Error().Int("lost", len(ds)).Str("cause", why).Str("first_subject", ds[0].subject)
	if err := ds[len(ds)-1].lastErr; err != nil {
		ev = logErr(ev, err)
	}
	ev.Msg("natsbridge: dead letters lost")
}

// logFull logs, as one line, the dead letters lost to a full buffer since the last call.
func (p *deadLetterPublisher) logFull() {
	if n := p.full.Swap(0); n > 0 {
		p.log.Error().Uint64("lost", n).Str("cause", "dead-letter buffer full").
			Msg("natsbridge: dead letters lost")
	}
}

// finish stops the goroutine once every buffered dead letter is acknowledged or lost (or
// at once if abandon, counting the rest as lost) and waits for it. After finish, put
// counts every dead letter as lost.
func (p *deadLetterPublisher) finish(abandon bool) {
	p.stopOnce.Do(func() { close(p.stop) })
	if abandon {
		p.quitOnce.Do(func() { close(p.quit) })
	}
	p.done.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	var n int64
	for {
		select {
		case dl := <-p.ch:
			n++
			if dl.done != nil {
				dl.done(false)
			}
			continue
		default:
		}
		break
	}
	if n > 0 {
		p.counters.deadLetterLost.Add(uint64(n))
		p.counters.deadLetterQueued.Add(-n)
		p.full.Add(uint64(n))
	}
	p.logFull()
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
	// Prefix is the Bridge's Config.DeadLetterPrefix; default "deadletter.".
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
		return nil, fmt.Errorf("%w: nil jetstream.JetStream", ErrInvalidConfig)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = defaultDeadLetterPrefix
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if err := checkJetStreamName("DeadLetterStreamConfig.Name", cfg.Name); err != nil {
		return nil, err
	}
	if err := ValidateSubject(cfg.Prefix + "x"); err != nil || !strings.HasSuffix(cfg.Prefix, ".") {
		return nil, configError("DeadLetterStreamConfig.Prefix", cfg.Prefix, "must be literal subject tokens ending in '.'")
	}
	if cfg.MaxAge < 0 || cfg.MaxMsgs < 0 || cfg.MaxBytes < 0 || cfg.Replicas < 0 {
		return nil, configError("DeadLetterStreamConfig", configerr.NoValue{}, "MaxAge, MaxMsgs, MaxBytes and Replicas must not be negative")
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
		// A dead letter retried after a lost acknowledgement carries the same
		// Nats-Msg-Id: within this window the stream stores it once.
		Duplicates: deadLetterDuplicateWindow,
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
	// Delete removes each replayed dead letter from the stream once its re-publication
	// is acknowledged or confirmed (see Replay); one that is not stays in the stream.
	Delete bool
}

// ReplayResult reports what Replay did.
type ReplayResult struct {
	// Replayed counts dead letters whose re-publication was acknowledged by a stream
	// or confirmed delivered to a subscriber (see Replay).
	Replayed int
	// Undelivered counts dead letters re-published but neither acknowledged nor
	// confirmed: no stream and no subscriber had the subject, or the stream took the
	// message for a duplicate of one it holds (its Nats-Msg-Id is still in the stream's
	// duplicate window). They are never deleted.
	Undelivered int
	// Deleted counts dead letters removed from the stream (with Delete).
	Deleted int
	// Skipped counts stream messages without HeaderDeadLetterSubject (not dead letters).
	Skipped int
}

// Replay re-publishes the dead letters present in cfg.Stream to their original subjects,
// in stream order, with their original payload and headers (HeaderReplayOf added); with
// Delete it deletes each one only after its re-publication was acknowledged by a stream
// or confirmed delivered (see "Dead letters" in the package doc). It costs one round trip
// per dead letter and returns what it did so far with the first error.
func Replay(ctx context.Context, js jetstream.JetStream, cfg ReplayConfig) (ReplayResult, error) {
	var res ReplayResult
	if js == nil {
		return res, fmt.Errorf("%w: nil jetstream.JetStream", ErrInvalidConfig)
	}
	if err := checkJetStreamName("ReplayConfig.Stream", cfg.Stream); err != nil {
		return res, err
	}
	if cfg.Filter != "" {
		if err := ValidatePattern(cfg.Filter); err != nil {
			return res, configerr.Wrap[invalidConfig]("ReplayConfig.Filter", cfg.Filter, "", err)
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
	rp, err := newReplayer(ctx, js)
	if err != nil {
		return res, err
	}
	defer rp.close()
	last := info.State.LastSeq
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
			if orig, ok := strings.CutPrefix(k, headerDeadLetterNATSPrefix); ok && isNATSHeader(orig) {
				h[orig] = v // a header the dead letter had to move aside
			} else if !strings.HasPrefix(k, "Gp-Dl-") && k != jetstream.MsgIDHeader {
				h[k] = v // (the dead letter's own Nats-Msg-Id is not the original's)
			}
		}
		h.Set(HeaderReplayOf, cfg.Stream+":"+strconv.FormatUint(raw.Sequence, 10))
		msg := &nats.Msg{Subject: original, Data: raw.Data, Header: h}
		if _, ok := h[HeaderPublishedAt]; ok {
			// A replay is a new delivery: the time spent as a dead letter is not the
			// handler's latency.
			SetPublishedAt(msg, time.Now())
		}
		delivered, err := rp.publish(ctx, msg)
		if err != nil {
			return res, fmt.Errorf("natsbridge: replay: publish to %q: %w", original, err)
		}
		if !delivered {
			res.Undelivered++
			continue
		}
		res.Replayed++
		if cfg.Delete {
			if err := stream.DeleteMsg(ctx, raw.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				return res, fmt.Errorf("natsbridge: replay: delete %s:%d: %w", cfg.Stream, raw.Sequence, err)
			}
			res.Deleted++
		}
	}
	return res, nil
}

// replayer re-publishes messages and tells whether each was acknowledged by a stream
// or confirmed delivered to a core subscriber.
type replayer struct {
	js       jetstream.JetStream
	nc       *nats.Conn
	captured map[string]bool // subject → a stream captures it
	inbox    string
	sub      *nats.Subscription // inbox.*: "no responders" answers
	n        uint64
}

func newReplayer(_ context.Context, js jetstream.JetStream) (*replayer, error) {
	nc := js.Conn()
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox + ".*")
	if err != nil {
		return nil, fmt.Errorf("natsbridge: replay: subscribe to the confirmation inbox: %w", err)
	}
	return &replayer{js: js, nc: nc, captured: map[string]bool{}, inbox: inbox, sub: sub}, nil
}

func (rp *replayer) close() { _ = rp.sub.Unsubscribe() }

// publish re-publishes msg; delivered reports an acknowledgement (stream) or a
// confirmation (core, see Replay).
func (rp *replayer) publish(ctx context.Context, msg *nats.Msg) (delivered bool, err error) {
	captured, ok := rp.captured[msg.Subject]
	if !ok {
		_, err := rp.js.StreamNameBySubject(ctx, msg.Subject)
		switch {
		case err == nil:
			captured = true
		case errors.Is(err, jetstream.ErrStreamNotFound):
			captured = false
		default:
			return false, fmt.Errorf("look up the stream of %q: %w", msg.Subject, err)
		}
		rp.captured[msg.Subject] = captured
	}
	if captured {
		ack, err := rp.js.PublishMsg(ctx, msg)
		if err != nil {
			return false, err
		}
		return !ack.Duplicate, nil
	}
	rp.n++
	msg.Reply = rp.inbox + "." + strconv.FormatUint(rp.n, 10)
	if err := rp.nc.PublishMsg(msg); err != nil {
		return false, err
	}
	// The server answers "no responders" while it processes the publish, before the
	// flush's PONG, so after the flush the answer, if any, is already buffered.
	if err := rp.nc.FlushWithContext(ctx); err != nil {
		return false, err
	}
	delivered = true
	for {
		m, err := rp.sub.NextMsg(0)
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			// Only this message's answer can be here: earlier ones were consumed.
			delivered = false
			continue
		case err != nil:
			return delivered, nil // nothing more buffered
		case m != nil:
			continue // a subscriber answered the replay inbox: ignored
		}
	}
}
